"""Broker bodies back into messages: ours (type first; a bulk report in lines), anyone's, and what is not one."""

from __future__ import annotations

import asyncio
import gc
import json

import pytest

from core.errors import ContractError
from core.messages import INCIDENTS_PER_LINE, ReportParsed, ServiceLifted, decode_message, decoding, head_of
from core.report import AbuseReport, Incident
from core.steps import at_once, in_turns


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


def _bulk(rows: int) -> ReportParsed:
    incidents = [
        Incident(ip=f"198.18.{n // 250}.{n % 250}", port=6379, evidence=f'"ip"\n"row {n}"') for n in range(rows)
    ]
    return ReportParsed(report_id="b1", report=AbuseReport(report_id="b1", format="shadowserver", incidents=incidents))


def test_a_bulk_report_travels_as_lines_of_incidents_and_comes_back_equal() -> None:
    sent = _bulk(INCIDENTS_PER_LINE * 2 + 7)
    body = sent.to_bytes()
    _head, *lines = body.split(b"\n")
    assert len(lines) == 3 and head_of(body)["incident_lines"] == 3 and head_of(body)["report_id"] == "b1"
    assert [len(json.loads(line)) for line in lines] == [INCIDENTS_PER_LINE, INCIDENTS_PER_LINE, 7]
    got = decode_message(body)
    assert got == sent and isinstance(got, ReportParsed) and got.incident_lines == 0
    assert got.report.incidents[-1].evidence == f'"ip"\n"row {INCIDENTS_PER_LINE * 2 + 6}"'  # a newline inside a value


def test_a_report_of_few_incidents_stays_one_json_document() -> None:
    body = _bulk(INCIDENTS_PER_LINE).to_bytes()
    assert b"\n" not in body and json.loads(body)["incident_lines"] == 0


def test_a_pretty_printed_body_is_one_document_not_lines() -> None:
    sent = _bulk(3)
    body = json.dumps(json.loads(sent.to_bytes()), indent=2).encode()
    assert decode_message(body) == sent and head_of(body)["type"] == "report.parsed.v1"


@pytest.mark.parametrize("cut", [1, -1])
def test_a_body_of_lines_missing_a_line_or_with_one_too_many_is_a_contract_error(cut: int) -> None:
    head, *lines = _bulk(INCIDENTS_PER_LINE * 3).to_bytes().split(b"\n")
    lines = lines[:-1] if cut == 1 else [*lines, lines[0]]
    with pytest.raises(ContractError, match="lines of incidents announced"):
        decode_message(b"\n".join([head, *lines]))


async def test_a_bulk_body_is_decoded_in_steps_that_let_the_event_loop_run_others() -> None:
    body = _bulk(INCIDENTS_PER_LINE * 4).to_bytes()
    ticks = 0
    stop = asyncio.Event()

    async def other() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    await asyncio.sleep(0)
    before = ticks
    got = await in_turns(decoding(body))
    stop.set()
    await task
    assert isinstance(got, ReportParsed) and len(got.report.incidents) == INCIDENTS_PER_LINE * 4
    assert ticks - before >= 4  # one turn of the other task per line at least
    assert at_once(decoding(body)) == got


async def test_what_stepwise_work_made_stays_out_of_the_gc_scans_until_the_thaw() -> None:
    import core.steps

    core.steps._unfreeze()
    body = ReportParsed(report_id="r", report=_bulk(INCIDENTS_PER_LINE * 3).report).to_bytes()
    loop = asyncio.get_running_loop()
    asked = loop.time()
    got = await in_turns(decoding(body))
    assert isinstance(got, ReportParsed) and len(got.report.incidents) == INCIDENTS_PER_LINE * 3
    assert gc.get_freeze_count() > 0  # the incidents just made are frozen: no full collection rescans them
    thaw = core.steps._thaw
    assert thaw is not None and asked + core.steps.THAW_AFTER <= thaw.when() <= loop.time() + core.steps.THAW_AFTER
    thaw.cancel()
    core.steps._unfreeze()  # what the timer runs
    assert gc.get_freeze_count() == 0 and core.steps._thaw is None


async def test_cyclic_garbage_frozen_with_stepwise_work_is_collected_at_the_thaw() -> None:
    import weakref

    import core.steps

    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the cyclic GC frees it

    node = Node()
    gone = weakref.ref(node)
    await in_turns(decoding(_bulk(INCIDENTS_PER_LINE * 2).to_bytes()))
    del node
    gc.collect()
    assert gone() is not None  # frozen: no collection sees it, a full one included
    if core.steps._thaw is not None:
        core.steps._thaw.cancel()
    core.steps._unfreeze()  # what the timer runs
    assert gone() is None
