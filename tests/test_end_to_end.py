"""The whole pipeline in separate processes: lendo-api, lendo-poller, lendo-bank-sim."""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lendo_local.processes import Service, wait_for_http
from lendo_local.redis_server import free_port

APPLICATIONS = 200

# A hundredfold compression of the production schedule (decisions in 5–20 s).
SCALED_TIMINGS = {
    "LENDO_FIRST_POLL_DELAY": "0.06",
    "LENDO_POLL_INTERVAL": "0.01",
    "LENDO_RETRY_INITIAL": "0.01",
    "LENDO_RETRY_MAX": "0.3",
    "LENDO_CLAIM_IDLE": "2",
    "LENDO_CLAIM_INTERVAL": "0.5",
    "LENDO_READ_BLOCK": "0.1",
    "LENDO_UPDATE_BLOCK": "0.1",
    "LENDO_RECONCILE_INTERVAL": "0.5",
}


class System:
    def __init__(self, api_url: str, bank_url: str, services: list[Service]) -> None:
        self.api_url = api_url
        self.bank_url = bank_url
        self.services = services


@pytest.fixture
def system(tmp_path: Path, redis_url: str, stream_prefix: str) -> Iterator[System]:
    api_port, bank_port = free_port(), free_port()
    env = {
        "LENDO_REDIS_URL": redis_url,
        "LENDO_STREAM_PREFIX": stream_prefix,
        "LENDO_PORT": str(api_port),
        "LENDO_DB_PATH": str(tmp_path / "lendo.sqlite3"),
        "LENDO_BANK_URL": f"http://127.0.0.1:{bank_port}",
        "LENDO_CONSUMER_NAME": "e2e-poller",
        **SCALED_TIMINGS,
    }
    bank_args = ["--port", str(bank_port), "--min-delay", "0.05", "--max-delay", "0.2"]
    services = [
        Service("lendo-bank-sim", bank_args, env, tmp_path / "bank.log").start(),
        Service("lendo-api", [], env, tmp_path / "api.log").start(),
        Service("lendo-poller", [], env, tmp_path / "poller.log").start(),
    ]
    try:
        wait_for_http(f"http://127.0.0.1:{bank_port}/_sim/stats", service=services[0])
        wait_for_http(f"http://127.0.0.1:{api_port}/healthz", service=services[1])
        yield System(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{bank_port}", services)
    finally:
        codes = {service.name: service.stop() for service in services}
    assert codes == {"lendo-bank-sim": 0, "lendo-api": 0, "lendo-poller": 0}


async def _all_pages(http: aiohttp.ClientSession, url: str, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": "37", **({"cursor": cursor} if cursor else {})}
        async with http.get(f"{url}/api/applications", params=query) as response:
            assert response.status == 200
            page = await response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_every_application_reaches_the_bank_decision(system: System) -> None:
    async with aiohttp.ClientSession() as http:

        async def create(number: int) -> str:
            body = {"first_name": f"Ada{number}", "last_name": "Lovelace"}
            async with http.post(f"{system.api_url}/api/applications", json=body) as response:
                assert response.status == 201
                created: dict[str, Any] = await response.json()
                assert created["status"] == "pending"
                return str(created["id"])

        ids = set(await asyncio.gather(*(create(n) for n in range(APPLICATIONS))))
        assert len(ids) == APPLICATIONS

        async with asyncio.timeout(60):
            while pending := await _all_pages(http, system.api_url, status="pending"):
                assert {item["id"] for item in pending} <= ids
                await asyncio.sleep(0.2)

        async with http.get(f"{system.bank_url}/_sim/decisions") as response:
            decisions: dict[str, str] = await response.json()
        assert set(decisions) == ids

        for status in ("completed", "rejected"):
            listed = await _all_pages(http, system.api_url, status=status)
            listed_ids = [item["id"] for item in listed]
            assert len(listed_ids) == len(set(listed_ids))
            assert set(listed_ids) == {i for i, s in decisions.items() if s == status}
            assert all(item["status"] == status for item in listed)

        everything = await _all_pages(http, system.api_url)
        assert {item["id"] for item in everything} == ids
        assert len(everything) == APPLICATIONS

        one = next(iter(ids))
        async with http.get(f"{system.api_url}/api/applications/{one}") as response:
            assert (await response.json())["status"] == decisions[one]
