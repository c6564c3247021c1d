"""The ``lendo-api`` command: refuses bad configuration, serves, stops cleanly on signals; the
operators' ``requeue-failed``."""

import http.client
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from lendo_local.processes import Service, console_script, wait_for_http
from lendo_local.redis_server import free_port
from lendo_streams import StreamNames, SubmissionMessage, UpdateMessage, decode, encode


@pytest.mark.parametrize(
    ("variable", "value"),
    [("LENDO_PORT", "abc"), ("LENDO_PORT", "70000"), ("LENDO_LOG_LEVEL", "chatty")],
)
def test_invalid_configuration_exits_2_with_one_line_naming_the_variable(
    tmp_path: Path, variable: str, value: str
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LENDO_")}
    env.update({"LENDO_DB_PATH": str(tmp_path / "api.sqlite3"), variable: value})

    result = subprocess.run(
        [console_script("lendo-api")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert variable in line
    assert not (tmp_path / "api.sqlite3").exists()


@pytest.fixture
def api(
    tmp_path: Path, redis_url: str, stream_prefix: str, redis: Redis
) -> Iterator[tuple[Service, str]]:
    """A running ``lendo-api``, its log in ``tmp_path``; yields it and its base URL."""
    port = free_port()
    env = {
        "LENDO_PORT": str(port),
        "LENDO_DB_PATH": str(tmp_path / "api.sqlite3"),
        "LENDO_REDIS_URL": redis_url,
        "LENDO_STREAM_PREFIX": stream_prefix,
        "LENDO_UPDATE_BLOCK": "0.05",
    }
    service = Service("lendo-api", [], env, tmp_path / "api.log").start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/healthz", timeout=15, service=service)
        yield service, url
    finally:
        service.stop()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serves_then_stops_cleanly_on_a_signal(
    api: tuple[Service, str], tmp_path: Path, signum: signal.Signals
) -> None:
    service, url = api
    connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=5)
    try:
        connection.request(
            "POST",
            "/api/applications",
            body=json.dumps({"first_name": "Grace", "last_name": "Hopper"}),
            headers={"Content-Type": "application/json"},
        )
        assert connection.getresponse().status == 201
    finally:
        connection.close()

    service.signal(signum)

    assert service.wait(timeout=15) == 0
    log = (tmp_path / "api.log").read_text()
    events = [json.loads(line) for line in log.splitlines()]
    [started] = [event for event in events if event["event"] == "api_started"]
    assert started["url"] == url
    assert events[-1]["event"] == "api_stopped"
    assert "Grace" not in log
    assert "Hopper" not in log


def test_requeue_failed_puts_failed_applications_back_and_the_api_publishes_them(
    api: tuple[Service, str], redis_url: str, stream_prefix: str
) -> None:
    service, url = api
    streams = StreamNames(stream_prefix)
    refused, decided = (
        uuid.UUID(_post(url, {"first_name": first, "last_name": "L"})["id"])
        for first in ("Ada", "Bo")
    )
    reason = "the request payload is not valid."
    with closing(SyncRedis.from_url(redis_url)) as redis:
        for update in (
            UpdateMessage(
                id=refused, status="failed", decided_at=datetime.now(UTC), failure_reason=reason
            ),
            UpdateMessage(id=decided, status="completed", decided_at=datetime.now(UTC)),
        ):
            redis.xadd(streams.updates, encode(update))
        _until(lambda: _get(url, f"/api/applications/{decided}")["status"] == "completed")
        failed = _get(url, f"/api/applications/{refused}")
        assert (failed["status"], failed["failure_reason"]) == ("failed", reason)
        listed = _get(url, "/api/applications?status=failed")["items"]
        assert [item["id"] for item in listed] == [str(refused)]
        published_before = redis.xlen(streams.applications)

        result = subprocess.run(
            [console_script("lendo-api"), "requeue-failed", "--all"],
            env=service.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [str(refused)]
        # The running API's outbox sweep hands it to the bank again.
        _until(lambda: redis.xlen(streams.applications) > published_before)
        [(_, fields)] = cast(list[Any], redis.xrevrange(streams.applications, count=1))
        assert decode(SubmissionMessage, fields).id == refused
    requeued = _get(url, f"/api/applications/{refused}")
    assert (requeued["status"], requeued["failure_reason"]) == ("pending", None)
    assert _get(url, f"/api/applications/{decided}")["status"] == "completed"


def _post(url: str, body: dict[str, str]) -> dict[str, Any]:
    return _request(url, "POST", "/api/applications", json.dumps(body))


def _get(url: str, path: str) -> dict[str, Any]:
    return _request(url, "GET", path, None)


def _request(url: str, method: str, path: str, body: str | None) -> dict[str, Any]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        connection.request(method, path, body, headers={"Content-Type": "application/json"})
        answer: dict[str, Any] = json.loads(connection.getresponse().read())
        return answer
    finally:
        connection.close()


def _until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)
