"""Structured JSON logs for every process.

One event name plus fields per line. Personal data (names) is never passed to
a logger: only application ids, statuses and counts.
"""

import logging
import sys
from typing import Annotated, Literal

import structlog
from pydantic import BeforeValidator


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


LogLevel = Annotated[
    Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)
]
"""A logging level setting, accepted in any case (``LENDO_LOG_LEVEL=debug``)."""


def configure_logging(level: LogLevel = "INFO") -> None:
    """Send structlog events (and stdlib records, e.g. aiohttp's) to stderr as JSON."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log would print request lines; the API logs its own events.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
