"""A big mail is parsed in a child process (ingest.apart): what normalize publishes is what a thread would have
parsed, DKIM included, and a child that fails is an error the broker retries, not a lost report."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import ingest.apart
import ingest.normalize
from core import packing
from core.messages import INCIDENTS_PER_LINE, Message, ReportParsed, ReportReceived, decode_message
from core.report import Envelope, ReportAuth
from ingest.apart import parse_apart
from ingest.authenticate import pinned_lookup
from ingest.normalize import NormalizeWorker
from ingest.parse import parse_received
from tests.dkimkey import dns_name, sign, txt_record
from tests.unit.test_parse_incidents import HEADER, _rows, _shadowserver_mail

REPORTER = "feeds.cert.example"


def _received(raw: bytes) -> ReportReceived:
    envelope = Envelope(mail_from=f"autoreports@{REPORTER}", rcpt_tos=("abuse@hosting.example",), peer="127.0.0.1")
    return ReportReceived(report_id="r-apart", raw=raw, envelope=envelope.model_copy(update={"received_at": T0}))


T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


async def _published(raw: bytes, big_mail: int, monkeypatch: pytest.MonkeyPatch) -> tuple[ReportParsed, bytes]:
    """What normalize publishes for `raw` when mails over `big_mail` bytes go to a child: the message and its body."""
    monkeypatch.setattr(ingest.normalize, "BIG_MAIL", big_mail)
    published: list[Message] = []

    async def publish(message: Message) -> None:
        published.append(message)

    lookup = pinned_lookup({dns_name(REPORTER): txt_record()}, None, 1.0)
    await NormalizeWorker(publish, lookup).handle(_received(raw))
    (message,) = published
    assert isinstance(message, ReportParsed)
    return message, message.to_bytes()


async def test_a_feed_parsed_in_a_child_is_published_as_a_thread_would_have_parsed_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = 6 * INCIDENTS_PER_LINE + 7  # a body of lines, over the packing limit
    raw = sign(_shadowserver_mail("\n".join([HEADER, *_rows(rows)]) + "\n"), REPORTER)
    here, here_body = await _published(raw, len(raw), monkeypatch)  # not over: parsed in a thread
    apart, apart_body = await _published(raw, len(raw) - 1, monkeypatch)  # over: parsed in a child
    assert len(here.report.incidents) == rows  # parsed here: the message holds its incidents
    assert packing.is_packed(apart_body)  # packed by the child, as the broker would have packed it
    assert apart.report.incidents == []  # the parent holds only the head: the incidents travel in the body
    assert apart.report.format == "shadowserver" and apart.report.auth.dkim_pass == [REPORTER]
    decoded = decode_message(apart_body)
    assert isinstance(decoded, ReportParsed)
    assert len(decoded.report.incidents) == rows
    expected = decode_message(here_body)
    assert isinstance(expected, ReportParsed)
    assert decoded.report.model_dump(exclude={"parsed_at"}) == expected.report.model_dump(exclude={"parsed_at"})
    assert decoded.message_id == apart.message_id and decoded.report_id == "r-apart"


async def test_a_small_complaint_parsed_in_a_child_is_one_document_with_its_dkim_verdict() -> None:
    raw = b"From: someone@victim.example\nSubject: phishing\n\nhttp://198.51.100.7/login is a phishing page\n"
    auth = ReportAuth(checked=True, dkim_pass=["victim.example"])
    parsed = await parse_apart(_received(raw), auth)
    body = parsed.to_bytes()
    assert not packing.is_packed(body) and b"\n" not in body
    decoded = decode_message(body)
    assert isinstance(decoded, ReportParsed)
    assert decoded.report.auth == auth and decoded.report.source_ips == ["198.51.100.7"]


async def test_a_child_that_fails_is_an_error_naming_its_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/bin/false")  # a child that dies at once, saying nothing
    with pytest.raises(RuntimeError, match=r"child process failed \(exit 1\): no output"):
        await parse_apart(_received(b"From: a@b.example\n\nhello\n"), None)


def _child(tmp_path: Path, script: str) -> str:
    path = tmp_path / "child.sh"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return str(path)


async def test_a_body_cut_short_is_an_error_not_a_report(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    head = ReportParsed(report_id="r", report=parse_received(_received(b"x"))).head()
    cut = _child(tmp_path, f"cat >/dev/null; printf '%s' '100 {head.model_dump_json()}\nshort'")
    monkeypatch.setattr(sys, "executable", cut)  # exit 0, but 5 bytes of the 100 announced
    with pytest.raises(RuntimeError, match=r"exit 0\): \d+ bytes of output"):
        await parse_apart(_received(b"From: a@b.example\n\nhello\n"), None)


async def test_a_cancelled_parse_kills_its_child(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    started: list[asyncio.subprocess.Process] = []
    running = asyncio.Event()
    spawn = asyncio.create_subprocess_exec

    async def watched(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        started.append(await spawn(*args, **kwargs))
        running.set()
        return started[-1]

    monkeypatch.setattr(sys, "executable", _child(tmp_path, "exec sleep 60"))
    monkeypatch.setattr(asyncio, "create_subprocess_exec", watched)
    task = asyncio.ensure_future(parse_apart(_received(b"From: a@b.example\n\nhello\n"), None))
    await running.wait()
    task.cancel()  # the handler's timeout, or a stop
    with pytest.raises(asyncio.CancelledError):
        await task
    assert started[0].returncode == -9  # killed and waited for: no child left behind


async def test_big_mails_delivered_at_once_start_no_more_children_than_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    running: list[int] = []
    peak = [0]

    async def counting(message: ReportReceived, auth: ReportAuth | None) -> ReportParsed:
        running.append(1)
        peak[0] = max(peak[0], len(running))
        try:
            return await parse_apart(message, auth)
        finally:
            running.pop()

    monkeypatch.setattr(ingest.normalize, "BIG_MAIL", 0)
    monkeypatch.setattr(ingest.normalize, "parse_apart", counting)
    published: list[Message] = []

    async def publish(message: Message) -> None:
        published.append(message)

    worker = NormalizeWorker(publish)
    mails = [f"From: a@b.example\nSubject: {n}\n\nhttp://198.51.100.{n}/x is phishing\n".encode() for n in range(5)]
    await asyncio.gather(*(worker.handle(_received(raw)) for raw in mails))
    assert peak[0] == ingest.apart.AT_ONCE and len(published) == 5


async def test_the_child_runs_our_code_whatever_the_working_directory_holds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "ingest").mkdir()
    (tmp_path / "ingest" / "__init__.py").write_text('raise SystemExit("another checkout\'s ingest")\n')
    monkeypatch.chdir(tmp_path)  # `abuse-desk run` started inside some other checkout
    parsed = await parse_apart(_received(b"From: a@b.example\n\nhttp://198.51.100.9/x is phishing\n"), None)
    assert parsed.report.source_ips == ["198.51.100.9"]
