"""The DSN parser reads the original sender and only the hard 5.1.x failures of our own sample bounces."""

from __future__ import annotations

from pathlib import Path

from ingest.formats.dsn import parse_dsn

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "dsn"


def test_postfix_postmaster_copy_gives_the_envelope_sender_and_unknown_recipients_only() -> None:
    info = parse_dsn((SAMPLES / "postfix-postmaster-copy.eml").read_bytes())
    assert info is not None and info.sender == "news@shop.customer1.example"  # X-Postfix-Sender, lowercased
    assert [(f.recipient, f.status) for f in info.failures] == [
        ("nobody1@gmail.example", "5.1.1"),
        ("nobody2@mail.example", "5.1.2"),
    ]  # the 5.7.1 spam rejection is not an unknown recipient
    assert info.reporting_mta == "mx1.hosting.example" and "does not exist" in info.failures[0].diagnostic


def test_sender_falls_back_to_the_original_message_headers() -> None:
    info = parse_dsn((SAMPLES / "generic-with-original-message.eml").read_bytes())
    assert info is not None and info.sender == "promo@customer2.example"
    assert [f.recipient for f in info.failures] == ["ghost@nowhere.example"]  # the delayed one is not counted


def test_delays_have_no_failures_and_a_mail_quoting_dsn_fields_is_not_a_dsn() -> None:
    delayed = parse_dsn((SAMPLES / "delayed-only.eml").read_bytes())
    assert delayed is not None and delayed.failures == ()
    assert parse_dsn((SAMPLES / "not-a-dsn.eml").read_bytes()) is None
    assert parse_dsn(b"\xff\xfe garbage \x00") is None
