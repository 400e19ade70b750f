"""Notification mails: templates in both languages, no header injection, time zones, redaction, who is answered."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from actions.notify import answers_a_machine
from actions.render import LANGUAGES, TEMPLATES, render, wire_bytes
from core.errors import PermanentError
from core.messages import SendNotification
from core.redact import redact_report
from core.report import AbuseReport, Envelope
from core.settings import Settings
from policy.commands import acknowledgement, case_context, complainant_address

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
KINDS = sorted(p.name.removesuffix(".txt.j2") for p in (TEMPLATES / "en").glob("*.txt.j2"))
INJECTION = "Phishing on 203.0.113.10\r\nBcc: everyone@attacker.example\r\nX-Injected: yes"


def mail(kind: str, *, to: str = "victim@example.org", language: str = "en", **context: object):  # type: ignore[no-untyped-def]
    command = SendNotification(case_id="K1", kind=kind, to=to, language=language, context={"case_id": "K1"} | context)
    built = render(command, sender="abuse@hosting.example", default_language="fr", now=NOW)
    return message_from_bytes(wire_bytes(built), policy=policy.default)


def text(message) -> str:  # type: ignore[no-untyped-def]
    return str(message.get_content())


def test_every_kind_exists_in_both_languages_and_renders() -> None:
    assert {"complainant-ack", "complainant-result", "customer-warning", "customer-suspension"} <= set(KINDS)
    assert {"customer-lift", "ops-action-failed", "ops-sla"} <= set(KINDS)
    for language in LANGUAGES:
        for kind in KINDS:
            built = mail(kind, language=language, deadline_at="2026-12-02T09:00:00+00:00", sla_due_at=NOW.isoformat())
            assert built["Subject"] and text(built).strip(), (language, kind)
            assert built["Auto-Submitted"] == "auto-replied"
    assert "reçu" in mail("complainant-ack", language="fr")["Subject"]
    assert "received" in mail("complainant-ack", language="en")["Subject"]


@pytest.mark.parametrize("kind", ["complainant-ack", "complainant-result"])
def test_a_header_injection_in_the_reported_subject_stays_text(kind: str) -> None:
    built = mail(kind, subject=INJECTION)
    assert built["Bcc"] is None and built["X-Injected"] is None
    assert list(built.keys()).count("Subject") == 1
    assert "everyone@attacker.example" in text(built)  # quoted in the body, where it is harmless
    if kind == "complainant-ack":
        assert "Bcc: everyone@attacker.example" in built["Subject"]  # kept as subject text, on one line


def test_crlf_in_an_address_cannot_add_a_recipient() -> None:
    with pytest.raises(PermanentError):
        mail("complainant-ack", to="victim@example.org\r\nBcc: everyone@attacker.example")


def test_the_warning_deadline_is_in_the_customers_time_zone() -> None:
    deadline = "2026-12-02T09:00:00+00:00"
    montreal = mail("customer-warning", customer_timezone="America/Montreal", deadline_at=deadline)
    paris = mail("customer-warning", language="fr", customer_timezone="Europe/Paris", deadline_at=deadline)
    assert "2026-12-02 04:00 EST" in montreal["Subject"] and "2026-12-02 04:00 EST" in text(montreal)
    assert "2026-12-02 10:00 CET" in paris["Subject"] and "10:00 CET" in text(paris)


def fbl_report(**kw: object) -> AbuseReport:
    evidence = (
        "Feedback-Type: abuse\nOriginal-Rcpt-To: fbl-user@bigmail.example\n"
        "Removal-Recipient: Fbl-User@BigMail.example\n"
        "From: newsletter@customer1.example\nTo: Victor Victim <victim@example.org>,\n  second@example.org\n"
        "Subject: cheap pills\n\nHello VICTIM@EXAMPLE.ORG, regards, Victor\nBuy at http://alice-shop.example/\n"
    )
    values: dict[str, object] = {
        "report_id": "r1",
        "category": "spam",
        "reporter": "victim@example.org",
        "reporter_name": "Victor Victim",
        "evidence": evidence,
        "emails": ["newsletter@customer1.example"],  # the offending mailbox, as the parser finds it
        "envelope": Envelope(mail_from="bounce-123@reports.example", rcpt_tos=("abuse@localhost",)),
    }
    return AbuseReport.model_validate(values | kw)


def test_redact_removes_the_complainant_and_the_feedback_loop_recipient() -> None:
    out = redact_report(fbl_report().evidence, fbl_report(), keep=["newsletter@customer1.example"])
    for secret in ("victim@example.org", "fbl-user@bigmail.example", "second@example.org", "Victor"):
        assert secret.lower() not in out.lower(), secret
    assert "newsletter@customer1.example" in out and "http://alice-shop.example/" in out  # the customer's facts


def test_the_customer_warning_never_contains_the_complainant() -> None:
    report = fbl_report()
    case = {"id": "K1", "category": "spam", "service_ids": ["S1"], "deadline_at": NOW}
    customer = {"id": "C1", "name": "Alice", "timezone": "Europe/Paris"}
    context = case_context(case, report, Settings(), customer=customer)
    command = SendNotification(case_id="K1", kind="customer-warning", to="alice@customer1.example", context=context)
    raw = wire_bytes(render(command, sender="abuse@hosting.example", default_language="fr", now=NOW)).decode()
    body = str(message_from_bytes(raw.encode(), policy=policy.default).get_content())
    assert "newsletter@customer1.example" in body
    for secret in ("victim@example.org", "fbl-user@bigmail.example", "Victor", "bounce-123@reports.example"):
        assert secret.lower() not in body.lower() and secret.lower() not in raw.lower(), secret


def test_only_people_are_acknowledged_and_answered() -> None:
    case = {"id": "K1", "category": "phishing", "sla_due_at": NOW}
    person = fbl_report(
        reporter_kind="person",
        language="fr",
        message_id="<c1@example.org>",
        envelope=Envelope(mail_from="victim@example.org", rcpt_tos=("abuse@localhost",)),  # the sender's own
    )
    ack = acknowledgement(case, person, Settings())
    assert ack is not None and ack.kind == "complainant-ack" and ack.language == "fr" and ack.to == person.reporter
    assert ack.in_reply_to == "<c1@example.org>" and ack.context["evidence"] == ""
    assert not answers_a_machine(ack)
    assert "reçu" in mail("complainant-ack", language=ack.language, **ack.context)["Subject"]
    for robot in (
        fbl_report(reporter_kind="feedback-loop", automated=True),
        fbl_report(reporter_kind="person", automated=True),  # Auto-Submitted / list mail
        fbl_report(reporter_kind="machine"),
        fbl_report(reporter_kind="person", envelope=Envelope(mail_from="", received_at=NOW)),  # null sender
        fbl_report(reporter_kind="person", reporter="MAILER-DAEMON@example.org"),
        fbl_report(reporter=None),
    ):
        assert complainant_address(robot, Settings()) is None and acknowledgement(case, robot, Settings()) is None
    # Defence in depth on the action side: a complainant mail whose context says "robot" is not sent.
    fbl = fbl_report(reporter_kind="feedback-loop", automated=True)
    sneaky = SendNotification(
        kind="complainant-result", to="fbl@bigmail.example", context=case_context(case, fbl, Settings(), customer=None)
    )
    assert answers_a_machine(sneaky)
