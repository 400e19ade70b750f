"""Broker bodies back into messages: ours (type first), anyone's (type anywhere), and what is not a message."""

from __future__ import annotations

import pytest

from core.errors import ContractError
from core.messages import ReportParsed, ServiceLifted, decode_message
from core.report import AbuseReport


def test_a_message_we_published_comes_back_equal() -> None:
    sent = ReportParsed(report_id="r1", report=AbuseReport(report_id="r1", urls=["http://a.example/x"]))
    assert decode_message(sent.to_bytes()) == sent


def test_a_body_with_its_type_last_is_still_read() -> None:
    body = b'  {"report_id": "r2", "service_ids": ["S1"], "type": "service.lifted.v1"}'
    got = decode_message(body)
    assert isinstance(got, ServiceLifted) and got.service_ids == ["S1"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"type":"report.parsed.v1","report":{},"type":"service.lifted.v1"}',  # two types: the last one counts
        b'{"type":"nope.v1","x":1}',
        b'{"type":"report.parsed.v1",',
        b"not json",
        b'["type"]',
    ],
)
def test_what_is_not_one_of_our_messages_is_a_contract_error(body: bytes) -> None:
    with pytest.raises(ContractError):
        decode_message(body)
