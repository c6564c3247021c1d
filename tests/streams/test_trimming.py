"""Trimming a stream to what its groups still need, on real Redis."""

from typing import Any

from redis.asyncio import Redis

from lendo_streams import StreamNames, ensure_group, read_group
from lendo_streams.trimming import trim_acknowledged


async def _add(redis: Redis, stream: str, count: int) -> list[bytes]:
    ids: list[Any] = [await redis.xadd(stream, {b"data": b"{}"}) for _ in range(count)]
    return [bytes(entry_id) for entry_id in ids]


async def _left(redis: Redis, stream: str) -> list[bytes]:
    entries: Any = await redis.xrange(stream)
    return [entry_id for entry_id, _ in entries]


async def test_only_entries_every_group_acknowledged_are_removed(
    redis: Redis, streams: StreamNames
) -> None:
    stream = streams.updates
    await ensure_group(redis, stream, "a")
    await ensure_group(redis, stream, "b")
    ids = await _add(redis, stream, 10)
    await read_group(redis, stream, "a", "a-1", count=6)
    await redis.xack(stream, "a", ids[0], ids[1], ids[3])
    await read_group(redis, stream, "b", "b-1", count=8)
    await redis.xack(stream, "b", *ids[:8])

    # Group a still holds 2 (pending), 4 and 5 (pending); 6..9 it has not read yet.
    assert await trim_acknowledged(redis, stream) == 2
    assert await _left(redis, stream) == ids[2:]

    await redis.xack(stream, "a", *ids[:6])
    assert await trim_acknowledged(redis, stream) == 3
    # The last entry group a was given stays: nothing newer was delivered yet.
    assert await _left(redis, stream) == ids[5:]


async def test_a_stream_nobody_reads_yet_is_left_whole(redis: Redis, streams: StreamNames) -> None:
    assert await trim_acknowledged(redis, streams.applications) == 0
    ids = await _add(redis, streams.applications, 3)
    assert await trim_acknowledged(redis, streams.applications) == 0
    await ensure_group(redis, streams.applications, "pollers")
    assert await trim_acknowledged(redis, streams.applications) == 0
    assert await _left(redis, streams.applications) == ids
