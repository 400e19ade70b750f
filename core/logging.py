"""structlog set-up: JSON lines when stderr is not a TTY, readable console otherwise; ids bound per work unit."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

import structlog


class StderrLogger:
    """structlog's last step: one rendered line on the current sys.stderr, under the logger's name.

    Our own events take this native route (a level check and a few processors, no LogRecord and no
    handler chain: about a quarter of the stdlib route's cost per line, which the listener pays per
    message). sys.stderr is looked up per line, as the stdlib handler's stream would not be, so a
    process that swaps it (a test runner) never writes into a closed stream; a failed write is dropped,
    as the stdlib handler drops it.
    """

    _lock = threading.Lock()

    def __init__(self, name: str | None = None) -> None:
        self.name = name or ""

    def msg(self, message: str) -> None:
        with self._lock:
            try:
                sys.stderr.write(message + "\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _logger_factory(*args: Any) -> StderrLogger:
    """structlog.get_logger(name) → a line writer that knows its name (read by add_logger_name)."""
    return StderrLogger(str(args[0]) if args else None)


def configure_logging(level: str = "INFO", *, json: bool | None = None) -> None:
    """Configure structlog's native route for our events, and render stdlib loggers (aiosmtpd, aio-pika) alike."""
    if json is None:
        json = not sys.stderr.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    tracebacks: Any = structlog.processors.dict_tracebacks if json else structlog.processors.format_exc_info
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    threshold = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, tracebacks, renderer],
        logger_factory=_logger_factory,
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, tracebacks, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(threshold)
    # aiosmtpd logs every DATA line at DEBUG: evidence and personal data. Never below INFO.
    logging.getLogger("mail.log").setLevel(max(logging.INFO, root.level))
    logging.getLogger("aiormq").setLevel(logging.WARNING)
    logging.getLogger("aio_pika").setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    """A structlog logger; bind `report_id`/`case_id` with structlog.contextvars per unit of work."""
    return structlog.get_logger(name)
