"""The ops web page in a real headless browser (Debian's chromium driven by Playwright) against `abuse-desk serve web`
alone (plus its database and broker): cases are decided in-process by the policy worker before the page starts."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.dkimkey import toml_trust
from tests.e2e.harness import SCRIPT, Desk, customer

TOKEN = "ops-token-for-the-browser-test-0123456789"
ALICE, BOB = ("alice", "alice's long password"), ("bob", "bob's long password!")
INVENTORY = {
    "customers": [customer("W1", verified=False), customer("X1")],
    "services": [
        {"id": "WS1", "customer_id": "W1", "kind": "vps", "name": "wendy-vps"},
        {"id": "XS1", "customer_id": "X1", "kind": "web-hosting", "name": "xavier-site"},
    ],
    "resources": [
        {"service_id": "WS1", "type": "ip", "value": "203.0.113.90", "valid_from": "2020-01-01T00:00:00Z"},
        {"service_id": "WS1", "type": "mailbox", "value": "shop@wendy.example", "valid_from": "2020-01-01T00:00:00Z"},
        {"service_id": "XS1", "type": "ip", "value": "198.51.100.23", "valid_from": "2020-01-01T00:00:00Z"},
    ],
}


def complaint(ip: str, n: int) -> bytes:
    """A person's complaint, not DKIM-signed: the policy holds it for review (reporter-unverified)."""
    return (
        f"From: Victor Victim <victim{n}@reporter.example>\r\nTo: abuse@localhost\r\nSubject: Phishing kit on {ip}\r\n"
        f"Message-ID: <web-{n}@reporter.example>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0100\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Hello,\r\n\r\nThe server at {ip} hosts a phishing page imitating my bank:\r\nhttp://{ip}/banque/login.php\r\n"
    ).encode()


async def decide(desk: Desk, raws: list[bytes]) -> None:
    """The policy worker's own entry, in this process: what `serve policy` would do with the parsed reports."""
    from abuse_desk.database import upgrade
    from abuse_desk.home import anchored
    from core.db import create_engine
    from core.messages import Message, ReportParsed
    from core.settings import load_settings
    from ingest.parse import parse_report
    from policy.consumer import PolicyWorker

    settings = anchored(load_settings(environ=desk.env), desk.env)
    engine = create_engine(settings.database_url)
    await upgrade(engine)

    async def nowhere(message: Message) -> None:  # the commands stay in the outbox: nobody acts on them here
        return None

    worker = PolicyWorker(engine, settings, nowhere)
    for raw in raws:
        await worker.on_report(ReportParsed(report=parse_report(raw)))
    await engine.dispose()


