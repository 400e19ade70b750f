"""parse_report never raises and stays bounded in time and memory on hostile or broken input."""

from __future__ import annotations

import base64
import io
import time
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.report import AbuseReport
from ingest.formats import archive, mime
from ingest.parse import parse_report

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"  # read in place when present
SEEDS = [p.read_bytes() for p in sorted(SAMPLES.glob("*.eml"))]
SEEDS += [p.read_bytes() for p in sorted(CORPUS.glob("*/*"))[::4] if p.stat().st_size < 64 * 1024]
SEEDS = SEEDS or [b"From: a@example.com\n\nhello"]
LIMIT_S = 2.0  # loose per-report bound (CI machines are slow); typical reports take well under 1 ms


def timed(raw: bytes) -> tuple[AbuseReport, float]:
    start = time.perf_counter()
    report = parse_report(raw)
    return report, time.perf_counter() - start


def check(raw: bytes, limit: float = LIMIT_S) -> AbuseReport:
    report, elapsed = timed(raw)
    assert isinstance(report, AbuseReport)
    assert elapsed < limit, f"took {elapsed:.2f}s"
    assert len(report.evidence.encode()) <= 4096
    return report


def _mutate(seed: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    data = bytearray(seed)
    for pos, length, chunk in edits:
        pos %= len(data) + 1
        data[pos : pos + length] = chunk
    return bytes(data)


FUZZ = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(
        st.tuples(
            st.integers(0, 10_000),
            st.integers(0, 64),
            st.sampled_from([b"", b"\n", b"\n\n", b"--", b":", b"=?", b"=\n", b"\x00", b"\xff\xfe", b"<", b"[.]"])
            | st.binary(max_size=32),
        ),
        max_size=8,
    ),
)
def test_mutated_mail_never_raises(seed: bytes, edits: list[tuple[int, int, bytes]]) -> None:
    check(_mutate(seed, edits))


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_never_raise(raw: bytes) -> None:
    check(raw)


@FUZZ
@given(
    headers=st.lists(st.tuples(st.text("abcdefgXYZ-", min_size=1, max_size=12), st.text(max_size=80)), max_size=12),
    ctype=st.sampled_from(
        [
            "multipart/mixed; boundary=b",
            "multipart/report; report-type=feedback-report",
            "message/rfc822",
            "message/feedback-report",
            "text/html; charset=bogus",
            "text/plain",
        ]
    ),
    body=st.text(max_size=1500),
)
def test_generated_mime_never_raises(headers: list[tuple[str, str]], ctype: str, body: str) -> None:
    head = "".join(f"{k}: {v}\n" for k, v in headers)
    check(f"{head}Content-Type: {ctype}\n\n--b\nContent-Type: text/plain\n\n{body}\n--b--\n".encode("utf-8", "replace"))


def test_mime_bomb_many_parts_is_cut() -> None:
    parts = "".join(f"--b\nContent-Type: text/plain\n\npart {i} from 192.0.2.{i % 250}\n" for i in range(5000))
    report = check(f"From: x@example.com\nContent-Type: multipart/mixed; boundary=b\n\n{parts}--b--\n".encode())
    assert any("MIME tree cut" in w for w in report.parse_warnings)
    tree = mime.parse_message(f"Content-Type: multipart/mixed; boundary=b\n\n{parts}".encode())
    assert sum(1 for _ in tree.walk()) <= mime.MAX_PARTS


def test_deep_nesting_is_cut() -> None:
    raw = b"Subject: deep 192.0.2.1\n"
    for level in range(2000):
        raw = (
            f"Content-Type: multipart/mixed; boundary=l{level}\n\n--l{level}\n".encode()
            + raw
            + f"\n--l{level}--\n".encode()
        )
    check(b"From: x@example.com\n" + raw)
    nested = b"Subject: inner\n\nbody"
    for _ in range(500):
        nested = b"Content-Type: message/rfc822\n\n" + nested
    tree = mime.parse_message(nested)
    assert max(p.depth for p in tree.walk()) <= mime.MAX_DEPTH


