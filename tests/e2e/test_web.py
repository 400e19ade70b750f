"""The ops web page in a real headless browser (Debian's chromium driven by Playwright) against `abuse-desk run`."""

from __future__ import annotations

import json
import shutil
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dkimkey import sign, toml_trust
from tests.e2e.harness import Desk

TOKEN = "ops-token-for-the-browser-test-0123456789"
REPORTER = "reporter.example"
INVENTORY = {
    "customers": [
        {
            "id": "W1",
            "name": "Wendy Unverified",
            "email": "wendy@customer-w1.example",
            "phone": "+33 1 00 00 00 09",
            "address": "9 rue de Rivoli, Paris",
            "country": "FR",
            "language": "en",
            "created_at": "2025-06-01",
            "identity_verified": False,
        }
    ],
    "services": [{"id": "WS1", "customer_id": "W1", "kind": "vps", "name": "wendy-vps"}],
    "resources": [{"service_id": "WS1", "type": "ip", "value": "203.0.113.90", "valid_from": "2025-06-01T00:00:00Z"}],
}


def complaint() -> bytes:
    raw = (
        f"From: Victor Victim <victim@{REPORTER}>\r\nTo: abuse@localhost\r\nSubject: Phishing kit on 203.0.113.90\r\n"
        f"Message-ID: <web-1@{REPORTER}>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0100\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Hello,\r\n\r\nThe server at 203.0.113.90 hosts a phishing page imitating my bank:\r\n"
        "http://203.0.113.90/banque/login.php\r\nWrite to me at victim@reporter.example.\r\n\r\nVictor\r\n"
    ).encode()
    return sign(raw, REPORTER)


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("Debian's chromium is not installed: `apt-get install chromium` (.ci/run does it)", pytrace=False)
    return found


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    workdir: Path = tmp_path_factory.mktemp("web")
    (workdir / "inventory.json").write_text(json.dumps(INVENTORY))
    (workdir / "abuse-desk.toml").write_text(toml_trust({REPORTER: "cert"}))
    d = Desk(workdir, {"ABUSE_DESK_CONFIG": str(workdir / "abuse-desk.toml"), "ABUSE_DESK_WEB_TOKEN": TOKEN})
    d.cli("inventory", "import", "inventory.json")
    d.start()
    d.mail(complaint(), mail_from=f"victim@{REPORTER}")
    d.wait_case(lambda c: c["customer_id"] == "W1" and c["status"] == "suspended")
    deadline = time.monotonic() + 30
    while not [r for r in d.ledger() if r["service_id"] == "WS1"]:
        assert time.monotonic() < deadline, "the suspension never reached the ledger"
        time.sleep(0.2)
    yield d
    d.stop()


@pytest.fixture
def page(chromium: str):  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


def web(desk: Desk) -> str:
    return "http://" + desk.env["ABUSE_DESK_WEB_LISTEN"]


def sign_in(page, desk: Desk) -> None:  # type: ignore[no-untyped-def]
    page.goto(web(desk) + "/cases")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector("#cases")


def test_ops_pages_need_the_token(desk: Desk, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(web(desk) + "/cases")
    assert "/login" in page.url  # not signed in: sent to the sign-in form
    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    assert "not the ops token" in page.inner_text(".flash.error")
    assert page.locator("#cases").count() == 0
    response = page.request.post(web(desk) + "/queues/policy.reports/replay", form={"csrf": "x"})
    assert response.status == 403


def test_the_case_list_shows_status_customer_and_sla_countdown(desk: Desk, page) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, desk)
    row = page.locator("#cases tbody tr", has_text="W1")
    assert row.count() == 1
    cells = row.locator("td").all_inner_texts()
    assert cells[1] == "suspended" and cells[3] == "W1"
    assert "answered" in cells[6] or cells[6].startswith(("in ", "overdue by "))
    page.goto(web(desk) + "/queues")
    names = page.locator("#queues tbody tr td:first-child").all_inner_texts()
    assert names == ["ingest.normalize", "policy.reports", "policy.events", "actions.suspend", "actions.notify"]


def test_screenshot_of_the_case_page(desk: Desk, page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, desk)
    page.click("#cases tbody tr:has-text('W1') a")
    page.wait_for_selector("#history")
    assert page.inner_text("#case-status") == "suspended"
    history = page.inner_text("#history")
    assert "customer-details-invalid" in history and "identity not verified" in history
    evidence = page.inner_text(".evidence")
    assert "203.0.113.90" in evidence and "victim@reporter.example" not in evidence  # redacted
    assert "WS1" in page.inner_text("#suspensions")
    shot = tmp_path / "case-page.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == 1280 and height >= 900 and len(data) > 30_000, (width, height, len(data))


def test_an_ops_person_lifts_the_suspension_through_the_page(desk: Desk, page) -> None:  # type: ignore[no-untyped-def]
    case = next(c for c in desk.cases() if c["customer_id"] == "W1")
    sign_in(page, desk)
    page.goto(f"{web(desk)}/cases/{case['id']}")
    assert page.locator("button.lift").count() == 1 and page.locator("button.resolve").count() == 0
    page.click("button.lift")  # without a reason the browser refuses to submit
    assert page.url.endswith(case["id"])
    page.fill("#reason", "identity documents checked by support")
    page.click("button.lift")
    page.wait_for_selector(".flash.ok")
    assert page.inner_text("#case-status") == "lifted"
    assert "ops-lift" in page.inner_text("#history") and "identity documents checked by support" in page.inner_text(
        "#history"
    )
    desk.wait_case(lambda c: c["id"] == case["id"] and c["status"] == "lifted")
    deadline = time.monotonic() + 30
    while [r for r in desk.ledger() if r["service_id"] == "WS1"]:
        assert time.monotonic() < deadline, "the suspension was not lifted in the ledger"
        time.sleep(0.2)
    desk.wait_mails(lambda m: m["To"] == "wendy@customer-w1.example" and "lifted" in str(m["Subject"]).lower())
    page.reload()
    assert page.locator("button.lift").count() == 0