class WebDesk(Desk):
    """`abuse-desk serve web` only: the ops pages, the dead-letter keeper, the database."""

    def start(self) -> None:
        log = open(self.workdir / "run.log", "wb")  # kept open for the process's life
        self.proc = subprocess.Popen([SCRIPT, "serve", "web"], cwd=self.workdir, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("abuse-desk serve web exited:\n" + self.log())
            try:
                with urllib.request.urlopen(web(self) + "/login", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("the web page did not come up:\n" + self.log())


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("Debian's chromium is not installed: `apt-get install chromium` (.ci/run does it)", pytrace=False)
    return found


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDesk]:
    workdir: Path = tmp_path_factory.mktemp("web")
    (workdir / "inventory.json").write_text(json.dumps(INVENTORY))
    (workdir / "abuse-desk.toml").write_text(toml_trust({}))
    env = {"ABUSE_DESK_CONFIG": str(workdir / "abuse-desk.toml"), "ABUSE_DESK_WEB_TOKEN": TOKEN,
           "ABUSE_DESK_LINK_SECRET": "link-secret-of-the-browser-test-0123456789"}
    d = WebDesk(workdir, env)
    d.cli("inventory", "import", "inventory.json")
    asyncio.run(decide(d, [complaint("203.0.113.90", 1), complaint("198.51.100.23", 2)]))
    set_sla_due_in(d, "X1", timedelta(hours=1))
    result = subprocess.run(
        [SCRIPT, "operators", "add", ALICE[0], "--role", "admin", "--password-file", "-"],
        cwd=workdir, env=d.env, input=ALICE[1] + "\n", capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    d.start()
    yield d
    d.stop()


def set_sla_due_in(desk: Desk, customer_id: str, delta: timedelta) -> None:
    """Move a case's complainant SLA close, unanswered (as if it had waited most of its 24 working hours)."""
    from datetime import UTC, datetime

    from sqlalchemy import update

    from abuse_desk.home import anchored
    from core.db import create_engine
    from core.settings import load_settings
    from policy.tables import cases

    async def move() -> None:
        engine = create_engine(anchored(load_settings(environ=desk.env), desk.env).database_url)
        async with engine.begin() as conn:
            await conn.execute(
                update(cases)
                .where(cases.c.customer_id == customer_id)
                .values(sla_due_at=datetime.now(UTC) + delta, answered_at=None)
            )
        await engine.dispose()

    asyncio.run(move())


def _cases_by_customer(self: Desk, customer_id: str) -> dict[str, Any]:
    return next(c for c in self.cases() if c["customer_id"] == customer_id)


Desk.cases_by_customer = _cases_by_customer  # type: ignore[attr-defined]


def web(desk: Desk) -> str:
    return "http://" + desk.env["ABUSE_DESK_WEB_LISTEN"]


@pytest.fixture
def browser(chromium: str):  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def sign_in(page, desk: Desk, who: tuple[str, str]) -> None:  # type: ignore[no-untyped-def]
    page.goto(web(desk) + "/login?next=/cases")
    page.fill("#name", who[0])
    page.fill("#secret", who[1])
    page.click("button[type=submit]")
    page.wait_for_selector("#cases")
    assert page.inner_text("#me") == who[0]


def test_sign_in_per_operator_rotates_the_session_and_is_rate_limited(desk: Desk, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(web(desk) + "/cases")
    assert "/login" in page.url
    page.fill("#name", ALICE[0])
    page.fill("#secret", "not her password")
    page.click("button[type=submit]")
    assert "wrong password" in page.inner_text(".flash.error") and page.locator("#cases").count() == 0
    sign_in(page, desk, ALICE)
    first = {c["name"]: c["value"] for c in page.context.cookies()}["abuse_desk_session"]
    page.goto(web(desk) + "/operators")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    sign_in(page, desk, ALICE)
    second = {c["name"]: c["value"] for c in page.context.cookies()}["abuse_desk_session"]
    assert first != second  # a new session id at each sign-in
    stale = page.request.get(web(desk) + "/cases", headers={"cookie": f"abuse_desk_session={first}"}, max_redirects=0)
    assert stale.status == 303  # the old session no longer signs anybody in
    page.goto(web(desk) + "/operators")
    assert page.locator("input[name=csrf]").first.get_attribute("value") != csrf  # the CSRF token rotated too
    codes = [page.request.post(web(desk) + "/login", form={"name": "mallory", "secret": f"guess {i}"}).status
             for i in range(6)]
    assert codes == [403] * 5 + [429]  # per name: the sixth try is refused before any password check
    assert page.request.post(web(desk) + "/queues/policy.reports/replay", form={"csrf": "x"},
                             headers={"cookie": ""}).status == 403


def test_two_operators_one_confirms_after_the_preview_the_other_lifts(desk: Desk, browser) -> None:  # type: ignore[no-untyped-def]
    case = desk.cases_by_customer("W1")  # type: ignore[attr-defined]
    assert case["status"] == "needs-review"
    alice = browser.new_context().new_page()
    sign_in(alice, desk, ALICE)
    alice.goto(web(desk) + "/operators")  # an admin creates the second operator on the web
    alice.fill("#op-name", BOB[0])
    alice.select_option("#op-role", "ops")
    alice.fill("#op-password", BOB[1])
    alice.click("#add-operator button[type=submit]")
    assert "bob" in alice.inner_text("#operators")
    alice.goto(f"{web(desk)}/cases/{case['id']}")
    assert alice.locator("button.confirm").count() == 1 and alice.locator("button.lift").count() == 0
    alice.fill("#note", "checked the kit myself: live phishing page")
    alice.fill("#customer_text", "Your server hosts a page imitating a bank.")
    alice.click("button.confirm")
    alice.wait_for_selector("#preview")
    assert alice.inner_text("#preview-status") in ("suspending", "suspended")  # until the platform confirms
    stops = alice.inner_text("#preview-stops")
    assert "WS1" in stops and "shop@wendy.example" in stops
    assert desk.case(case["id"])["status"] == "needs-review"  # the preview changed nothing
    alice.click("#do-it")
    alice.wait_for_selector(".flash.ok")
    assert alice.inner_text("#case-status") in ("suspending", "suspended")
    bob = browser.new_context().new_page()
    sign_in(bob, desk, BOB)
    assert bob.locator("a[href='/operators']").count() == 0  # not an admin
    assert bob.goto(web(desk) + "/operators").status == 403
    bob.goto(f"{web(desk)}/cases/{case['id']}")
    bob.fill("#note", "identity documents checked by support")
    bob.click("button.lift")
    bob.wait_for_selector(".flash.ok")
    assert bob.inner_text("#case-status") == "lifted"
    history = bob.inner_text("#history")
    assert "by alice" in history and "by bob" in history
    actors = [h["detail"].get("actor") for h in desk.case(case["id"])["history"] if h["kind"] == "ops"]
    assert "alice" in actors and "bob" in actors


def test_search_by_ip_and_cidr_finds_the_case(desk: Desk, page) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, desk, ALICE)
    case = desk.cases_by_customer("W1")  # type: ignore[attr-defined]
    for term in ("203.0.113.90", "203.0.113.0/24"):
        page.fill("#q", term)
        page.click("#search button[type=submit]")
        page.wait_for_selector("#cases")
        assert page.locator("#cases tbody tr").all_inner_texts() and [
            r.get_attribute("data-case") for r in page.locator("#cases tbody tr").all()
        ] == [case["id"]]
    page.fill("#q", "192.0.2.1")
    page.click("#search button[type=submit]")
    page.wait_for_selector("#empty")
    page.goto(web(desk) + "/cases?sort=customer_name")
    assert page.locator("#cases tbody tr").count() == 2
    assert "W1" in page.inner_text("#cases") and "Customer W1" in page.inner_text("#cases")


def test_needs_me_lists_the_case_whose_sla_is_due_soon(desk: Desk, page) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, desk, ALICE)
    page.click("#nav-needs-me")
    page.wait_for_selector("#cases")
    case = desk.cases_by_customer("X1")  # type: ignore[attr-defined]
    row = page.locator(f"#cases tbody tr[data-case='{case['id']}']")
    assert row.count() == 1 and "sla-due-soon" in row.locator(".attention").inner_text()
    assert int(page.locator("#attention-counts a[data-attention='sla-due-soon'] b").inner_text()) >= 1


def test_dead_letters_page_shows_the_error_and_replays_one(desk: Desk, page) -> None:  # type: ignore[no-untyped-def]
    import aio_pika

    from core.messages import SendNotification

    message = SendNotification(case_id="AD-DEAD-1", kind="customer-warning", to="x@invalid", context={})

    async def bury() -> None:
        conn = await aio_pika.connect(desk.env["ABUSE_DESK_AMQP_URL"])
        ch = await conn.channel(publisher_confirms=True)
        headers = {"x-abuse-desk-error": "SMTPRecipientRefused: 550 no such user", "x-abuse-desk-attempts": 5}
        msg = aio_pika.Message(message.to_bytes(), message_id=message.message_id, headers=headers)
        await ch.default_exchange.publish(msg, routing_key=desk.prefix + "actions.notify.dead")
        await conn.close()

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:  # its own loop: Playwright's sync API runs one in this thread
        pool.submit(asyncio.run, bury()).result()
    sign_in(page, desk, ALICE)
    deadline = time.monotonic() + 20
    while True:
        page.goto(web(desk) + "/dead")
        if page.locator("#dead tr[data-state='dead']").count():
            break
        assert time.monotonic() < deadline, "the keeper did not store the dead letter"
        time.sleep(0.3)
    row = page.locator("#dead tr[data-state='dead']").first
    assert "550 no such user" in row.inner_text() and "AD-DEAD-1" in row.inner_text()
    row.locator("button.replay-one").click()
    page.wait_for_selector("#outcome")
    assert "Put 1 message(s) back" in page.inner_text("#outcome")
    assert page.locator("#dead tr[data-state='replayed']").count() == 1
