"""The live API keeps every promise its OpenAPI document makes, with API keys and without.

The command a client would try, ``schemathesis run <url>/api/openapi.json
--checks all``, runs against a real ``lendo-api`` process: every phase
(the document's examples, coverage of its boundaries, fuzzing with valid and
invalid data, and the stateful links from a create to a read) and every
check. The suite sends a few cases per operation; ``LENDO_SCHEMATHESIS_EXAMPLES``
raises that for the long run (docs/api.md).

The event stream is tested like any other operation, every parameter
generated and every event checked against the document: schemathesis reads a
text/event-stream until it ends (``follow=false``), or for the operation's
request timeout, set short here, after which it checks the events received
(a stream that follows never ends by itself).
"""

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from redis import Redis

from lendo_local.processes import Service, console_script, wait_for_http
from lendo_local.redis_server import free_port

API_KEY = "schemathesis-key-5b1e"
EXAMPLES = int(os.environ.get("LENDO_SCHEMATHESIS_EXAMPLES", "10"))
OPERATIONS = 24  # 10 GETs, their HEADs, the two creates, the rotation and the delete
# Read by schemathesis from its working directory.
CONFIG = """
[[operations]]
include-path = "/api/events"
request-timeout = 0.3
"""
# A seed keeps the suite's run the same from one run to the next.
SEED = 1


class LiveApi(NamedTuple):
    url: str
    api_key: str | None


@pytest.fixture(params=[None, API_KEY], ids=["without-api-keys", "with-api-keys"])
def live_api(request: pytest.FixtureRequest, tmp_path: Path, redis_url: str) -> Iterator[LiveApi]:
    """A ``lendo-api`` process, requiring the parameter's API key, if any."""
    api_key: str | None = request.param
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    port = free_port()
    env = {
        "LENDO_PORT": str(port),
        "LENDO_DB_PATH": str(tmp_path / "api.sqlite3"),
        "LENDO_REDIS_URL": redis_url,
        "LENDO_STREAM_PREFIX": prefix,
        "LENDO_API_KEYS": api_key or "",
        "LENDO_LOG_LEVEL": "WARNING",
        # Webhooks only to this machine: the document's URL pattern names these hosts, so
        # schemathesis registers receivers here alone (none is sent to in this test).
        "LENDO_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LENDO_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    }
    service = Service("lendo-api", [], env, tmp_path / "api.log").start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", timeout=15, service=service)
        yield LiveApi(url, api_key)
    finally:
        assert service.stop() == 0
        with Redis.from_url(redis_url) as redis:
            keys = list(redis.scan_iter(match=f"{prefix}*"))
            if keys:
                redis.delete(*keys)


@pytest.mark.timeout(120 + 10 * EXAMPLES)
def test_schemathesis_finds_every_answer_as_documented(live_api: LiveApi, tmp_path: Path) -> None:
    report = tmp_path / "schemathesis.json"
    command = [
        console_script("st"),
        "run",
        f"{live_api.url}/api/openapi.json",
        "--checks=all",
        "--mode=all",
        "--phases=examples,coverage,fuzzing,stateful",
        f"--max-examples={EXAMPLES}",
        f"--seed={SEED}",
        "--generation-database=none",
        "--report=json",
        f"--report-json-path={report}",
        *([f"--header=Authorization: Bearer {live_api.api_key}"] if live_api.api_key else []),
    ]

    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    # schemathesis keeps caches in its working directory: the test's own, not the tree.
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    run = json.loads(report.read_text())
    assert (run["failures"], run["errors"]) == ([], [])
    assert run["operations"]["tested"] == run["operations"]["total"] == OPERATIONS
    assert {phase: state["status"] for phase, state in run["phases"].items()} == {
        "examples": "success",
        "coverage": "success",
        "fuzzing": "success",
        "stateful": "success",
    }
    assert {name: found for name, found in run["warnings"].items() if found} == {}
    assert run["test_cases"]["generated"] >= OPERATIONS * EXAMPLES
    print(f"schemathesis: {run['test_cases']['generated']} cases, 0 failures")
