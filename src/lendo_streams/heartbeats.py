"""Heartbeats of a group's consumers, and taking over the entries of the silent ones.

A live consumer keeps a key with a short TTL (:meth:`StreamNames.heartbeat`)
and refreshes it well within the TTL; a consumer that died stops refreshing
it, and the key expires. Another consumer then takes over its pending
entries at once, instead of waiting for them to be idle for the long
``claim_idle`` of XAUTOCLAIM. Deleting the key on a graceful stop lets the
others take over sooner still.

Taking over and removing a consumer check its heartbeat again inside one Lua
script, together with the claim or the removal, so a consumer that comes
back in between keeps what it holds. The claim also keeps a minimum idle
time, as a safety net for a live consumer whose key is missing for a moment
(before its first beat, or while Redis was unreachable): an entry it read or
touched within that time is never taken.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from lendo_streams.groups import Entry, is_nogroup
from lendo_streams.names import StreamNames

_TAKE_OVER = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {}
end
local pending = redis.call(
  'XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[4], '-', '+', ARGV[5], ARGV[2])
if #pending == 0 then
  return {}
end
local ids = {}
for i, row in ipairs(pending) do
  ids[i] = row[1]
end
return redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], ARGV[4], unpack(ids))
"""
"""KEYS: stream, silent consumer's heartbeat. ARGV: group, silent, taker, min idle ms, count."""

_REMOVE = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then
  return 0
end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
"""
"""KEYS: stream, the consumer's heartbeat. ARGV: group, consumer."""


@dataclass(frozen=True, slots=True)
class SilentConsumer:
    """A consumer of a group with no heartbeat: dead, or not keeping one."""

    name: str
    pending: int
    """Entries delivered to it and not acknowledged."""


async def beat(
    redis: "Redis", streams: StreamNames, group: str, consumer: str, *, ttl_ms: int
) -> None:
    """Say that ``consumer`` is alive for the next ``ttl_ms`` milliseconds."""
    await redis.set(streams.heartbeat(group, consumer), b"1", px=ttl_ms)


async def stop_beating(redis: "Redis", streams: StreamNames, group: str, consumer: str) -> None:
    """Say that ``consumer`` has stopped: the others may take over what it left at once."""
    await redis.delete(streams.heartbeat(group, consumer))


async def silent_consumers(
    redis: "Redis", streams: StreamNames, stream: str, group: str, *, exclude: str
) -> list[SilentConsumer]:
    """The consumers of ``group`` on ``stream``, other than ``exclude``, with no heartbeat.

    None at all if the stream or group does not exist (Redis restarted empty): its
    reader recreates it.
    """
    try:
        infos: Any = await redis.xinfo_consumers(stream, group)
    except ResponseError as error:
        if is_nogroup(error) or "no such key" in str(error).lower():
            return []
        raise
    consumers = [
        SilentConsumer(_text(info["name"]), int(info["pending"]))
        for info in infos
        if _text(info["name"]) != exclude
    ]
    if not consumers:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for consumer in consumers:
            pipe.exists(streams.heartbeat(group, consumer.name))
        alive: list[int] = await pipe.execute()
    return [consumer for consumer, beating in zip(consumers, alive, strict=True) if not beating]


async def take_over(
    redis: "Redis",
    streams: StreamNames,
    stream: str,
    group: str,
    consumer: str,
    *,
    silent: str,
    min_idle_ms: int,
    count: int,
) -> list[Entry]:
    """Claim for ``consumer`` up to ``count`` of the pending entries of ``silent``.

    Only while ``silent`` still has no heartbeat, and only entries idle for at
    least ``min_idle_ms``. Entries deleted from the stream while pending are
    not returned.
    """
    try:
        reply: Any = await redis.eval(
            _TAKE_OVER,
            2,
            stream,
            streams.heartbeat(group, silent),
            group,
            silent,
            consumer,
            min_idle_ms,
            count,
        )
    except ResponseError as error:
        if is_nogroup(error):
            return []
        raise
    # An entry deleted from the stream comes back as nil (Redis 6.2) or not at all (7.0).
    return [Entry(row[0], _fields(row[1])) for row in reply if row and row[1]]


async def remove_consumer(
    redis: "Redis", streams: StreamNames, stream: str, group: str, silent: str
) -> bool:
    """Delete ``silent`` from ``group`` if it still has no heartbeat and no pending entry."""
    try:
        removed = await redis.eval(
            _REMOVE, 2, stream, streams.heartbeat(group, silent), group, silent
        )
    except ResponseError as error:
        if is_nogroup(error):
            return False
        raise
    return bool(removed)


def _fields(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
