"""Consumer-group helpers shared by both processes.

redis-py's stream commands return loosely typed nested lists; these helpers
turn them into :class:`Entry` values once, here, so the rest of the code is
typed. Every reader recreates a lost group (Redis restarted empty) itself.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry: its id and its raw fields."""

    id: bytes
    fields: dict[bytes, bytes]


async def ensure_group(redis: "Redis", stream: str, group: str) -> None:
    """Create ``group`` on ``stream`` (and the stream itself) unless it exists.

    Idempotent, so every process calls it at start and again after Redis
    answers NOGROUP (Redis restarted empty).
    """
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as error:
        if not str(error).startswith("BUSYGROUP"):
            raise


def is_nogroup(error: ResponseError) -> bool:
    """True if Redis lost the stream or group (e.g. it restarted without data)."""
    return str(error).startswith("NOGROUP")


async def read_group(
    redis: "Redis",
    stream: str,
    group: str,
    consumer: str,
    *,
    count: int,
    block_ms: int | None = None,
    own_pending: bool = False,
) -> list[Entry]:
    """XREADGROUP new entries, or this consumer's own pending ones if ``own_pending``.

    Recreates the group and returns nothing if Redis lost it.
    """
    start = "0" if own_pending else ">"
    try:
        reply: Any = await redis.xreadgroup(
            group, consumer, {stream: start}, count=count, block=block_ms
        )
    except ResponseError as error:
        if not is_nogroup(error):
            raise
        await ensure_group(redis, stream, group)
        return []
    if not reply:
        return []
    [(_stream, raw_entries)] = reply
    return _entries(raw_entries)


async def autoclaim(
    redis: "Redis",
    stream: str,
    group: str,
    consumer: str,
    *,
    min_idle_ms: int,
    start: bytes = b"0-0",
    count: int = 100,
) -> tuple[bytes, list[Entry]]:
    """XAUTOCLAIM entries idle for ``min_idle_ms``; return the next cursor and the entries.

    Entries deleted from the stream while pending come back as ``None`` from
    Redis; they are dropped here (Redis removes them from the pending list).
    """
    try:
        reply: Any = await redis.xautoclaim(
            stream, group, consumer, min_idle_ms, start_id=start, count=count
        )
    except ResponseError as error:
        if not is_nogroup(error):
            raise
        await ensure_group(redis, stream, group)
        return b"0-0", []
    next_start: bytes = reply[0]
    return next_start, _entries(reply[1])


async def touch(
    redis: "Redis", stream: str, group: str, consumer: str, ids: Sequence[bytes]
) -> None:
    """Reset the idle time of entries this consumer still works on (XCLAIM JUSTID).

    Keeps healthy long-running work from being reclaimed by another consumer.
    """
    if ids:
        await redis.xclaim(stream, group, consumer, 0, list(ids), justid=True)


async def release(
    redis: "Redis", stream: str, group: str, consumer: str, ids: Sequence[bytes], *, idle_ms: int
) -> None:
    """Make entries this consumer hands back look idle for ``idle_ms`` (XCLAIM IDLE JUSTID).

    Another consumer that takes over entries idle that long then takes them at once.
    Entries acknowledged meanwhile are left alone.
    """
    if ids:
        await redis.xclaim(stream, group, consumer, 0, list(ids), idle=idle_ms, justid=True)


def _entries(raw: Sequence[Any]) -> list[Entry]:
    return [Entry(entry_id, dict(fields)) for entry_id, fields in raw if fields is not None]


@dataclass(frozen=True, slots=True)
class GroupBacklog:
    """What one consumer group has yet to finish on one stream."""

    pending: int
    """Entries delivered to a consumer and not yet acknowledged."""
    lag: int | None
    """Entries not yet delivered; None where Redis cannot tell (before 7.0, or after deletions)."""


async def group_backlog(redis: "Redis", stream: str, group: str) -> GroupBacklog | None:
    """The backlog of ``group`` on ``stream`` from XINFO GROUPS; None if either does not exist."""
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:
        return None  # no such stream yet
    for info in groups:
        name = info["name"]
        if (name.decode() if isinstance(name, bytes) else name) == group:
            return GroupBacklog(pending=int(info["pending"]), lag=info.get("lag"))
    return None
