"""Every parser fills AbuseReport.incidents; each incident carries only its own row, event or indicator."""

from __future__ import annotations

import base64
import io
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.parse import parse_report

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
HEADER = '"timestamp","ip","protocol","port","hostname","tag","asn","geo"'


def _rows(count: int) -> list[str]:
    return [
        f'"2024-05-01 10:{i // 60 % 60:02d}:{i % 60:02d}","198.51.{i // 250 % 256}.{i % 250 + 1}","tcp",'
        f'{23 + i % 3},"h{i}.example.net","telnet",64500,"ZZ"'
        for i in range(count)
    ]


def _shadowserver_mail(csv_text: str, name: str = "2024-05-01-scan_telnet-sample-asn.csv") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, csv_text)
    payload = base64.encodebytes(buf.getvalue()).decode()
    return (
        "From: autoreports@shadowserver.org\nTo: abuse@hosting.example\n"
        "Subject: [Shadowserver] Accessible Telnet Report: 2024-05-01\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b1"\n\n--b1\nContent-Type: text/plain\n\nReport attached.\n'
        f'--b1\nContent-Type: application/zip; name="{name}.zip"\n'
        f'Content-Disposition: attachment; filename="{name}.zip"\nContent-Transfer-Encoding: base64\n\n'
        f"{payload}\n--b1--\n"
    ).encode()


def test_zipped_csv_one_incident_per_row_with_only_its_own_row() -> None:
    rows = _rows(5)
    report = parse_report(_shadowserver_mail("\n".join([HEADER, *rows]) + "\n"))
    assert report.format == "shadowserver"
    assert len(report.incidents) == 5
    for row, incident in zip(rows, report.incidents, strict=True):
        assert incident.evidence == f"{HEADER}\n{row}"
        others = [r for r in rows if r != row]
        assert not any(other in incident.evidence for other in others)
        assert incident.ip is not None and incident.ip in row
        assert incident.protocol == "tcp"
        assert incident.tag == "telnet"
        assert incident.category == "vulnerability"
    first = report.incidents[0]
    assert (first.ip, first.port, first.observed_at) == ("198.51.0.1", 23, datetime(2024, 5, 1, 10, 0, tzinfo=UTC))
    assert report.source_ips == [i.ip for i in report.incidents]


def test_quoted_multiline_field_stays_in_its_own_row() -> None:
    text = 'ip,port,tag,banner\n192.0.2.1,80,http,"two\nlines"\n192.0.2.2,443,https,one\n'
    report = parse_report(_shadowserver_mail(text))
    assert [i.evidence for i in report.incidents] == [
        'ip,port,tag,banner\n192.0.2.1,80,http,"two\nlines"',
        "ip,port,tag,banner\n192.0.2.2,443,https,one",
    ]


def test_hundred_thousand_rows_parse_in_seconds() -> None:
    raw = _shadowserver_mail("\n".join([HEADER, *_rows(100_000)]) + "\n")
    start = time.process_time()
    report = parse_report(raw)
    elapsed = time.process_time() - start
    assert len(report.incidents) == 100_000
    assert report.incidents[-1].evidence.count("\n") == 1
    assert elapsed < 15, f"{elapsed:.1f}s of CPU for 100,000 rows"


def test_bare_intelmq_csv_rows() -> None:
    path = CORPUS / "shadowserver" / "intelmq__test_telnet.csv"
    if not path.is_file():
        pytest.skip("corpus not present")
    report = parse_report(path.read_bytes())
    assert len(report.incidents) == 2  # same address twice: two rows, two incidents
    assert {i.ip for i in report.incidents} == {"198.123.245.145"}
    assert all(i.port == 5678 and i.tag == "telnet-alt" for i in report.incidents)
    assert "MikroTik v6.5|" in report.incidents[0].evidence
    assert "v6.45.3" not in report.incidents[0].evidence


def test_spamcop_one_incident_per_ip() -> None:
    raw = (
        b"From: spamcop@reports.spamcop.net\nTo: abuse@hosting.example\n"
        b"Subject: [SpamCop (198.51.100.5) id:123456]Buy now\n\n"
        b"- SpamCop V5.4.0 -\n"
        b"Email from 198.51.100.5 / Mon, 03 Mar 2025 09:00:00 +0000\n"
        b"Email from 198.51.100.6 / Mon, 03 Mar 2025 09:05:00 +0000\n"
    )
    report = parse_report(raw)
    assert report.format == "spamcop"
    assert [(i.ip, i.observed_at) for i in report.incidents] == [
        ("198.51.100.5", datetime(2025, 3, 3, 9, 0, tzinfo=UTC)),
        ("198.51.100.6", datetime(2025, 3, 3, 9, 5, tzinfo=UTC)),
    ]
    assert "198.51.100.6" not in report.incidents[0].evidence


def test_xarf_json_one_event() -> None:
    raw = (
        b'{"xarf_version": "4.0.0", "category": "connection", "type": "login_attack",'
        b' "source_identifier": "192.0.2.44", "source_port": 2222, "timestamp": "2025-03-03T09:00:00Z",'
        b' "reporter": {"org": "Example CERT", "contact": "cert@cert.example"}}'
    )
    report = parse_report(raw)
    assert len(report.incidents) == 1
    incident = report.incidents[0]
    assert (incident.ip, incident.port, incident.tag) == ("192.0.2.44", 2222, "connection/login_attack")
    assert incident.observed_at == datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def test_every_corpus_report_with_an_indicator_has_incidents() -> None:
    files = [p for p in sorted(CORPUS.glob("*/*")) if p.is_file()]
    if not files:
        pytest.skip("corpus not present")
    for path in files:
        report = parse_report(path.read_bytes())
        if report.source_ips or report.urls or report.domains or report.emails:
            assert report.incidents, path.name
        for incident in report.incidents:
            assert incident.ip is None or incident.ip in report.source_ips, path.name
            assert len(incident.evidence) <= 2048


def test_person_complaint_one_incident_per_indicator() -> None:
    report = parse_report((SAMPLES / "complaint_en_your_server.eml").read_bytes())
    assert [i.ip for i in report.incidents] == ["203.0.113.10"]
    incident = report.incidents[0]
    assert "Failed password for root from 203.0.113.10" in incident.evidence
    assert incident.observed_at == datetime(2025, 3, 3, 9, 12, 1, tzinfo=UTC)
    assert all("203.0.113.10" in line for line in incident.evidence.splitlines())  # only lines naming it
    assert "Please make it stop" not in incident.evidence
