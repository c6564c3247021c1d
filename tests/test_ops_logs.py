"""Logs of the real processes: JSON lines, one request id end to end, no personal data.

One application goes through ``lendo-api``, ``lendo-poller`` and the bank
simulator as separate processes; then every line each process wrote is read.
"""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lendo_local.processes import Service, wait_for_http
from lendo_local.redis_server import free_port

REQUEST_ID = "ops-trace-5f3c9a"
FIRST_NAME = "Zebulon"
LAST_NAME = "Quixote-Marmaduke"
"""An applicant's name that must appear in no log line of any process."""

SCALED_TIMINGS = {
    "LENDO_FIRST_POLL_DELAY": "0.06",
    "LENDO_POLL_INTERVAL": "0.01",
    "LENDO_READ_BLOCK": "0.1",
    "LENDO_UPDATE_BLOCK": "0.1",
    "LENDO_LOG_LEVEL": "INFO",
}


class System:
    def __init__(self, api_url: str, poller_ops_url: str, services: list[Service]) -> None:
        self.api_url = api_url
        self.poller_ops_url = poller_ops_url
        self.services = services

    def stop(self) -> dict[str, list[dict[str, Any]]]:
        """Stop every process (they flush and exit 0); return each one's log lines."""
        codes = {service.name: service.stop() for service in self.services}
        assert codes == {"lendo-bank-sim": 0, "lendo-api": 0, "lendo-poller": 0}
        logs = {}
        for service in self.services:
            assert service.log is not None
            logs[service.name] = json_lines(service.log)
        return logs


@pytest.fixture
def system(tmp_path: Path, redis_url: str, stream_prefix: str) -> Iterator[System]:
    api_port, bank_port, metrics_port = free_port(), free_port(), free_port()
    env = {
        "LENDO_REDIS_URL": redis_url,
        "LENDO_STREAM_PREFIX": stream_prefix,
        "LENDO_PORT": str(api_port),
        "LENDO_DB_PATH": str(tmp_path / "lendo.sqlite3"),
        "LENDO_BANK_URL": f"http://127.0.0.1:{bank_port}",
        "LENDO_CONSUMER_NAME": "ops-poller",
        "LENDO_METRICS_PORT": str(metrics_port),
        **SCALED_TIMINGS,
    }
    bank_args = ["--port", str(bank_port), "--min-delay", "0.05", "--max-delay", "0.1"]
    services = [
        Service("lendo-bank-sim", bank_args, env, tmp_path / "bank.log").start(),
        Service("lendo-api", [], env, tmp_path / "api.log").start(),
        Service("lendo-poller", [], env, tmp_path / "poller.log").start(),
    ]
    poller_ops_url = f"http://127.0.0.1:{metrics_port}"
    try:
        wait_for_http(f"http://127.0.0.1:{bank_port}/_sim/stats", service=services[0])
        wait_for_http(f"http://127.0.0.1:{api_port}/readyz", service=services[1])
        wait_for_http(f"{poller_ops_url}/readyz", service=services[2])
        yield System(f"http://127.0.0.1:{api_port}", poller_ops_url, services)
    finally:
        for service in services:
            service.stop()


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a process's log, each of which must be one JSON object."""
    lines = path.read_text().splitlines()
    assert lines, path
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(line, dict) and "event" in line for line in parsed), path
    return parsed


async def test_one_request_id_follows_an_application_and_no_name_is_logged(
    system: System,
) -> None:
    async with aiohttp.ClientSession() as http:
        body = {"first_name": FIRST_NAME, "last_name": LAST_NAME}
        headers = {"X-Request-ID": REQUEST_ID}
        async with http.post(
            f"{system.api_url}/api/applications", json=body, headers=headers
        ) as response:
            assert response.status == 201
            assert response.headers["X-Request-ID"] == REQUEST_ID
            application_id = (await response.json())["id"]
        async with asyncio.timeout(20):
            while True:  # until the bank's decision is recorded
                async with http.get(f"{system.api_url}/api/applications/{application_id}") as got:
                    status = (await got.json())["status"]
                if status != "pending":
                    break
                await asyncio.sleep(0.05)
        async with http.get(f"{system.poller_ops_url}/metrics") as scraped:
            assert scraped.status == 200
            poller_metrics = await scraped.text()

    logs = system.stop()

    assert f'lendo_poller_applications_finished_total{{status="{status}"}} 1.0' in poller_metrics
    for name, lines in logs.items():
        for line in lines:
            text = json.dumps(line, ensure_ascii=False)
            assert FIRST_NAME not in text, (name, line)
            assert LAST_NAME not in text, (name, line)
    traced = {
        name: [line["event"] for line in lines if line.get("request_id") == REQUEST_ID]
        for name, lines in logs.items()
    }
    # Created and its decision recorded (API), decided at the bank (the poller's actor).
    assert traced["lendo-api"] == ["application_created", "update_received"]
    assert traced["lendo-poller"] == ["application_decided"]
    decided = next(line for line in logs["lendo-poller"] if line["event"] == "application_decided")
    assert decided["application_id"] == application_id
    assert decided["status"] == status
