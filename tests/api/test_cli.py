"""The ``lendo-api`` command: refuses bad configuration, serves, stops cleanly on signals."""

import http.client
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from lendo_local.processes import Service, console_script, wait_for_http
from lendo_local.redis_server import free_port


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
