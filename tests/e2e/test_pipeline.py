"""The whole pipeline, started as `abuse-desk run`, fed by a real SMTP client (issue: the foundation)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.dkimkey import sign, toml_trust
from tests.e2e.harness import Desk, body

INVENTORY = {
    "customers": [
        {
            "id": "C4",
            "name": "Dave Weak",
            "email": "dave@customer4.example",
            "phone": "+33 1 00 00 00 04",
            "address": "4 quai Voltaire, Paris",
            "country": "FR",
            "language": "en",
            "created_at": "2018-01-01",
            "identity_verified": True,
        },
        {
            "id": "C1",
            "name": "Alice Martin",
            "email": "alice@customer1.example",
            "phone": "+33 1 00 00 00 01",
            "address": "1 rue de la Paix, Paris",
            "country": "FR",
            "language": "fr",
            "created_at": "2021-03-01",
            "identity_verified": True,
        },
        {
            "id": "C2",
            "name": "Bob Fake",
            "email": "not-an-address",
            "phone": "",
            "address": "",
            "country": "FR",
            "language": "en",
            "created_at": "2026-11-20",
            "identity_verified": False,
        },
        {
            "id": "C3",
            "name": "Carol Repeat",
            "email": "carol@customer3.example",
            "phone": "+33 1 00 00 00 03",
            "address": "3 avenue Foch, Lyon",
            "country": "FR",
            "language": "en",
            "created_at": "2019-01-01",
            "identity_verified": True,
        },
    ],
    "services": [
        {"id": "S4", "customer_id": "C4", "kind": "web-hosting", "name": "dave-site"},
        {"id": "S1", "customer_id": "C1", "kind": "web-hosting", "name": "alice-site"},
        {"id": "S1b", "customer_id": "C1", "kind": "mailbox", "name": "alice-mail"},
        {"id": "S2", "customer_id": "C2", "kind": "vps", "name": "bob-vps"},
        {"id": "S3", "customer_id": "C3", "kind": "vps", "name": "carol-vps"},
    ],
    "resources": [
        {"service_id": "S4", "type": "ip", "value": "203.0.113.40", "valid_from": "2020-01-01T00:00:00Z"},
        {
            "service_id": "S1",
            "type": "ip",
            "value": "203.0.113.10",
            "valid_from": "2021-03-01T00:00:00Z",
            "valid_to": None,
        },
        {"service_id": "S1", "type": "domain", "value": "alice-shop.example", "valid_from": None},
        {"service_id": "S2", "type": "ip", "value": "203.0.113.20", "valid_from": "2026-11-20T00:00:00Z"},
        {"service_id": "S3", "type": "cidr", "value": "198.51.100.0/28", "valid_from": "2019-01-01T00:00:00Z"},
    ],
}


REPORTER = "reporter.example"  # a trusted reporter (its DKIM key is pinned in the desk's configuration)


def complaint(ip: str, *, subject: str = "Phishing", msgid: str = "c1", signed: bool = True) -> bytes:
    raw = (
        f"From: Victor Victim <victim@{REPORTER}>\r\nTo: abuse@localhost\r\nSubject: {subject} from {ip}\r\n"
        f"Message-ID: <{msgid}@example.org>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0100\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Hello,\r\n\r\nThe server at {ip} hosts a phishing page imitating my bank:\r\n"
        f"http://{ip}/secure/login.php\r\nPlease take it down.\r\n\r\nVictor\r\n"
    ).encode()
    return sign(raw, REPORTER) if signed else raw


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    workdir: Path = tmp_path_factory.mktemp("desk")
    (workdir / "inventory.json").write_text(json.dumps(INVENTORY))
    (workdir / "abuse-desk.toml").write_text(toml_trust({REPORTER: "cert"}))
    d = Desk(workdir, {"ABUSE_DESK_CONFIG": str(workdir / "abuse-desk.toml")})
    d.cli("inventory", "import", "inventory.json")
    d.start()
    yield d
    d.stop()


def to(address: str):  # type: ignore[no-untyped-def]
    return lambda m: m["To"] == address


def test_first_complaint_is_warned_then_suspended_when_the_deadline_fires(desk: Desk) -> None:
    report_id = desk.mail(complaint("203.0.113.10", msgid="first"))
    case = desk.wait_case(lambda c: c["customer_id"] == "C1")
    assert case["status"] == "warned"
    assert case["rules"] == ["reporter-authenticated", "evidence-url-on-our-resource", "first-complaint-warning"]
    assert case["service_ids"] == ["S1"] and case["report_count"] == 1
    opened = datetime.fromisoformat(case["opened_at"])
    assert datetime.fromisoformat(case["deadline_at"]) - opened == timedelta(hours=48)
    assert case["sla_due_at"]
    shown = desk.case(case["id"])
    assert shown["reports"][0]["report_id"] == report_id

    warning = desk.wait_mails(to("alice@customer1.example"))[0]
    assert warning["Auto-Submitted"] == "auto-replied" and warning["X-Abuse-Desk-Kind"] == "customer-warning"
    assert warning["Message-ID"] in {m["Message-ID"] for m in desk.customer_mails()}  # what stop() checks
    assert "victim@reporter.example" in desk.planted
    assert case["id"] in warning["Subject"] and "action requise" in warning["Subject"]
    assert "victim@reporter.example" not in warning.as_string()
    answer = desk.wait_mails(to("victim@reporter.example"))[0]
    assert answer["In-Reply-To"] == "<first@example.org>"
    assert desk.ledger() == []

    early = (opened + timedelta(hours=47)).isoformat()
    desk.cli("scheduler", "tick", "--now", early)  # only the reminders are due
    assert desk.wait_case(lambda c: c["id"] == case["id"])["status"] == "warned"
    desk.wait_mails(lambda m: m["To"] == "alice@customer1.example" and "Rappel" in m["Subject"], count=2)
    late = (opened + timedelta(hours=49)).isoformat()
    assert case["id"] in desk.cli("scheduler", "tick", "--now", late).stdout
    assert "fired 0" in desk.cli("scheduler", "tick", "--now", late).stdout  # firing twice is harmless

    suspended = desk.wait_case(lambda c: c["id"] == case["id"] and c["status"] == "suspended")
    assert suspended["rules"][-1] == "warning-expired"
    desk.wait_mails(lambda m: m["To"] == "alice@customer1.example" and "suspendus" in m["Subject"])
    ledger = desk.ledger()
    assert sorted(r["service_id"] for r in ledger if r["case_id"] == case["id"]) == ["S1", "S1b"]

    desk.cli("cases", "lift", case["id"], "--reason", "customer removed the phishing kit")
    desk.wait_case(lambda c: c["id"] == case["id"] and c["status"] == "lifted")
    desk.wait_mails(lambda m: m["To"] == "alice@customer1.example" and "levée" in m["Subject"])
    for _ in range(100):
        if not [r for r in desk.ledger() if r["case_id"] == case["id"]]:
            break
        import time

        time.sleep(0.2)
    assert [r for r in desk.ledger() if r["case_id"] == case["id"]] == []


def test_invalid_customer_details_suspend_at_once(desk: Desk) -> None:
    desk.mail(complaint("203.0.113.20", msgid="invalid"))
    case = desk.wait_case(lambda c: c["customer_id"] == "C2")
    assert case["status"] == "suspended"
    assert case["rules"][-1] == "customer-details-invalid"
    assert case["deadline_at"] is None
    # Its e-mail address is invalid too: the notice cannot go out, and ops are told on the case.
    flagged = desk.wait_case(lambda c: c["id"] == case["id"] and c["needs_attention"])
    history = desk.case(flagged["id"])["history"]
    assert any("identity not verified" in r["reason"] for h in history for r in h["rules"])
    assert any(h["outcome"] == "action.failed.v1" for h in history)
    for _ in range(100):
        if any(r["case_id"] == case["id"] for r in desk.ledger()):
            break
        import time

        time.sleep(0.2)
    assert [r["service_id"] for r in desk.ledger() if r["case_id"] == case["id"]] == ["S2"]


def test_second_complaint_suspends_without_warning(desk: Desk) -> None:
    desk.mail(complaint("198.51.100.5", msgid="c3-first"))
    first = desk.wait_case(lambda c: c["customer_id"] == "C3")
    assert first["status"] == "warned"
    desk.cli("cases", "resolve", first["id"], "--reason", "customer cleaned the server")
    desk.wait_case(lambda c: c["id"] == first["id"] and c["status"] == "resolved")

    desk.mail(complaint("198.51.100.6", subject="Phishing again", msgid="c3-second"))
    second = desk.wait_case(lambda c: c["customer_id"] == "C3" and c["id"] != first["id"])
    assert second["status"] == "suspended"
    assert second["rules"][-1] == "second-complaint"
    desk.wait_mails(lambda m: m["To"] == "carol@customer3.example" and "suspended" in m["Subject"])
    warnings = [m for m in desk.outbox() if m["To"] == "carol@customer3.example" and "action required" in m["Subject"]]
    assert len(warnings) == 1  # only the first case was warned


def test_report_about_an_ip_we_do_not_host_is_rejected(desk: Desk) -> None:
    desk.mail(complaint("192.0.2.99", msgid="notours"))
    case = desk.wait_case(lambda c: c["status"] == "rejected")
    assert case["customer_id"] is None and case["rules"] == ["not-our-resource"]
    answer = desk.wait_mails(lambda m: m["In-Reply-To"] == "<notours@example.org>" and "result" in m["Subject"])[0]
    assert "not hosted by us" in body(answer) or "ne sont pas hébergées" in body(answer)


def test_retransmitted_report_does_not_open_a_second_case(desk: Desk) -> None:
    raw = complaint("203.0.113.10", subject="Phishing again and again", msgid="dup")
    before = desk.handled("policy.reports")
    first_id = desk.mail(raw)
    assert desk.mail(raw) == first_id
    desk.wait_handled("policy.reports", before + 2)  # both deliveries decided (the second changes nothing)
    cases = [c for c in desk.cases() if c["customer_id"] == "C1"]
    matching = [c for c in cases for r in desk.case(c["id"])["reports"] if r["report_id"] == first_id]
    assert len(matching) == 1


def test_unauthenticated_complaint_warns_but_only_a_person_can_suspend(desk: Desk) -> None:
    desk.mail(complaint("203.0.113.40", msgid="weak", signed=False))
    case = desk.wait_case(lambda c: c["customer_id"] == "C4")
    # Only our own cross-check vouches for it (the URL is on the customer's address): a warning, no more.
    assert case["status"] == "warned"
    assert case["rules"] == ["evidence-url-on-our-resource", "first-complaint-warning"]
    late = (datetime.fromisoformat(case["opened_at"]) + timedelta(hours=49)).isoformat()
    desk.cli("scheduler", "tick", "--now", late)
    held = desk.wait_case(lambda c: c["id"] == case["id"] and c["status"] == "needs-review")
    assert held["rules"] == ["warning-expired", "deadline-needs-confirmation"]
    assert not [r for r in desk.ledger() if r["case_id"] == case["id"]]
    desk.cli("cases", "confirm", case["id"], "--reason", "phishing kit seen on the site")
    desk.wait_case(lambda c: c["id"] == case["id"] and c["status"] == "suspended")
    for _ in range(100):
        if [r for r in desk.ledger() if r["case_id"] == case["id"]]:
            break
        time.sleep(0.2)
    assert [r["service_id"] for r in desk.ledger() if r["case_id"] == case["id"]] == ["S4"]
