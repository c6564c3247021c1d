"""Several API processes in the update group: one that dies leaves its updates to the others."""

import asyncio
import json
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis

from lendo_api.app import create_app
from lendo_api.settings import ApiSettings
from lendo_api.stores import open_store
from lendo_streams import API_GROUP, StreamNames, UpdateMessage, encode, ensure_group


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` until it holds; fail after 10 seconds."""
    async with asyncio.timeout(10):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)


def test_each_api_process_is_a_consumer_of_its_own_by_default() -> None:
    name = ApiSettings().consumer_name

    assert name == f"{socket.gethostname()}-{os.getpid()}"


@pytest.mark.both_stores
async def test_updates_a_dead_replica_read_and_never_acknowledged_are_applied_by_another(
    settings: ApiSettings, redis: Redis, streams: StreamNames, aiohttp_client: AiohttpClient
) -> None:
    store = await open_store(settings)
    application = await store.create(
        id=uuid.uuid4(), first_name="Ada", last_name="Lovelace", request_id=None
    )
    await store.close()
    await ensure_group(redis, streams.updates, API_GROUP)
    update = UpdateMessage(id=application.id, status="rejected", decided_at=datetime.now(UTC))
    await redis.xadd(streams.updates, encode(update))
    # Another replica read the update, then died before applying and acknowledging it.
    await redis.xreadgroup(API_GROUP, "replica-that-died", {streams.updates: ">"})
    live = settings.model_copy(update={"consumer_name": "live", "update_claim_idle": 0.05})

    client = await aiohttp_client(create_app(live))

    async def applied_and_acknowledged() -> bool:
        body = await (await client.get(f"/api/applications/{application.id}")).read()
        pending: Any = await redis.xpending(streams.updates, API_GROUP)
        return bool(json.loads(body)["status"] == "rejected" and pending["pending"] == 0)

    await eventually(applied_and_acknowledged)
    metrics = await (await client.get("/metrics")).text()
    assert "lendo_api_updates_taken_over_total 1.0" in metrics
