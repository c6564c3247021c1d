"""Acks of many actors in shared transactions, each still written with its own update."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from lendo_poller.acks import Acker
from lendo_poller.settings import PollerSettings
from lendo_streams import (
    POLLER_GROUP,
    FinalStatus,
    StreamNames,
    SubmissionMessage,
    UpdateMessage,
    decode,
    encode,
    ensure_group,
)

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def settings(redis_url: str, stream_prefix: str) -> PollerSettings:
    return PollerSettings(
        redis_url=redis_url,
        stream_prefix=stream_prefix,
        bank_url="http://127.0.0.1:1",
        retry_initial=0.01,
        retry_max=0.05,
    )


@pytest.fixture
async def unreachable_redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(UNREACHABLE_REDIS)
    yield client
    await client.aclose()


async def taken(redis: Redis, streams: StreamNames, count: int) -> list[bytes]:
    """Ids of ``count`` new submission entries, delivered to a poller and pending."""
    await ensure_group(redis, streams.applications, POLLER_GROUP)
    for _ in range(count):
        message = SubmissionMessage(id=uuid.uuid4(), first_name="A", last_name="B")
        await redis.xadd(streams.applications, encode(message))
    read: Any = await redis.xreadgroup(POLLER_GROUP, "poller-1", {streams.applications: ">"})
    [(_, entries)] = read
    return [entry_id for entry_id, _ in entries]


def decided(count: int) -> list[UpdateMessage]:
    statuses: tuple[FinalStatus, FinalStatus] = ("completed", "rejected")
    now = datetime.now(UTC)
    return [
        UpdateMessage(
            id=uuid.uuid4(), status=statuses[n % 2], decided_at=now, request_id=f"req-{n}"
        )
        for n in range(count)
    ]


async def published(redis: Redis, streams: StreamNames) -> list[UpdateMessage]:
    found: Any = await redis.xrange(streams.updates)
    return [decode(UpdateMessage, fields) for _, fields in found]


async def pending(redis: Redis, streams: StreamNames) -> set[bytes]:
    rows: Any = await redis.xpending_range(streams.applications, POLLER_GROUP, "-", "+", 10_000)
    return {row["message_id"] for row in rows}


async def test_actors_finishing_together_share_one_transaction(
    redis: Redis, streams: StreamNames, settings: PollerSettings
) -> None:
    entry_ids = await taken(redis, streams, 100)
    updates = decided(len(entry_ids))
    acker = Acker(redis, settings)

    await asyncio.gather(*(acker.finish(e, u) for e, u in zip(entry_ids, updates, strict=True)))

    assert await published(redis, streams) == updates
    assert await pending(redis, streams) == set()
    assert (acker.stats.finished, acker.stats.completed, acker.stats.rejected) == (100, 50, 50)
    assert acker.stats.update_transactions == 1


async def test_an_update_handed_over_is_written_even_if_its_actor_is_cancelled(
    redis: Redis, streams: StreamNames, settings: PollerSettings
) -> None:
    entry_ids = await taken(redis, streams, 10)
    updates = decided(len(entry_ids))
    acker = Acker(redis, settings)
    actors = [
        asyncio.create_task(acker.finish(e, u)) for e, u in zip(entry_ids, updates, strict=True)
    ]
    await asyncio.sleep(0)  # every actor has handed its update over
    for actor in actors[::2]:
        actor.cancel()

    await acker.drain(asyncio.get_running_loop().time() + 5.0)

    assert await published(redis, streams) == updates
    assert await pending(redis, streams) == set()
    assert acker.stats.finished == len(updates)
    assert all(actor.done() for actor in actors)


async def test_updates_not_written_by_the_deadline_leave_their_entries_pending(
    redis: Redis, streams: StreamNames, settings: PollerSettings, unreachable_redis: Redis
) -> None:
    entry_ids = await taken(redis, streams, 10)
    acker = Acker(unreachable_redis, settings)
    actors = [
        asyncio.create_task(acker.finish(e, u))
        for e, u in zip(entry_ids, decided(len(entry_ids)), strict=True)
    ]
    await asyncio.sleep(0.1)  # retrying meanwhile

    async with asyncio.timeout(5.0):
        await acker.drain(asyncio.get_running_loop().time())
        await asyncio.wait(actors)

    assert all(actor.cancelled() for actor in actors)
    assert acker.stats.write_retries > 0
    assert acker.stats.finished == 0
    assert await published(redis, streams) == []
    assert await pending(redis, streams) == set(entry_ids)
