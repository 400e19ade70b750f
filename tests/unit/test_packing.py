"""Big broker bodies packed with gzip: small ones untouched, big ones back byte for byte, in steps, bad ones refused."""

from __future__ import annotations

import gzip

import pytest

from core import packing
from core.errors import ContractError
from core.messages import INCIDENTS_PER_LINE, ReportParsed, decode_message, decoding, head_of
from core.report import AbuseReport, Incident
from core.steps import at_once

HEADER = '"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city","naics","sic"'


def _feed(rows: int) -> ReportParsed:
    """A Shadowserver-like report: every row's evidence repeats the CSV header, as the parser writes it."""
    incidents = [
        Incident(ip=f"198.18.{n // 250}.{n % 250}", port=6379, evidence=f'{HEADER}\n"2026-12-01","198.18.{n}"')
        for n in range(rows)
    ]
    return ReportParsed(report_id="f1", report=AbuseReport(report_id="f1", format="shadowserver", incidents=incidents))


def test_a_body_up_to_the_limit_is_published_as_it_is() -> None:
    body = b'{"type":"report.parsed.v1"}' + b" " * (packing.PACK_OVER - 27)
    assert len(body) == packing.PACK_OVER and packing.pack(body) is body and not packing.is_packed(body)
    assert packing.unpacked(body) is body and list(packing.chunks(body)) == [body]


def test_a_bulk_body_is_packed_to_a_fraction_and_decodes_to_the_same_message() -> None:
    sent = _feed(INCIDENTS_PER_LINE * 20)
    body = sent.to_bytes()
    wire = packing.pack(body)
    assert len(body) > packing.PACK_OVER and packing.is_packed(wire) and len(wire) * 10 < len(body)
    assert packing.unpacked(wire) == body
    assert decode_message(wire) == sent and at_once(decoding(wire)) == sent
    assert head_of(wire)["incident_lines"] == 20 and head_of(wire)["report_id"] == "f1"


def test_a_packed_body_unpacks_a_bounded_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packing, "STEP_BYTES", 1 << 20)
    sent = _feed(INCIDENTS_PER_LINE * 20)
    body = sent.to_bytes()
    pieces = list(packing.chunks(packing.pack(body)))
    assert b"".join(pieces) == body and len(pieces) > len(body) >> 20 and max(map(len, pieces)) <= 1 << 20
    assert decode_message(packing.pack(body)) == sent  # lines that run across chunks come back whole


def test_a_big_one_document_body_packed_decodes_to_the_same_message() -> None:
    urls = [f"http://h{n}.example/" + "x" * 200 for n in range(6000)]
    sent = ReportParsed(report_id="u1", report=AbuseReport(report_id="u1", urls=urls))
    wire = packing.pack(sent.to_bytes())
    assert packing.is_packed(wire) and b"\n" not in sent.to_bytes()
    assert decode_message(wire) == sent and head_of(wire)["report_id"] == "u1"


def test_encoding_a_bulk_report_takes_a_step_per_line_and_equals_to_bytes() -> None:
    sent = _feed(INCIDENTS_PER_LINE * 3 + 1)
    steps = sent.encoding()
    turns = 0
    while True:
        try:
            next(steps)
            turns += 1
        except StopIteration as done:
            assert done.value == sent.to_bytes()
            break
    assert turns == 4


@pytest.mark.parametrize(
    "damage",
    [
        lambda wire: wire[: len(wire) // 2],  # cut short
        lambda wire: wire[:20] + bytes(b ^ 0x55 for b in wire[20:60]) + wire[60:],  # corrupt
        lambda wire: wire + gzip.compress(b"more"),  # something after it
    ],
    ids=["cut-short", "corrupt", "trailing-member"],
)
def test_a_damaged_packed_body_is_a_contract_error_and_has_no_head(damage) -> None:  # type: ignore[no-untyped-def]
    wire = damage(packing.pack(_feed(INCIDENTS_PER_LINE * 20).to_bytes()))
    with pytest.raises(ContractError):
        decode_message(wire)
    assert head_of(wire) == {}
