"""Heartbeats and taking over a silent consumer's entries, on real Redis."""

import asyncio
from typing import Any

from redis.asyncio import Redis

from lendo_streams import POLLER_GROUP, StreamNames, ensure_group, read_group
from lendo_streams.groups import release
from lendo_streams.heartbeats import (
    beat,
    remove_consumer,
    silent_consumers,
    stop_beating,
    take_over,
)

TTL_MS = 60_000


async def _delivered(redis: Redis, streams: StreamNames, consumer: str, count: int) -> list[bytes]:
    """``count`` new entries, read by ``consumer`` and left pending."""
    stream = streams.applications
    await ensure_group(redis, stream, POLLER_GROUP)
    for number in range(count):
        await redis.xadd(stream, {b"data": str(number).encode()})
    entries = await read_group(redis, stream, POLLER_GROUP, consumer, count=count)
    return [entry.id for entry in entries]


async def _owners(redis: Redis, streams: StreamNames) -> dict[bytes, bytes]:
    rows: Any = await redis.xpending_range(streams.applications, POLLER_GROUP, "-", "+", 1000)
    return {row["message_id"]: row["consumer"] for row in rows}


async def _consumers(redis: Redis, streams: StreamNames) -> set[bytes]:
    infos: Any = await redis.xinfo_consumers(streams.applications, POLLER_GROUP)
    return {info["name"] for info in infos}


async def test_only_consumers_without_a_heartbeat_are_silent(
    redis: Redis, streams: StreamNames
) -> None:
    assert (
        await silent_consumers(redis, streams, streams.applications, POLLER_GROUP, exclude="me")
        == []
    )  # no stream yet
    await _delivered(redis, streams, "alive", 2)
    await _delivered(redis, streams, "dead", 3)
    await _delivered(redis, streams, "me", 1)
    await beat(redis, streams, POLLER_GROUP, "alive", ttl_ms=TTL_MS)
    await beat(redis, streams, POLLER_GROUP, "stopped", ttl_ms=TTL_MS)
    await _delivered(redis, streams, "stopped", 1)
    await stop_beating(redis, streams, POLLER_GROUP, "stopped")

    silent = await silent_consumers(
        redis, streams, streams.applications, POLLER_GROUP, exclude="me"
    )

    assert sorted((consumer.name, consumer.pending) for consumer in silent) == [
        ("dead", 3),
        ("stopped", 1),
    ]


async def test_an_expired_heartbeat_is_silence(redis: Redis, streams: StreamNames) -> None:
    await _delivered(redis, streams, "brief", 1)
    await beat(redis, streams, POLLER_GROUP, "brief", ttl_ms=50)
    await asyncio.sleep(0.1)  # nobody refreshes it: the key is gone by itself

    [silent] = await silent_consumers(
        redis, streams, streams.applications, POLLER_GROUP, exclude=""
    )
    assert silent.name == "brief"


async def test_a_silent_consumers_entries_are_taken_over_a_batch_at_a_time(
    redis: Redis, streams: StreamNames
) -> None:
    dead = await _delivered(redis, streams, "dead", 5)

    first = await take_over(
        redis,
        streams,
        streams.applications,
        POLLER_GROUP,
        "me",
        silent="dead",
        min_idle_ms=0,
        count=3,
    )
    rest = await take_over(
        redis,
        streams,
        streams.applications,
        POLLER_GROUP,
        "me",
        silent="dead",
        min_idle_ms=0,
        count=3,
    )

    assert [entry.id for entry in first + rest] == dead
    assert [entry.fields for entry in first] == [{b"data": str(n).encode()} for n in range(3)]
    assert await _owners(redis, streams) == dict.fromkeys(dead, b"me")


async def test_a_live_consumers_entries_and_fresh_entries_are_never_taken(
    redis: Redis, streams: StreamNames
) -> None:
    alive = await _delivered(redis, streams, "alive", 2)
    await beat(redis, streams, POLLER_GROUP, "alive", ttl_ms=TTL_MS)
    fresh = await _delivered(redis, streams, "dead", 2)

    taken_from_alive = await take_over(
        redis,
        streams,
        streams.applications,
        POLLER_GROUP,
        "me",
        silent="alive",
        min_idle_ms=0,
        count=10,
    )
    taken_fresh = await take_over(
        redis,
        streams,
        streams.applications,
        POLLER_GROUP,
        "me",
        silent="dead",
        min_idle_ms=TTL_MS,
        count=10,
    )

    assert (taken_from_alive, taken_fresh) == ([], [])
    assert await _owners(redis, streams) == {
        **dict.fromkeys(alive, b"alive"),
        **dict.fromkeys(fresh, b"dead"),
    }


async def test_entries_released_on_stop_are_taken_over_at_once(
    redis: Redis, streams: StreamNames
) -> None:
    handed_back = await _delivered(redis, streams, "stopping", 3)

    await release(
        redis, streams.applications, POLLER_GROUP, "stopping", handed_back, idle_ms=TTL_MS
    )
    taken = await take_over(
        redis,
        streams,
        streams.applications,
        POLLER_GROUP,
        "me",
        silent="stopping",
        min_idle_ms=TTL_MS,
        count=10,
    )

    assert [entry.id for entry in taken] == handed_back


async def test_a_consumer_is_removed_only_without_heartbeat_and_pending_entries(
    redis: Redis, streams: StreamNames
) -> None:
    await _delivered(redis, streams, "holding", 1)
    await _delivered(redis, streams, "beating", 1)
    await redis.xack(streams.applications, POLLER_GROUP, *(await _owners(redis, streams)))
    await _delivered(redis, streams, "holding", 1)
    await beat(redis, streams, POLLER_GROUP, "beating", ttl_ms=TTL_MS)
    await _delivered(redis, streams, "empty", 1)
    await redis.xack(streams.applications, POLLER_GROUP, *(await _owners(redis, streams)))
    await _delivered(redis, streams, "holding", 1)

    removed = {
        name: await remove_consumer(redis, streams, streams.applications, POLLER_GROUP, name)
        for name in ("holding", "beating", "empty")
    }

    assert removed == {"holding": False, "beating": False, "empty": True}
    assert await _consumers(redis, streams) == {b"holding", b"beating"}
