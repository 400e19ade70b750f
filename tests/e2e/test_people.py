"""The people on both ends (DSA Arts. 16–17): receipts, decisions, statements of reasons, the customer's link."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.dkimkey import sign, toml_trust
from tests.e2e.harness import Desk, body, customer

REPORTER = "reporter.example"
AUTHORITY = "police.example"
OPS = "ops@desk.example"


class Site:
    """The customer's site on 127.0.0.1: serves the phishing page until `fixed`."""

    def __init__(self) -> None:
        self.fixed = False
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(404 if site.fixed else 200)
                self.end_headers()
                self.wfile.write(b"gone" if site.fixed else b"<form>Your bank password</form>")

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    s = Site()
    yield s
    s.server.shutdown()


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory, site: Site) -> Iterator[Desk]:
    workdir: Path = tmp_path_factory.mktemp("people")
    inventory = {
        "customers": [customer("C50"), customer("C51"), customer("C52"), customer("C53")],
        "services": [
            {"id": "S50", "customer_id": "C50", "kind": "web-hosting", "name": "c50 site"},
            {"id": "S51", "customer_id": "C51", "kind": "web-hosting", "name": "c51 site"},
            {"id": "S52", "customer_id": "C52", "kind": "web-hosting", "name": "c52 site"},
            {"id": "S53", "customer_id": "C53", "kind": "web-hosting", "name": "c53 site"},
        ],
        "resources": [
            {"service_id": "S50", "type": "domain", "value": "c50.example"},
            {"service_id": "S50", "type": "ip", "value": "127.0.0.1"},
            {"service_id": "S51", "type": "domain", "value": "c51.example"},
            {"service_id": "S52", "type": "domain", "value": "c52.example"},
            {"service_id": "S53", "type": "domain", "value": "c53.example"},
        ],
    }
    (workdir / "inventory.json").write_text(json.dumps(inventory))
    config = toml_trust({REPORTER: "cert", AUTHORITY: "other"}) + '[trust.hosts]\n"phish.c50.example" = ["127.0.0.1"]\n'
    config = config.replace(
        "[trust]",
        f'[notify]\nops_address = "{OPS}"\n\n[[dsa.authorities]]\nname = "Police"\ndomains = ["{AUTHORITY}"]\n'
        "deadline_hours = 1\n\n[trust]",
        1,
    )
    (workdir / "abuse-desk.toml").write_text(config)
    web = free_port()
    d = Desk(
        workdir,
        {
            "ABUSE_DESK_CONFIG": str(workdir / "abuse-desk.toml"),
            "ABUSE_DESK_WEB_LISTEN": f"127.0.0.1:{web}",
            "ABUSE_DESK_WEB_TOKEN": "ops-token",
            "ABUSE_DESK_PUBLIC_URL": f"http://127.0.0.1:{web}",
            "ABUSE_DESK_LINK_SECRET": "e2e-link-secret-Qm7Xw2Lp9Rt4Vz8Kc3Nb6",
        },
    )
    d.cli("inventory", "import", "inventory.json")
    d.start()
    yield d
    d.stop()


def complaint(url: str, msgid: str) -> bytes:
    raw = (
        f"From: Paula Person <paula@{REPORTER}>\r\nTo: abuse@localhost\r\nSubject: Phishing page\r\n"
        f"Message-ID: <{msgid}@{REPORTER}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Hello,\r\nThe page {url} imitates my bank and asks for my password and card number;"
        f" several people I know received links to it.\r\nPaula\r\n"
    ).encode()
    return sign(raw, REPORTER)


def link_in(mail: Message) -> str:
    found = re.search(r"https?://\S+/s/[\w.-]+", body(mail))
    assert found, body(mail)
    return found.group(0)


def answer(link: str, kind: str, text: str) -> str:
    page = httpx.get(link, timeout=30)
    assert page.status_code == 200 and "Your answer" in page.text
    key = re.search(r'name="key" value="([^"]+)"', page.text)
    assert key
    form = {"key": key.group(1), "kind": kind, "text": text, "cause": "vulnerable-software", "commitment": "yes"}
    return httpx.post(link, data=form, timeout=60).text