def test_huge_headers() -> None:
    check(b"Subject: " + b"A" * 5_000_000 + b"\n\nbody 192.0.2.1\n")
    many = b"".join(b"X-H%d: v\n" % i for i in range(200_000))
    report = check(b"From: x@example.com\n" + many + b"\nbody from 192.0.2.9\n")
    assert isinstance(report.source_ips, list)
    folded = b"Received: from a\n" + b" continuation [192.0.2.1]\n" * 100_000 + b"\nbody"
    check(folded)


def _zip_bomb(size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("2025-01-01-scan_x-asn.csv", "w") as fh:
        fh.write(b'"timestamp","ip","port"\n"2025-01-01 00:00:00","192.0.2.1",80\n')
        chunk = b"0" * (1024 * 1024)
        for _ in range(size // len(chunk)):
            fh.write(chunk)
    return buffer.getvalue()


def test_zip_bomb_stops_at_the_cap() -> None:
    bomb = _zip_bomb(64 * 1024 * 1024)
    assert len(bomb) < 1024 * 1024
    warnings: list[str] = []
    start = time.perf_counter()
    members = archive.unzip(bomb, warnings)
    assert sum(len(data) for _, data in members) <= archive.MAX_UNZIPPED
    assert any("cut at the cap" in w for w in warnings)
    assert time.perf_counter() - start < 5
    mail = (
        b"From: autoreports@shadowserver.org\nSubject: [x] Shadowserver Scan Report: 2025-01-01\n"
        b"Content-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: application/zip\n"
        b"Content-Transfer-Encoding: base64\n"
        b"Content-Disposition: attachment; filename=2025-01-01-scan_x-asn.csv.zip\n\n"
        + base64.encodebytes(bomb)
        + b"\n--z--\n"
    )
    report = check(mail, limit=10)
    assert report.format == "shadowserver"
    assert report.source_ips == ["192.0.2.1"]


def test_nested_zip_is_not_followed() -> None:
    inner = _zip_bomb(1024 * 1024)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("inner.zip", inner)
    warnings: list[str] = []
    assert archive.unzip(buffer.getvalue(), warnings) == []
    assert any("nested archive" in w for w in warnings)


def test_malformed_encodings() -> None:
    for body in (b"!!!not base64@@@", b"QUJD\n=\n==RA", b"QUJDRA", b"\xff\xfe\x00"):
        check(b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n" + body)
    check(b"Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n=ZZ=\n=0=3")
    for charset in (b"bogus-8bit", b"undefined", b"unicode_escape", b"utf-7", b"rot13", b'"', b"x" * 500):
        report = check(
            b"Subject: =?"
            + charset
            + b"?Q?caf=E9?=\nContent-Type: text/plain; charset="
            + charset
            + b"\n\ncaf\xe9 \\u12 from 192.0.2.3 +AGEA-"
        )
        assert report.source_ips == ["192.0.2.3"]


def test_nul_bytes_and_long_lines() -> None:
    check(b"From: a@example.com\x00\nSubject: \x00\x00\n\n\x00" * 1000)
    report = check(b"Subject: big\n\n" + b"x" * (10 * 1024 * 1024) + b" 192.0.2.5", limit=5)
    assert isinstance(report, AbuseReport)
    check(b"9" * (10 * 1024 * 1024), limit=5)
    check(b"<a " * 1_000_000, limit=5)


def test_regex_heavy_inputs_are_linear() -> None:
    # strings crafted against the indicator regexes (dotted runs, colon runs, long URLs, HTML tags)
    for payload in (
        b"1." * 200_000,
        b"a." * 200_000 + b"!",
        b":" * 300_000,
        b"http://" + b"a" * 500_000,
        b"<" * 300_000,
        b"hxxp[.]" * 50_000,
        b"a@" * 200_000,
        b"=?utf-8?q?" * 50_000,
    ):
        check(b"Subject: x\nContent-Type: text/html\n\n" + payload, limit=5)
