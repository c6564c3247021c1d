"""The simulator's logs: one JSON object per line on stderr, stdlib records included.

Its own, not the pipeline's: the simulator stands in for an outside service
and shares no code with the pipeline it serves.
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
"""A logging level setting, accepted in any case (``--log-level debug``)."""


def configure_logging(level: LogLevel = "INFO") -> None:
    """Write structlog events, and stdlib records (aiohttp's), to stderr as JSON lines."""
    shared: list[structlog.types.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
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
    # The access log would print a line per bank request.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
