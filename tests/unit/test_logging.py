"""Log lines: our events on structlog's native route and foreign stdlib loggers render as the same JSON lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from core.logging import configure_logging


@pytest.fixture
def configured() -> Iterator[None]:
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_our_event_is_one_json_line_with_its_level_logger_time_and_bound_ids(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", json=True)
    with structlog.contextvars.bound_contextvars(report_id="r1"):
        structlog.get_logger("ingest.smtp").info("smtp.accepted", size=12)
    (line,) = _lines(capsys.readouterr().err)
    assert line["event"] == "smtp.accepted" and line["size"] == 12 and line["report_id"] == "r1"
    assert line["level"] == "info" and line["logger"] == "ingest.smtp" and str(line["timestamp"]).endswith("Z")


def test_events_below_the_configured_level_are_not_written(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("WARNING", json=True)
    log = structlog.get_logger("policy.consumer")
    log.info("quiet")
    log.warning("loud")
    logging.getLogger("aio_pika.robust").info("quiet too")
    assert [line["event"] for line in _lines(capsys.readouterr().err)] == ["loud"]


def test_a_stdlib_logger_renders_like_ours(configured: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=True)
    logging.getLogger("uvicorn.error").warning("Started %s", "server")
    structlog.get_logger("abuse_desk.http").warning("http.listening")
    theirs, ours = _lines(capsys.readouterr().err)
    assert theirs["event"] == "Started server" and theirs["logger"] == "uvicorn.error"
    assert set(theirs) == set(ours) == {"event", "level", "logger", "timestamp"}


def test_an_error_keeps_its_traceback(configured: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=True)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        structlog.get_logger("core.broker").error("handler.failed", exc_info=True)
    (line,) = _lines(capsys.readouterr().err)
    assert "RuntimeError" in json.dumps(line["exception"])
