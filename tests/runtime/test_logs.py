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
from lendo_runtime.logs import configure_logging

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


ON_A_LOOP = """
import asyncio, logging, os, sys
from lendo_runtime.logs import configure_logging, get_logger

configure_logging("INFO")
log = get_logger()

async def main():
    log.info("first")
    log.info("second")
    log.warning("third")
    log.info("fourth")
    logging.getLogger("aiohttp.server").error("fifth")
    log.info("sixth")
    await asyncio.sleep(0)
    log.info("seventh")
    if sys.argv[1] == "kill":
        await asyncio.sleep(0)
        os._exit(137)
    log.info("eighth")

asyncio.run(main())
"""


def logged(level: str, script: str = SCRIPT) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-c", script, level], capture_output=True, text=True, check=False
    )
    assert result.returncode in (0, 137), result.stderr
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


def test_on_an_event_loop_every_line_comes_out_in_the_order_logged() -> None:
    # Info lines wait for the end of the loop's turn; anything more severe is written
    # at once, after them; whatever waits when the process exits is written too.
    lines = logged("exit", ON_A_LOOP)

    assert [line["event"] for line in lines] == [
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
    ]


def test_a_process_killed_on_a_loop_loses_at_most_the_info_lines_of_that_turn() -> None:
    lines = logged("kill", ON_A_LOOP)

    # "seventh" was logged a turn before the kill: it is out.
    assert [line["event"] for line in lines][-1] == "seventh"
