"""The whole pipeline in separate processes: lendo-api, lendo-poller, lendo-bank-sim."""

import asyncio
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests.system.product import Processes, StartProcesses

APPLICATIONS = 200


@pytest.fixture
def system(start_processes: StartProcesses) -> Iterator[Processes]:
    processes = start_processes({}, 0.2)
    yield processes
    processes.stop()


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


async def test_every_application_reaches_the_bank_decision(system: Processes) -> None:
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
