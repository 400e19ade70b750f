"""Investigate before acting (issue: the whole policy): forged feedback loops, bursts, history, the SLA clock."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.broker import Broker
from core.messages import ReportReceived
from core.report import Envelope
from tests.conftest import AMQP_URL
from tests.dkimkey import sign, toml_trust
from tests.e2e.harness import Desk, customer

FBL = "fbl.example.net"
CERT = "cert.example"


INVENTORY = {
    "customers": [customer("C10"), customer("C11", verified=False), customer("C20"), customer("C21"), customer("C30")],
    "services": [
        {"id": "S10", "customer_id": "C10", "kind": "mailbox", "name": "shop10 mail"},
        {"id": "S11", "customer_id": "C11", "kind": "vps", "name": "c11 vps"},
        {"id": "S20", "customer_id": "C20", "kind": "vps", "name": "old owner"},
        {"id": "S21", "customer_id": "C21", "kind": "vps", "name": "new owner"},
        {"id": "S30", "customer_id": "C30", "kind": "web-hosting", "name": "c30 site"},
    ],
    "resources": [
        {"service_id": "S10", "type": "mailbox", "value": "news@shop10.example"},
        {"service_id": "S10", "type": "ip", "value": "198.51.100.77"},
        {"service_id": "S11", "type": "ip", "value": "198.51.100.88"},
        {
            "service_id": "S20",
            "type": "ip",
            "value": "192.0.2.50",
            "valid_from": "2024-01-01T00:00:00Z",
            "valid_to": "2026-01-01T00:00:00Z",
        },
        {"service_id": "S21", "type": "ip", "value": "192.0.2.50", "valid_from": "2026-01-01T00:00:00Z"},
        {"service_id": "S30", "type": "ip", "value": "198.51.100.99"},
    ],
}


def arf(ip: str, sender: str, *, n: int, arrival: str = "Thu, 26 Nov 2026 09:00:00 +0000") -> bytes:
    """A feedback-loop ARF report (RFC 5965) about one message sent from `ip` by `sender`."""
    domain = sender.split("@")[1]
    inner = (
        f"Return-Path: <{sender}>\r\nReceived: from out.{domain} ([{ip}]) by mx.{FBL} with ESMTP id {n};"
        f" {arrival}\r\nFrom: Shop <{sender}>\r\nTo: redacted@{FBL}\r\nSubject: Great deals {n}\r\n"
        f"Message-ID: <spam{n}@{domain}>\r\nDate: {arrival}\r\n\r\nBuy now!\r\n"
    )
    return (
        f"From: Feedback Loop <fbl@{FBL}>\r\nTo: abuse@localhost\r\nSubject: FBL report {n}\r\n"
        f"Message-ID: <fbl{n}@{FBL}>\r\nDate: {arrival}\r\nMIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b1"\r\n\r\n'
        f"--b1\r\nContent-Type: text/plain\r\n\r\nAn email abuse report for a message received from IP {ip}.\r\n"
        "--b1\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: ExampleFBL/1.0\r\n"
        f"Version: 1\r\nOriginal-Mail-From: <{sender}>\r\nArrival-Date: {arrival}\r\nSource-IP: {ip}\r\n\r\n"
        f"--b1\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n--b1--\r\n"
    ).encode()


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    workdir: Path = tmp_path_factory.mktemp("investigation")
    (workdir / "inventory.json").write_text(json.dumps(INVENTORY))
    config = "[policy]\nfbl_threshold = 5\n\n" + toml_trust({FBL: "feedback-loop", CERT: "cert"})
    (workdir / "abuse-desk.toml").write_text(config)
    d = Desk(workdir, {"ABUSE_DESK_CONFIG": str(workdir / "abuse-desk.toml")})
    d.cli("inventory", "import", "inventory.json")
    d.start()
    yield d
    d.stop()


def of(desk: Desk, customer_id: str) -> list[dict[str, object]]:
    return [c for c in desk.cases() if c["customer_id"] == customer_id]


def test_forged_feedback_loop_reports_never_suspend(desk: Desk) -> None:
    unsigned = arf("198.51.100.88", "promo@c11.example", n=900)
    tampered = sign(arf("198.51.100.88", "promo@c11.example", n=901), FBL).replace(b"Buy now!", b"Buy later")
    for raw in (unsigned, tampered):
        desk.mail(raw, mail_from=f"fbl@{FBL}")
    case = desk.wait_case(lambda c: c["customer_id"] == "C11" and c["report_count"] == 2)
    assert case["status"] == "needs-review"
    assert "feedback-loop-unauthenticated" in case["rules"] and case["rules"][-1] == "reporter-unverified"
    time.sleep(1)
    assert [r for r in desk.ledger() if r["customer_id"] == "C11"] == []  # C11's details are invalid, even so
    history = desk.case(str(case["id"]))["history"]
    facts = history[0]["detail"]["facts"]
    assert facts["reporter_trusted_as"] == FBL and facts["reporter_authenticated"] is False


def test_a_burst_of_feedback_loop_complaints_about_one_mailbox_is_one_case(desk: Desk) -> None:
    for n in range(40):
        desk.mail(sign(arf("198.51.100.77", "news@shop10.example", n=n), FBL), mail_from=f"fbl@{FBL}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        cases = of(desk, "C10")
        if cases and cases[0]["report_count"] == 40:
            break
        time.sleep(0.5)
    cases = of(desk, "C10")
    assert len(cases) == 1, cases
    case = cases[0]
    assert case["report_count"] == 40 and case["status"] == "warned"
    assert case["rules"][-1] == "first-complaint-warning" and "reporter-authenticated" in case["rules"]
    outcomes = [h["outcome"] for h in desk.case(str(case["id"]))["history"] if h["kind"] == "decision"]
    assert outcomes[:5] == ["monitor", "join", "join", "join", "warn"]
    assert set(outcomes[5:]) == {"join"}
    warnings = [m for m in desk.outbox() if m["To"] == "c10@customers.example"]
    assert len(warnings) == 1  # one warning for the whole spam run, and no answer to the feedback loop
    assert not [m for m in desk.outbox() if m["To"] == f"fbl@{FBL}"]


def test_an_address_reassigned_since_points_at_the_customer_of_the_time(desk: Desk) -> None:
    old = sign(arf("192.0.2.50", "info@old-owner.example", n=500, arrival="Tue, 10 Jun 2025 09:00:00 +0000"), FBL)
    new = sign(arf("192.0.2.50", "info@new-owner.example", n=501, arrival="Wed, 25 Nov 2026 09:00:00 +0000"), FBL)
    desk.mail(old, mail_from=f"fbl@{FBL}")
    desk.mail(new, mail_from=f"fbl@{FBL}")
    desk.wait_case(lambda c: c["customer_id"] == "C20")
    desk.wait_case(lambda c: c["customer_id"] == "C21")
    assert [c["service_ids"] for c in of(desk, "C20")] == [["S20"]]
    assert [c["service_ids"] for c in of(desk, "C21")] == [["S21"]]


def test_a_report_on_friday_at_five_is_due_on_wednesday_at_eleven(desk: Desk) -> None:
    friday = datetime(2026, 11, 27, 17, 0, tzinfo=ZoneInfo("Europe/Paris"))
    raw = sign(arf("198.51.100.99", "hello@c30.example", n=700), FBL)

    async def publish() -> None:
        broker = Broker(AMQP_URL, desk.prefix)
        await broker.connect(attempts=2)
        envelope = Envelope(
            mail_from=f"fbl@{FBL}", rcpt_tos=("abuse@localhost",), peer="127.0.0.1", received_at=friday.astimezone(UTC)
        )
        await broker.publish(ReportReceived(report_id="friday-five-pm", raw=raw, envelope=envelope))
        await broker.close()

    asyncio.run(publish())
    case = desk.wait_case(lambda c: c["customer_id"] == "C30")
    due = datetime.fromisoformat(str(case["sla_due_at"])).astimezone(ZoneInfo("Europe/Paris"))
    assert (due.strftime("%A"), due.hour, due.minute) == ("Wednesday", 11, 0)
    assert due.date().isoformat() == "2026-12-02"
