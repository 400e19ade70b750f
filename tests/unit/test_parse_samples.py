"""parse_report on hand-written samples the corpus lacks (FR/DE/ES complaints, encodings, wrappers)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.report import AbuseReport, Envelope
from ingest.parse import parse_report

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def parse(name: str) -> AbuseReport:
    return parse_report((SAMPLES / name).read_bytes())


@pytest.mark.parametrize(
    ("name", "category", "ips", "urls", "language"),
    [
        (
            "fr_phishing_qp.eml",
            "phishing",
            ["203.0.113.45"],
            ["https://secure-login.example.net/banque/connexion.php"],
            "fr",
        ),
        ("fr_pourriel_forward.eml", "spam", ["198.51.100.77"], [], "fr"),
        ("fr_intrusion_logs.eml", "intrusion", ["203.0.113.66"], [], "fr"),
        ("de_bruteforce.eml", "intrusion", ["192.0.2.150"], [], "de"),
        ("es_malware.eml", "malware", ["198.51.100.99"], ["http://descargas.example.com/factura.exe"], "es"),
        (
            "en_html_only.eml",
            "phishing",
            ["203.0.113.80"],
            ["http://login-verify.example.com/account/update.html"],
            "en",
        ),
        ("en_base64_ipv6.eml", "spam", ["2001:db8::25"], [], "en"),
        ("en_defanged.eml", "phishing", ["203.0.113.9"], ["https://evil-portal.example.com/owa/login.php"], "en"),
        ("en_inline_forward.eml", "spam", ["192.0.2.201"], [], "en"),
        ("abusech_urlhaus.eml", "malware", ["198.51.100.23"], ["http://198.51.100.23/bins/x86"], "en"),
        ("pgp_signed.eml", "malware", ["192.0.2.66"], [], "en"),
    ],
)
def test_free_text_samples(name: str, category: str, ips: list[str], urls: list[str], language: str) -> None:
    report = parse(name)
    assert report.format == "freetext"
    assert report.category == category
    assert 0.0 < report.category_confidence < 0.9  # vocabulary guesses stay below machine-field confidence
    assert report.source_ips == ips
    for url in urls:
        assert url in report.urls
    assert report.language == language


def test_french_phishing_quoted_printable_fields() -> None:
    report = parse("fr_phishing_qp.eml")
    assert report.subject == "Signalement d'un site d'hameçonnage"
    assert report.reporter == "securite@banque.example.org"
    assert report.reporter_kind == "person"
    assert report.automated is False
    assert report.message_id == "<fr-phish-1@banque.example.org>"
    assert "secure-login.example.net" in report.domains


def test_french_intrusion_excludes_the_victim_and_keeps_log_lines() -> None:
    report = parse("fr_intrusion_logs.eml")
    assert "198.51.100.20" not in report.source_ips  # "notre serveur": the victim
    assert "Failed password for root from 203.0.113.66" in report.evidence
    assert len(report.evidence.encode()) <= 4096


def test_french_pourriel_reads_the_forwarded_message() -> None:
    report = parse("fr_pourriel_forward.eml")
    assert report.reported_message_id == "<promo-12345@offres-speciales.example>"
    assert "offres-speciales.example" in report.domains
    assert "promo@offres-speciales.example" in report.emails
    assert report.observed_at == datetime(2025, 2, 3, 7, 55, 8, tzinfo=UTC)
    assert "Received: from mail.offres-speciales.example" in report.evidence
    assert report.reported_received[0].startswith("from mail.offres-speciales.example")


def test_inline_forward_names_the_sender() -> None:
    report = parse("en_inline_forward.eml")
    assert "winner@prizes.example" in report.emails
    assert "prizes.example" in report.domains


def test_html_only_strips_scripts_and_styles() -> None:
    report = parse("en_html_only.eml")
    assert not any("ignored.example" in url for url in report.urls)


def test_abusech_notice_is_machine_with_time() -> None:
    report = parse("abusech_urlhaus.eml")
    assert report.automated is True
    assert report.reporter_kind == "machine"
    assert report.observed_at == datetime(2025, 3, 26, 5, 41, 12, tzinfo=UTC)


def test_envelope_and_report_id_are_copied() -> None:
    received = datetime(2025, 3, 27, 12, 0, tzinfo=UTC)
    envelope = Envelope(mail_from="", rcpt_tos=("abuse@hebergeur.example",), received_at=received)
    report = parse_report((SAMPLES / "pgp_signed.eml").read_bytes(), envelope=envelope, report_id="r-42")
    assert report.report_id == "r-42"
    assert report.envelope == envelope
    assert report.received_at == received
    assert report.automated is True  # null envelope sender


def test_rt_wrapper_uses_the_originator() -> None:
    raw = (
        b'From: "reporter@example.net via RT" <abuse@hebergeur.example>\n'
        b"X-RT-Originator: reporter@example.net\nSubject: [rt #1] Abuse from 192.0.2.7\n\n"
        b"Ticket <URL: https://rt.hebergeur.example/Ticket/Display.html?id=1 >\nPort scan from 192.0.2.7.\n"
    )
    report = parse_report(raw)
    assert report.reporter == "reporter@example.net"
    assert report.source_ips == ["192.0.2.7"]
    assert report.urls == []
