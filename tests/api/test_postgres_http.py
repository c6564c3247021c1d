"""The API over HTTP on PostgreSQL: two replicas on one database and one Redis act as one."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis

from lendo_api.app import create_app
from lendo_api.settings import ApiSettings
from lendo_streams import StreamNames, UpdateMessage, encode
from tests.postgres_server import TemporaryPostgres, scratch_database

Client = TestClient[web.Request, web.Application]

ADA = {"first_name": "Ada", "last_name": "Lovelace"}


def on_postgres(settings: ApiSettings, url: str, consumer: str) -> ApiSettings:
    return settings.model_copy(update={"database_url": SecretStr(url), "consumer_name": consumer})


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` until it holds; fail after 10 seconds."""
    async with asyncio.timeout(10):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)


@pytest.fixture
async def replicas(
    redis: Redis, settings: ApiSettings, database_url: str, aiohttp_client: AiohttpClient
) -> list[Client]:
    """Two API apps on one PostgreSQL database and one Redis, as two processes run them."""
    return [
        await aiohttp_client(create_app(on_postgres(settings, database_url, f"api-{n}")))
        for n in (1, 2)
    ]


async def test_an_application_created_on_one_replica_reads_the_same_on_the_other(
    replicas: list[Client],
) -> None:
    first, second = replicas
    created = await first.post("/api/applications", json=ADA)
    body = await created.read()

    fetched = await second.get(created.headers["Location"])
    listed = await (await second.get("/api/applications")).json()

    assert created.status == 201
    assert fetched.status == 200
    assert await fetched.read() == body
    assert [item["id"] for item in listed["items"]] == [(await created.json())["id"]]


async def test_a_key_sent_to_both_replicas_at_once_creates_one_application(
    replicas: list[Client],
) -> None:
    async def post(client: Client) -> tuple[int, Any]:
        response = await client.post(
            "/api/applications", json=ADA, headers={"Idempotency-Key": "order-42"}
        )
        return response.status, await response.json()

    answers = await asyncio.gather(*(post(replicas[n % 2]) for n in range(6)))

    assert sorted(status for status, _ in answers) == [200, 200, 200, 200, 200, 201]
    assert len({body["id"] for _, body in answers}) == 1
    listed = await (await replicas[1].get("/api/applications")).json()
    assert len(listed["items"]) == 1


async def test_the_bank_decision_shows_on_both_replicas(
    replicas: list[Client], redis: Redis, streams: StreamNames
) -> None:
    created = await (await replicas[0].post("/api/applications", json=ADA)).json()
    update = UpdateMessage(
        id=uuid.UUID(created["id"]), status="completed", decided_at=datetime.now(UTC)
    )

    await redis.xadd(streams.updates, encode(update))

    async def completed_on_both() -> bool:
        path = f"/api/applications/{created['id']}"
        statuses = [(await (await client.get(path)).json())["status"] for client in replicas]
        return statuses == ["completed", "completed"]

    await eventually(completed_on_both)


async def test_metrics_show_the_connection_pool(replicas: list[Client]) -> None:
    await replicas[0].post("/api/applications", json=ADA)

    text = await (await replicas[0].get("/metrics")).text()

    samples = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("lendo_api_db_pool")
    )
    assert float(samples["lendo_api_db_pool_connections"]) >= 1
    assert float(samples["lendo_api_db_pool_max"]) == 10
    assert float(samples["lendo_api_db_pool_acquired_total"]) >= 1
    assert "lendo_api_db_pool_in_use" in samples
    assert "lendo_api_db_pool_waiting" in samples
    assert "lendo_api_db_pool_acquire_seconds_total" in samples


async def test_readiness_fails_while_postgresql_is_down_and_recovers(
    redis: Redis, settings: ApiSettings, aiohttp_client: AiohttpClient
) -> None:
    with TemporaryPostgres() as server, scratch_database(server.url) as url:
        client = await aiohttp_client(create_app(on_postgres(settings, url, "api-1")))
        assert (await client.get("/readyz")).status == 200

        await asyncio.to_thread(server.stop)
        down = await client.get("/readyz")
        await asyncio.to_thread(server.start)

        assert down.status == 503
        assert "database" in (await down.json())["detail"]

        async def ready() -> bool:
            return (await client.get("/readyz")).status == 200

        await eventually(ready)
        created = await client.post("/api/applications", json=ADA)
        assert created.status == 201
        await client.close()