def test_receipt_names_missing_elements_then_the_decision_states_the_automation(desk: Desk, site: Site) -> None:
    desk.mail(complaint(f"http://phish.c50.example:{site.port}/login", "p1"))
    receipt = desk.wait_mails(lambda m: m["To"] == f"paula@{REPORTER}" and "received" in m["Subject"])[0]
    text = body(receipt)
    assert "accurate and complete" in text  # the good-faith statement is missing
    assert "your name and e-mail address" not in text  # the name and address were given
    assert "24 working hours" in text and receipt["Auto-Submitted"] == "auto-replied"
    result = desk.wait_mails(lambda m: m["To"] == f"paula@{REPORTER}" and "result" in m["Subject"])[0]
    assert "automated means" in body(result) and "Arcom" in body(result)
    assert result["In-Reply-To"] == f"<p1@{REPORTER}>"


def test_a_customer_who_answers_fixed_is_rechecked_and_resolved(desk: Desk, site: Site) -> None:
    site.fixed = False  # the site is shared by the SQLite and the PostgreSQL runs
    case = desk.wait_case(lambda c: c["customer_id"] == "C50")
    assert case["status"] == "warned"
    warning = desk.wait_mails(lambda m: m["To"] == "c50@customers.example" and "action required" in m["Subject"])[0]
    assert f"paula@{REPORTER}" not in warning.as_string()
    link = link_in(warning)
    page = answer(link, "fixed", "removed the kit")  # the page is still served: the re-check fails
    assert "still fails" in page and "still answers HTTP 200" in page, page[page.find("<main>") : page.find("<dl>")]
    assert desk.wait_case(lambda c: c["id"] == case["id"])["status"] == "warned"
    site.fixed = True
    page = answer(link, "fixed", "removed the phishing kit and updated the CMS")
    assert "the problem is gone" in page
    resolved = desk.wait_case(lambda c: c["id"] == case["id"] and c["status"] == "resolved")
    assert resolved["rules"] == ["customer-fixed", "recheck-passed"]
    desk.wait_mails(lambda m: m["To"] == f"paula@{REPORTER}" and "fixed the problem" in body(m))
    late = (datetime.fromisoformat(case["opened_at"]) + timedelta(hours=49)).isoformat()
    desk.cli("scheduler", "tick", "--now", late)
    assert desk.wait_case(lambda c: c["id"] == case["id"])["status"] == "resolved"  # no suspension
    forged = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    assert httpx.get(forged, timeout=30).status_code == 403


def test_a_customer_who_does_not_answer_is_suspended_with_a_statement_of_reasons(desk: Desk) -> None:
    desk.mail(complaint("http://c51.example/secure/login.php", "p2"))
    case = desk.wait_case(lambda c: c["customer_id"] == "C51")
    assert case["status"] == "warned"
    late = (datetime.fromisoformat(case["opened_at"]) + timedelta(hours=49)).isoformat()
    desk.cli("scheduler", "tick", "--now", late)
    desk.wait_case(lambda c: c["id"] == case["id"] and c["status"] == "suspended")
    notice = desk.wait_mails(lambda m: m["To"] == "c51@customers.example" and "statement of reasons" in m["Subject"])[0]
    text = body(notice.get_body(preferencelist=("plain",)))  # type: ignore[arg-type]
    for section in (
        "What is restricted",
        "Territorial scope",
        "Duration",
        "Facts and circumstances",
        "Triggered by",
        "Automated means",
        "Contractual ground",
        "Legal ground",
        "How to contest",
        "Arcom",
        "How to get the suspension lifted",
        "/s/",
    ):
        assert section in text, section
    assert f"paula@{REPORTER}" not in notice.as_string() and "Paula" not in text
    attachment = next(p for p in notice.iter_attachments() if p.get_content_type() == "application/json")
    statement = json.loads(attachment.get_content())
    assert statement["restriction"]["services"] == ["S51"]
    assert statement["facts"]["triggered_by"] == "notice"
    assert statement["automation"]["decision"] == "fully"
    assert statement["grounds"]["type"] == "both"
    assert {"contest", "courts", "regulator"} <= set(statement["redress"])
    stored = desk.rows(f"SELECT measure, ground, automated FROM statements WHERE case_id = '{case['id']}'")
    assert stored == [{"measure": "account", "ground": "both", "automated": "fully"}]


