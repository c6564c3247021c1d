"""``LENDO_API_WORKERS``: several API processes on one port on PostgreSQL, refused on SQLite."""

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from lendo_local.processes import Service, console_script, wait_for_http
from lendo_local.redis_server import free_port

ADA = {"first_name": "Ada", "last_name": "Lovelace"}


def clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("LENDO_")}


def test_more_than_one_worker_on_sqlite_is_refused_with_one_line(tmp_path: Path) -> None:
    env = {**clean_env(), "LENDO_DB_PATH": str(tmp_path / "api.sqlite3"), "LENDO_API_WORKERS": "2"}

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
    assert "LENDO_API_WORKERS" in line
    assert "LENDO_DATABASE_URL" in line
    assert not (tmp_path / "api.sqlite3").exists()


def listening_pids(port: int, candidates: list[int]) -> set[int]:
    """Which of ``candidates`` hold a socket listening on ``port`` (from /proc)."""
    listening = set()
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                listening.add(f"socket:[{inode}]")
    holders = set()
    for pid in candidates:
        fds = Path(f"/proc/{pid}/fd")
        if any(os.readlink(fd) in listening for fd in fds.iterdir()):
            holders.add(pid)
    return holders


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def wait_until_both_listen(service: Service, port: int) -> list[int]:
    """The two workers' pids, once each holds the port; fail after 30 seconds."""
    assert service.process is not None
    deadline = time.monotonic() + 30
    while True:
        pids = children(service.process.pid)
        if len(pids) == 2 and listening_pids(port, pids) == set(pids):
            return pids
        assert time.monotonic() < deadline, f"workers {pids} do not all listen on {port}"
        time.sleep(0.05)


@pytest.fixture
def workers(
    tmp_path: Path, redis_url: str, stream_prefix: str, redis: Redis, database_url: str
) -> Iterator[tuple[Service, str, int]]:
    """``lendo-api`` with two workers on PostgreSQL; yields it, its URL and its port."""
    port = free_port()
    env = {
        **clean_env(),
        "LENDO_PORT": str(port),
        "LENDO_DATABASE_URL": database_url,
        "LENDO_REDIS_URL": redis_url,
        "LENDO_STREAM_PREFIX": stream_prefix,
        "LENDO_UPDATE_BLOCK": "0.05",
        "LENDO_API_WORKERS": "2",
    }
    service = Service("lendo-api", [], env, tmp_path / "api.log").start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/healthz", timeout=30, service=service)
        yield service, url, port
    finally:
        service.stop()


async def test_two_workers_serve_one_port_and_stop_together_on_sigterm(
    workers: tuple[Service, str, int], tmp_path: Path
) -> None:
    service, url, port = workers
    wait_until_both_listen(service, port)

    # A connection of its own per request, so that the kernel may hand each to either worker.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(url, connector=connector) as http:
        for _ in range(10):
            async with http.post("/api/applications", json=ADA) as created:
                assert created.status == 201
        async with http.get("/api/applications") as listed:
            items = (await listed.json())["items"]

    assert len(items) == 10
    service.signal(signal.SIGTERM)
    assert service.wait(timeout=30) == 0
    events = [json.loads(line)["event"] for line in (tmp_path / "api.log").read_text().splitlines()]
    assert events.count("api_stopped") == 2
    assert events.count("schema_migrated") == 1


def test_a_worker_that_dies_stops_the_set_so_its_supervisor_restarts_it(
    workers: tuple[Service, str, int],
) -> None:
    service, _, port = workers
    victim, survivor = wait_until_both_listen(service, port)

    os.kill(victim, signal.SIGKILL)

    assert service.wait(timeout=30) == 128 + signal.SIGKILL
    assert not Path(f"/proc/{survivor}").exists()
