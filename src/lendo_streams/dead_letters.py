"""Writing, reading and replaying the dead-letter stream.

Both processes move an entry they cannot process to the dead-letter stream
instead of dropping it: the poller a malformed submission or one delivered
more than ``max_deliveries`` times; the API a malformed update. Both write
it with :func:`queue_dead_letters`: the original entry's fields plus
bookkeeping, ``reason``, the stream it came from (``source_stream``) and its
id there (``source_id``).

Replaying puts the original fields back on their source stream as a new
entry, read like any other, and deletes the dead letter in the same
MULTI/EXEC transaction: a replayed entry is never both replayed and kept,
nor lost. Replaying a submission is always safe (the poller treats a
repeated application as the same application, and a final status never
changes); an entry that is still malformed simply comes back.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.typing import EncodableT, FieldT

from lendo_streams.groups import Entry
from lendo_streams.names import StreamNames

REASON_FIELD = b"reason"
SOURCE_STREAM_FIELD = b"source_stream"
SOURCE_ID_FIELD = b"source_id"
OLD_SOURCE_ID_FIELD = b"entry_id"
"""Where pollers before the shared writer kept the source id; still read."""
BOOKKEEPING_FIELDS = frozenset(
    {REASON_FIELD, SOURCE_STREAM_FIELD, SOURCE_ID_FIELD, OLD_SOURCE_ID_FIELD}
)

PAGE = 500
"""Dead letters read per XRANGE."""


def queue_dead_letters(
    pipe: Pipeline,
    streams: StreamNames,
    source_stream: str,
    rejects: Sequence[tuple[Entry, str]],
    *,
    maxlen: int,
) -> None:
    """Queue on ``pipe`` one dead letter per ``(entry, reason)`` read from ``source_stream``.

    Each write trims the dead-letter stream to about ``maxlen`` entries, oldest first
    (approximately: Redis drops whole nodes, which costs next to nothing).
    """
    for entry, reason in rejects:
        fields: dict[FieldT, EncodableT] = dict(entry.fields.items())
        fields[REASON_FIELD] = reason.encode()
        fields[SOURCE_STREAM_FIELD] = source_stream.encode()
        fields[SOURCE_ID_FIELD] = entry.id
        pipe.xadd(streams.dead_letters, fields, maxlen=maxlen, approximate=True)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One entry of the dead-letter stream, split into its origin and its original fields."""

    id: str
    reason: str
    source_stream: str
    source_id: str | None
    original: dict[bytes, bytes]


async def dead_letters(redis: "Redis", streams: StreamNames) -> list[DeadLetter]:
    """Every dead letter, oldest first."""
    found: list[DeadLetter] = []
    start = "-"
    while True:
        page: Any = await redis.xrange(streams.dead_letters, min=start, max="+", count=PAGE)
        found.extend(_dead_letter(entry_id, fields, streams) for entry_id, fields in page)
        if len(page) < PAGE:
            return found
        start = "(" + page[-1][0].decode()


async def replay(redis: "Redis", streams: StreamNames, ids: Sequence[str] | None = None) -> int:
    """Put dead letters back on their source streams; all of them if ``ids`` is None.

    Returns how many were replayed; ids that are not (or no longer) dead letters are skipped.
    """
    wanted = None if ids is None else set(ids)
    chosen = [
        letter
        for letter in await dead_letters(redis, streams)
        if wanted is None or letter.id in wanted
    ]
    for start in range(0, len(chosen), PAGE):
        async with redis.pipeline(transaction=True) as pipe:
            for letter in chosen[start : start + PAGE]:
                fields: dict[FieldT, EncodableT] = dict(letter.original.items())
                pipe.xadd(letter.source_stream, fields)
                pipe.xdel(streams.dead_letters, letter.id)
            await pipe.execute()
    return len(chosen)


def _dead_letter(entry_id: bytes, fields: dict[bytes, bytes], streams: StreamNames) -> DeadLetter:
    source_id = fields.get(SOURCE_ID_FIELD, fields.get(OLD_SOURCE_ID_FIELD))
    return DeadLetter(
        id=entry_id.decode(),
        reason=fields.get(REASON_FIELD, b"").decode(errors="replace"),
        # Dead letters written before the source was recorded all came from the poller.
        source_stream=fields.get(SOURCE_STREAM_FIELD, streams.applications.encode()).decode(),
        source_id=None if source_id is None else source_id.decode(),
        original={name: value for name, value in fields.items() if name not in BOOKKEEPING_FIELDS},
    )