def test_the_customer_contests_a_suspension_and_support_reverses_it(desk: Desk) -> None:
    case = desk.wait_case(lambda c: c["customer_id"] == "C51" and c["status"] == "suspended")
    notice = desk.wait_mails(lambda m: m["To"] == "c51@customers.example" and "statement of reasons" in m["Subject"])[0]
    link = link_in(notice.get_body(preferencelist=("plain",)))  # type: ignore[arg-type]
    assert "Your contest was received" in answer(link, "contest", "the page was a parody site")
    contested = desk.wait_case(lambda c: c["id"] == case["id"] and c["needs_attention"])
    assert contested["status"] == "suspended"  # the measure stands until a person decides
    desk.wait_mails(lambda m: m["To"] == OPS and case["id"] in m["Subject"] and "contests" in m["Subject"])
    desk.cli("cases", "lift", case["id"], "--reason", "parody, not phishing")
    desk.wait_case(lambda c: c["id"] == case["id"] and c["status"] == "lifted")
    rows = desk.rows(f"SELECT kind, decision FROM customer_answers WHERE case_id = '{case['id']}'")
    assert rows == [{"kind": "contest", "decision": "reversed"}]


def test_more_time_is_granted_once(desk: Desk) -> None:
    desk.mail(complaint("http://c52.example/login", "p3"))
    case = desk.wait_case(lambda c: c["customer_id"] == "C52" and c["status"] == "warned")
    warning = desk.wait_mails(lambda m: m["To"] == "c52@customers.example" and "action required" in m["Subject"])[0]
    link = link_in(warning)
    assert "extended once" in answer(link, "more-time", "waiting for our developer")
    extended = desk.wait_case(lambda c: c["id"] == case["id"] and c["deadline_at"] != case["deadline_at"])
    delta = datetime.fromisoformat(extended["deadline_at"]) - datetime.fromisoformat(case["deadline_at"])
    assert delta == timedelta(hours=24)
    assert 'value="more-time"' not in httpx.get(link, timeout=30).text  # offered once


def test_a_threat_to_life_is_flagged_to_ops_at_once(desk: Desk) -> None:
    raw = (
        f"From: Paula Person <paula@{REPORTER}>\r\nTo: abuse@localhost\r\nSubject: Threats from your customer\r\n"
        f"Message-ID: <p4@{REPORTER}>\r\n\r\nThe forum at http://c53.example/board publishes death threats against"
        " a named teacher, with her home address. Please act quickly.\r\n"
    ).encode()
    desk.mail(sign(raw, REPORTER))
    case = desk.wait_case(lambda c: c["customer_id"] == "C53")
    assert "art18-suspicion" in case["flags"]
    alert = desk.wait_mails(lambda m: m["To"] == OPS and "URGENT" in m["Subject"])[0]
    assert case["id"] in alert["Subject"] and "Art. 18" in body(alert)


def test_an_authority_order_takes_effect_without_warning(desk: Desk) -> None:
    raw = (
        f"From: Police <orders@{AUTHORITY}>\r\nTo: abuse@localhost\r\nSubject: Removal order\r\n"
        f"Message-ID: <o1@{AUTHORITY}>\r\n\r\nRemoval order: the content at http://c53.example/board/thread/7"
        " is illegal and must be removed within one hour.\r\n"
    ).encode()
    desk.mail(sign(raw, AUTHORITY))
    case = desk.wait_case(lambda c: c["customer_id"] == "C53" and c["status"] == "suspended")
    assert case["rules"][-1] == "authority-order" and "authority-order" in case["flags"]
    row = desk.rows(f"SELECT origin, order_due_at FROM cases WHERE id = '{case['id']}'")[0]
    assert row["origin"] == "authority-order" and row["order_due_at"] is not None
