"""A big mail parsed in a child process, so its seconds of CPU do not hold the GIL of the desk's own process."""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time

import structlog
from pydantic import BaseModel

from core import packing
from core.messages import ReportParsed, ReportReceived
from core.report import ReportAuth
from ingest.parse import parse_received

log = structlog.get_logger("ingest.apart")
BIG_MAIL = 1 << 20  # bytes of raw mail: a bigger one is parsed in a child process (a 100,000-row feed is 2.2 MB)
AT_ONCE = 2  # children parsing at once per process (one per core here; each feed's may take hundreds of MB)
_ERROR_TAIL = 500  # characters of the child's stderr kept in the error


class _Request(BaseModel):
    """What the child reads on its stdin: the mail as received, and its DKIM verdict (checked by the parent)."""

    message: ReportReceived
    auth: ReportAuth | None = None


def parsed(request: bytes) -> bytes:
    """The child's work: its stdout for a request. One line: the body's length in bytes, a space, the report
    without its incidents; then the whole report.parsed.v1 body, packed when big as `Broker.publish` would."""
    asked = _Request.model_validate_json(request)
    report = parse_received(asked.message)
    if asked.auth is not None:
        report.auth = asked.auth
    result = ReportParsed(report_id=report.report_id, report=report)
    body = packing.pack(result.to_bytes())
    return b"%d %s\n%s" % (len(body), result.head().model_dump_json().encode(), body)


async def parse_apart(message: ReportReceived, auth: ReportAuth | None) -> ReportParsed:
    """Parse `message` in `python -m ingest.apart`; its result is published as the child encoded it.

    A child that fails (a crash, killed for memory) raises RuntimeError naming its exit and its last words: the
    broker retries the report, then keeps it in the dead letters. Cancelled (the handler's timeout, a stop): the
    child is killed."""
    started = time.monotonic()
    request = _Request(message=message, auth=auth).model_dump_json().encode()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-P",  # not the working directory first on its path: the child runs the code this process runs
        "-m",
        "ingest.apart",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await child.communicate(request)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    first, _, body = out.partition(b"\n")
    length, _, head = first.partition(b" ")
    if child.returncode != 0 or not length.isdigit() or int(length) != len(body):  # cut short: never published
        words = err.decode("utf-8", "replace").strip()[-_ERROR_TAIL:]
        got = f"{len(out)} bytes of output" if child.returncode == 0 else words or "no output"
        raise RuntimeError(f"parsing in a child process failed (exit {child.returncode}): {got}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child waited for, so far
    log.info("normalize.parsed_apart", seconds=round(time.monotonic() - started, 2), children_peak_mb=round(peak))
    return ReportParsed.encoded_elsewhere(head, body)


def main() -> None:
    """The child: a request on stdin, the result on stdout; anything printed or logged meanwhile, by Python or by
    a library writing to the descriptor itself, goes to stderr."""
    with os.fdopen(os.dup(1), "wb") as result:
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        result.write(parsed(sys.stdin.buffer.read()))
        result.flush()  # a failed write is an exit status the parent sees, not a body cut short


if __name__ == "__main__":
    main()
