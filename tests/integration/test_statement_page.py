"""The customer's statement page over HTTP: in the customer's language, offering in each state what the mail offers."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from abuse_desk.database import upgrade
from abuse_desk.web.app import templates
from abuse_desk.web.statements import statement_routes
from core.db import create_engine
from core.messages import Message, utcnow
from core.settings import Settings
from policy.links import make_token
from policy.tables import case_history, cases, customer_answers, customers
from policy.tables import outbox as policy_outbox

SECRET = "s3cret-for-the-statement-page-test-0123456789abcdef"
ENGLISH = [" the ", " your ", " you ", " and ", " is ", " of ", " to ", "case", "status", "deadline", "suspended",
           "report", "fixed", "contest", "help", "send", "more time", "opened", "reload", "please"]  # fmt: skip
FRENCH = [" le ", " la ", " les ", " votre ", " vous ", " des ", " est ", "dossier", "signalement", "échéance",
          "envoyer", "corrigé", "aide"]  # fmt: skip
NAMES = re.compile(r"Arcom|value=\"[^\"]*\"|name=\"[^\"]*\"|id=\"[^\"]*\"|data-status=\"[^\"]*\"")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    await upgrade(eng)
    async with eng.begin() as conn:
        for table in (cases, case_history, customer_answers, customers, policy_outbox):
            await conn.execute(table.delete())
    yield eng
    await eng.dispose()


def settings() -> Settings:
    return Settings.model_validate({"dsa": {"link_secret": SECRET}, "notify": {"default_language": "fr"}})


async def seed(engine: AsyncEngine, status: str, language: str | None) -> str:
    now = utcnow()
    async with engine.begin() as conn:
        await conn.execute(
            customers.insert().values(id="C1", name="Alice", email="alice@example.org", language=language)
        )
        await conn.execute(
            cases.insert().values(
                id="K1",
                status=status,
                category="phishing",
                customer_id="C1",
                service_ids=["S1"],
                opened_at=now - timedelta(hours=2),
                updated_at=now,
                deadline_at=now + timedelta(hours=46) if status == "warned" else None,
                rules=[],
                needs_attention=False,
                extension_used=False,
            )
        )
    return make_token(SECRET, "K1", "C1", now + timedelta(days=14))


async def published(message: Message) -> None:
    return None


def client(engine: AsyncEngine) -> httpx.AsyncClient:
    rt = SimpleNamespace(settings=settings(), engine=engine, publish=published)
    app = Starlette(routes=statement_routes(rt, templates))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://desk.test")


def visible(page: str) -> str:
    """The words a reader sees: tags, attribute names and values (codes), styles and markup removed."""
    page = re.sub(r"<style.*?</style>", " ", page, flags=re.S)
    page = NAMES.sub(" ", page)
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    return " " + " ".join(text.lower().split()) + " "


def foreign(page: str, words: list[str]) -> list[str]:
    """The words of the other language found as whole words ('contest' is not in 'contester')."""
    text = visible(page)
    return [w for w in words if re.search(rf"(?<!\w){re.escape(w.strip())}(?!\w)", text)]


def kinds(page: str) -> set[str]:
    return set(re.findall(r'name="kind" value="([a-z-]+)"', page))


@pytest.mark.parametrize(
    ("status", "offered"),
    [
        ("warned", {"fixed", "more-time", "contest", "help"}),
        ("suspended", {"fixed", "contest", "help"}),  # a suspended customer can say it is fixed
        ("needs-review", {"help"}),
        ("resolved", set()),
    ],
)
async def test_the_french_page_is_french_and_offers_what_the_mail_offers(
    engine: AsyncEngine, status: str, offered: set[str]
) -> None:
    token = await seed(engine, status, "fr")
    async with client(engine) as http:
        page = await http.get(f"/s/{token}")
    assert page.status_code == 200 and '<html lang="fr">' in page.text
    assert page.headers["content-language"] == "fr"
    assert not foreign(page.text, ENGLISH), (status, foreign(page.text, ENGLISH), visible(page.text))
    assert kinds(page.text) == offered
    assert "hameçonnage" in page.text and "Dossier K1" in page.text


async def test_the_english_page_is_english(engine: AsyncEngine) -> None:
    token = await seed(engine, "suspended", "en")
    async with client(engine) as http:
        page = await http.get(f"/s/{token}")
    assert '<html lang="en">' in page.text and "Case K1" in page.text
    assert not foreign(page.text, FRENCH), foreign(page.text, FRENCH)
    assert kinds(page.text) == {"fixed", "contest", "help"}


async def test_answers_and_errors_are_french_too(engine: AsyncEngine) -> None:
    token = await seed(engine, "warned", None)  # no language on file: the desk's default (French)
    async with client(engine) as http:
        stale = await http.post(f"/s/{token}", data={"key": "wrong", "kind": "help"})
        assert stale.status_code == 403 and "Le formulaire a expiré" in stale.text
        page = await http.get(f"/s/{token}")
        key = re.search(r'name="key" value="([^"]+)"', page.text)
        assert key is not None
        missing = await http.post(f"/s/{token}", data={"key": key.group(1), "kind": "fixed"})
        assert missing.status_code == 400 and "Merci de confirmer" in missing.text
        helped = await http.post(f"/s/{token}", data={"key": key.group(1), "kind": "help", "text": "aidez-moi"})
    assert helped.status_code == 200 and "Votre demande d'aide a été transmise" in html.unescape(helped.text)
    for response in (stale, missing, helped):
        assert not foreign(response.text, ENGLISH), foreign(response.text, ENGLISH)


async def test_a_bad_link_is_refused_in_the_desk_language(engine: AsyncEngine) -> None:
    async with client(engine) as http:
        page = await http.get("/s/not-a-token")
    assert page.status_code == 400 and "Ce lien ne peut pas être utilisé" in page.text  # malformed: 400
    assert not foreign(page.text, ENGLISH)


