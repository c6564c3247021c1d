"""Structured JSON logs for every process.

One event name plus fields per line. Personal data (names) is never passed to
a logger: only application ids, statuses and counts.

Our own events take structlog's short path: a bound logger whose filtered
levels are no-ops, orjson, and bytes written straight to stderr, which costs
far less per line than stdlib ``logging`` records and a formatter
(docs/performance.md, "Logging without stdlib records"). Other libraries' stdlib records (aiohttp's,
asyncio's) still go through ``logging`` and come out as the same JSON lines.

On an event loop, lines at ``INFO`` and below are written once per loop
turn, together (:class:`LineWriter`), rather than a write and a flush per
line. A ``kill -9`` can therefore lose the info lines of the turn it
interrupts, no more; warnings and errors are written at once, after whatever lines wait, so
lines always come out in the order logged.
"""

import asyncio
import atexit
import logging
import sys
import threading
from typing import Annotated, BinaryIO, Literal, TextIO

import orjson
import structlog
from pydantic import BeforeValidator


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


LogLevel = Annotated[
    Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)
]
"""A logging level setting, accepted in any case (``LENDO_LOG_LEVEL=debug``)."""


class LineWriter:
    """A structlog logger writing rendered lines (bytes) to a binary file.

    Called on a running event loop, lines at ``INFO`` and below wait in a
    buffer, written and flushed in one go by a callback at the loop's next
    turn; called anywhere else, or at ``WARNING`` and above, a line is
    written at once, after the buffer. :meth:`flush` runs at interpreter exit.
    """

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._lines: list[bytes] = []
        self._flush_on: asyncio.AbstractEventLoop | None = None
        """The loop a flush is scheduled on, if any."""
        self._lock = threading.Lock()

    def batched(self, message: bytes) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.at_once(message)
            return
        with self._lock:
            self._lines.append(message)
            if self._flush_on is loop:
                return
            if self._flush_on is not None:
                self._write()  # its flush waits on another loop, which may never run it
            self._flush_on = loop
        loop.call_soon(self.flush)

    def at_once(self, message: bytes) -> None:
        with self._lock:
            self._lines.append(message)
            self._write()

    def flush(self) -> None:
        with self._lock:
            self._write()

    def _write(self) -> None:
        self._flush_on = None
        if self._lines:
            lines, self._lines = self._lines, []
            self._file.write(b"\n".join(lines) + b"\n")
            self._file.flush()

    msg = log = debug = info = batched
    warn = warning = fatal = failure = err = error = critical = exception = at_once


class _AfterOurLines(logging.StreamHandler[TextIO]):
    """A handler that writes our waiting lines first, so that lines keep their order."""

    def __init__(self, lines: LineWriter) -> None:
        super().__init__(sys.stderr)
        self._lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self._lines.flush()
        super().emit(record)


def get_logger() -> structlog.typing.FilteringBoundLogger:
    """The logger for our own events, as :func:`configure_logging` sets structlog up."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger()
    return logger


def configure_logging(level: LogLevel = "INFO") -> None:
    """Write structlog events, and stdlib records (e.g. aiohttp's), to stderr as JSON lines."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    lines = LineWriter(sys.stderr.buffer)
    atexit.register(lines.flush)
    structlog.configure(
        processors=[*shared, structlog.processors.JSONRenderer(serializer=orjson.dumps)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=lambda *_: lines,
        cache_logger_on_first_use=True,
    )
    handler = _AfterOurLines(lines)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log would print request lines; the API logs its own events.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
