"""Mail that goes out to complainants: the one may-we-mail rule, no backscatter, clean subjects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from core.report import AbuseReport, Envelope, ReportAuth
from policy.recipients import clean_subject, may_mail, receipt_address

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def person(
    header: str = "paula@company.example",
    envelope: str | None = None,
    *,
    signed: str | None = None,
    spf: str | None = None,
    **kw: Any,
) -> AbuseReport:
    author = header.rsplit("@", 1)[-1]
    auth = ReportAuth(
        checked=True, from_domain=author, dkim_pass=[signed] if signed else [], dkim_aligned=bool(signed), spf=spf
    )
    values: dict[str, Any] = {
        "format": "freetext",
        "reporter": header,
        "reporter_kind": "person",
        "auth": auth,
        "envelope": Envelope(mail_from=header if envelope is None else envelope, received_at=NOW),
    }
    return AbuseReport.model_validate(values | kw)


def test_a_receipt_goes_to_the_sender_when_envelope_and_from_agree() -> None:
    assert receipt_address(person()) == "paula@company.example"
    assert receipt_address(person("Paula@Company.example", "paula@company.example")) == "Paula@Company.example"


def test_no_receipt_when_envelope_and_from_disagree_and_the_from_is_not_authenticated() -> None:
    planted = person("victim@third-party.example", "mallory@attacker.example")
    assert receipt_address(planted) is None
    allowed, why = may_mail(planted)
    assert not allowed and "third party" in why


def test_an_authenticated_from_sends_the_receipt_to_its_own_envelope_sender() -> None:
    signed = person("paula@company.example", "bounces+123@mail.company.example", signed="company.example")
    assert receipt_address(signed) == "bounces+123@mail.company.example"


def test_an_authenticated_from_cannot_point_the_receipt_at_a_foreign_envelope() -> None:
    relayed = person("me@gmail.com", "victim@third-party.example", signed="gmail.com")
    assert receipt_address(relayed) == "me@gmail.com"  # the proven author, never the foreign envelope
    spf_vouched = person("me@gmail.com", "me@isp.example", signed="gmail.com", spf="pass")
    assert receipt_address(spf_vouched) == "me@isp.example"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"envelope": Envelope(mail_from="", received_at=NOW)}, "null envelope sender"),
        ({"automated": True}, "automated"),
        ({"reporter_kind": "feedback-loop", "format": "arf"}, "feedback loops"),
        ({"format": "shadowserver", "reporter_kind": "unknown"}, "feedback loops"),
        ({"reporter": "noreply@company.example", "envelope": Envelope(mail_from="noreply@company.example")}, "no ans"),
        ({"reporter": "MAILER-DAEMON@company.example", "envelope": Envelope()}, "no answers"),
        ({"reporter": "owner-list@company.example", "envelope": Envelope()}, "no answers"),
        ({"reporter": None}, "names no sender"),
    ],
)
def test_nobody_is_mailed_for_robots_null_senders_and_addresses_that_take_no_mail(
    changes: dict[str, Any], reason: str
) -> None:
    report = person().model_copy(update=changes)
    allowed, why = may_mail(report)
    assert not allowed and reason in why
    assert receipt_address(report) is None


def test_our_own_abuse_address_is_never_answered() -> None:
    loop = person("Abuse@Hosting.example", "abuse@hosting.example")
    assert may_mail(loop, own_addresses=["abuse@hosting.example"]) == (False, "one of our own addresses (a mail loop)")


def test_an_internationalized_address_may_be_mailed() -> None:
    assert receipt_address(person("jörg@bücher.example")) == "jörg@bücher.example"


def test_a_report_entered_without_an_smtp_envelope_is_answered_at_its_sender() -> None:
    offline = person().model_copy(update={"envelope": Envelope()})
    assert receipt_address(offline) == "paula@company.example"


def test_a_header_injection_address_is_refused() -> None:
    bad = person("paula@company.example\r\nBcc: x@y.example", "paula@company.example\r\nBcc: x@y.example")
    assert receipt_address(bad) is None


def test_the_subject_is_cut_and_cleaned_before_it_is_quoted() -> None:
    assert clean_subject("Phishing\r\nBcc: victim@example.org") == "Phishing Bcc: victim@example.org"
    assert clean_subject("a\x00b\x1b[31mc\u202ed\tend") == "a b [31mc d end"
    long = clean_subject("word " * 100)
    assert len(long) <= 120 and long.endswith("…") and "\n" not in long
    assert clean_subject(None) == "" and clean_subject("   ") == ""
    assert clean_subject("x" * 500, limit=50) == "x" * 49 + "…"
