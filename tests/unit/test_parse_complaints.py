"""Complaints about us are understood (FR/EN/DE/ES) and urgent notices are recognized whatever words they use."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.report import AbuseReport
from ingest import notice
from ingest.parse import parse_report

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def parse(name: str) -> AbuseReport:
    return parse_report((SAMPLES / name).read_bytes())


@pytest.mark.parametrize(
    ("name", "offender", "victim"),
    [
        ("complaint_en_your_server.eml", "203.0.113.10", "198.51.100.7"),
        ("complaint_fr_attaque_depuis.eml", "203.0.113.11", "198.51.100.8"),
        ("complaint_de_angriff_von.eml", "203.0.113.12", "198.51.100.9"),
        ("complaint_es_ataque_desde.eml", "203.0.113.13", "198.51.100.10"),
    ],
)
def test_offending_side_not_the_victim(name: str, offender: str, victim: str) -> None:
    report = parse(name)
    assert report.source_ips == [offender]
    assert [i.ip for i in report.incidents] == [offender]
    assert report.category == "intrusion"


def test_ip_literal_url_host_is_a_source_with_its_url() -> None:
    report = parse("complaint_en_ip_url.eml")
    url = "http://203.0.113.20/secure/login.php"
    assert report.source_ips == ["203.0.113.20"]
    assert url in report.urls
    assert [(i.ip, i.url) for i in report.incidents] == [("203.0.113.20", url)]
    assert report.domains == []


def test_url_only_in_an_html_href() -> None:
    report = parse("complaint_en_href.eml")
    assert report.urls == ["https://account-verify.evil-login.example/signin?id=42&x=1"]
    assert report.incidents[0].domain == "account-verify.evil-login.example"


def test_url_in_a_quoted_reply_chain() -> None:
    report = parse("complaint_fr_reply_chain.eml")
    assert report.urls == ["https://faux-impots.example.org/remboursement/index.php"]
    assert report.category == "phishing"


def test_domain_named_in_running_text_not_the_victims() -> None:
    report = parse("complaint_en_domain_prose.eml")
    assert report.domains == ["evil-shop.example"]
    assert [i.domain for i in report.incidents] == ["evil-shop.example"]


@pytest.mark.parametrize(
    ("name", "sign"),
    [
        ("urgent_en_threat.eml", "threat_to_life"),
        ("urgent_fr_menace.eml", "threat_to_life"),
        ("urgent_de_drohung.eml", "threat_to_life"),
        ("urgent_es_amenaza.eml", "threat_to_life"),
        ("urgent_en_csam.eml", "csam"),
        ("urgent_fr_csam.eml", "csam"),
        ("urgent_de_csam.eml", "csam"),
        ("urgent_es_csam.eml", "csam"),
        ("urgent_en_order.eml", "authority_order"),
        ("urgent_fr_requisition.eml", "authority_order"),
        ("urgent_de_anordnung.eml", "authority_order"),
        ("urgent_es_orden.eml", "authority_order"),
    ],
)
def test_urgent_notices_are_the_most_severe_category(name: str, sign: str) -> None:
    report = parse(name)
    assert report.category == "illegal-content"
    flags = {k: getattr(report.notice, k) for k in ("threat_to_life", "csam", "authority_order")}
    assert flags == {k: k == sign for k in flags}
    assert report.incidents


def test_csam_url_on_an_address_is_kept() -> None:
    report = parse("urgent_en_csam.eml")
    assert report.urls == ["http://203.0.113.34/gallery/"]
    assert report.incidents[0].ip == "203.0.113.34"


@pytest.mark.parametrize(
    "text",
    [
        "Kind regards, this is a minor abuse issue with sexual spam from your server.",
        "Please kill -9 the process; the death of spam is near. Our life is easy.",
        "Achetez des médicaments sans ordonnance. In order to unsubscribe, click here.",
        "Auf Anordnung unseres Chefs melden wir Spam. El auto se vende en menor precio.",
    ],
)
def test_ordinary_words_are_not_urgent(text: str) -> None:
    signs = notice.elements(AbuseReport(), text)
    assert not notice.urgent(signs)


def test_a_quoted_threat_in_a_forwarded_spam_is_not_the_notifiers() -> None:
    raw = (
        b"From: Bob <bob@isp-sample.example>\nTo: abuse@hosting.example\nSubject: spam\n\n"
        b"Hello, here is a spam I received from 192.0.2.9.\n\n"
        b"---------- Forwarded message ---------\nFrom: x@spam.example\n\n"
        b"Pay or I will kill you.\n"
    )
    report = parse_report(raw)
    assert report.notice.threat_to_life is False
    assert report.category != "illegal-content"
