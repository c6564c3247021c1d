"""The log lines every process writes: one JSON object each, ours and other libraries' alike.

Logging is configured once per process, for good, so each case runs in a
fresh interpreter and its stderr is read.
"""

import json
import subprocess
import sys
from typing import Any

import pytest

SCRIPT = """
import logging, sys
import structlog
from lendo_streams.logs import configure_logging

configure_logging(sys.argv[1])
log = structlog.stdlib.get_logger(__name__)
structlog.contextvars.bind_contextvars(request_id="req-9")
log.debug("application_resubmitted")
log.info("application_created", application_id="a-1", note="Åsa's café")
log.warning("application_publish_deferred", application_id="a-1")
try:
    raise RuntimeError("redis went away")
except RuntimeError:
    log.exception("updates_failed", retry_in=1.0)
logging.getLogger("aiohttp.server").error("Error handling request from %s", "10.0.0.1")
logging.getLogger("aiohttp.access").info("GET / 200")
"""


def logged(level: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, level], capture_output=True, text=True, check=True
    )
    assert result.stdout == ""
    return [json.loads(line) for line in result.stderr.splitlines()]


def test_every_line_is_json_with_event_level_timestamp_and_the_bound_request_id() -> None:
    lines = logged("INFO")

    assert [(line["event"], line["level"]) for line in lines] == [
        ("application_created", "info"),
        ("application_publish_deferred", "warning"),
        ("updates_failed", "error"),
        ("Error handling request from 10.0.0.1", "error"),
    ]
    for line in lines:
        assert line["request_id"] == "req-9"
        assert line["timestamp"].endswith("Z")
    assert lines[0]["application_id"] == "a-1"
    assert lines[0]["note"] == "Åsa's café"
    assert "RuntimeError: redis went away" in lines[2]["exception"]
    assert lines[2]["retry_in"] == 1.0


@pytest.mark.parametrize(
    ("level", "events"),
    [
        ("DEBUG", 5),
        ("WARNING", 3),
        ("ERROR", 2),
    ],
)
def test_lines_below_the_level_are_left_out(level: str, events: int) -> None:
    assert len(logged(level)) == events
