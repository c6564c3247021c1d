"""Server-sent events through an API restart: a client that reconnects with Last-Event-ID
misses nothing, and receives nothing twice."""

from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from lendo_local.processes import Service
from tests.helpers import next_event
from tests.system.product import Processes, StartProcesses

BEFORE, DURING = 15, 15


@pytest.fixture
def system(start_processes: StartProcesses) -> Iterator[Processes]:
    processes = start_processes({}, 0.2)
    yield processes
    processes.stop()


async def read_until(
    response: aiohttp.ClientResponse, events: list[dict[str, Any]], count: int | None
) -> None:
    """Append what the stream sends to ``events``: ``count`` in all, or all until it ends."""
    while count is None or len(events) < count:
        event = await next_event(response)
        if event is None:
            return
        events.append(event)


@pytest.mark.timeout(90)
async def test_a_client_reconnecting_after_an_api_restart_gets_every_event_once_in_order(
    system: Processes,
) -> None:
    [api] = [service for service in system.system.services if service.name == "lendo-api"]
    received: list[dict[str, Any]] = []
    # No kept-alive connection to the stopped process is reused after the restart.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:

        async def create(number: int) -> str:
            body = {"first_name": f"Ada{number}", "last_name": "Lovelace"}
            async with http.post(f"{api.base_url}/api/applications", json=body) as response:
                assert response.status == 201
                return str((await response.json())["id"])

        async with http.get(f"{api.base_url}/api/events?after=0") as stream:
            ids = [await create(n) for n in range(BEFORE)]
            await read_until(stream, received, BEFORE + 3)
            # The API stops (SIGTERM) with the stream open: it ends the stream, and decisions
            # keep coming from the poller meanwhile, to be applied after the restart.
            assert api.stop() == 0
            await read_until(stream, received, None)
        restart(api)
        ids += [await create(BEFORE + n) for n in range(DURING)]
        resume = {"Last-Event-ID": received[-1]["id"]}
        async with http.get(f"{api.base_url}/api/events", headers=resume) as stream:
            await read_until(stream, received, 2 * len(ids))
        async with http.get(f"{system.bank_url}/_sim/decisions") as response:
            decisions: dict[str, str] = await response.json()

    cursors = [int(event["id"]) for event in received]
    assert cursors == sorted(set(cursors))
    assert len({event["data"]["id"] for event in received}) == len(received)
    by_application: dict[str, list[str]] = {}
    for event in received:
        by_application.setdefault(event["data"]["data"]["id"], []).append(event["event"])
    assert set(by_application) == set(ids)
    assert by_application == {
        id: ["application.created", f"application.{decisions[id]}"] for id in ids
    }


def restart(api: Service) -> None:
    api.start()
    api.wait_until_ready()
