"""The stream contract: messages round-trip and groups are created idempotently."""

import uuid
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from lendo_streams import (
    API_GROUP,
    POLLER_GROUP,
    MalformedEntry,
    StreamNames,
    SubmissionMessage,
    UpdateMessage,
    autoclaim,
    decode,
    encode,
    ensure_group,
    read_group,
)


async def test_submission_round_trips_through_a_real_stream(
    redis: Redis, streams: StreamNames
) -> None:
    sent = SubmissionMessage(
        id=uuid.uuid4(), first_name="Åsa", last_name="Ñúñez-O'Brien", request_id="req-1"
    )
    await ensure_group(redis, streams.applications, POLLER_GROUP)
    await redis.xadd(streams.applications, encode(sent))

    [entry] = await read_group(redis, streams.applications, POLLER_GROUP, "c1", count=10)

    assert decode(SubmissionMessage, entry.fields) == sent


async def test_update_round_trips_through_a_real_stream(redis: Redis, streams: StreamNames) -> None:
    sent = UpdateMessage(id=uuid.uuid4(), status="rejected", decided_at=datetime.now(UTC))
    await ensure_group(redis, streams.updates, API_GROUP)
    await redis.xadd(streams.updates, encode(sent))

    [entry] = await read_group(redis, streams.updates, API_GROUP, "c1", count=10)

    assert decode(UpdateMessage, entry.fields) == sent


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {b"data": b"not json"},
        {b"data": b'{"id": "not-a-uuid", "first_name": "a", "last_name": "b"}'},
        {b"data": b'{"id": "6b3c4b2e-8a55-4f3e-9a3e-0d0f4c8a1f00"}'},
    ],
)
def test_malformed_entries_raise_a_domain_error(fields: dict[bytes, bytes]) -> None:
    with pytest.raises(MalformedEntry):
        decode(SubmissionMessage, fields)


def test_an_update_with_a_non_final_status_is_malformed() -> None:
    fields = {
        b"data": b'{"id": "6b3c4b2e-8a55-4f3e-9a3e-0d0f4c8a1f00", "status": "pending",'
        b' "decided_at": "2026-01-01T00:00:00Z"}'
    }
    with pytest.raises(MalformedEntry):
        decode(UpdateMessage, fields)


async def test_ensure_group_is_idempotent_and_keeps_the_group_position(
    redis: Redis, streams: StreamNames
) -> None:
    await ensure_group(redis, streams.applications, POLLER_GROUP)
    await redis.xadd(streams.applications, {b"data": b"{}"})
    await redis.xreadgroup(POLLER_GROUP, "c1", {streams.applications: ">"})

    await ensure_group(redis, streams.applications, POLLER_GROUP)

    [group] = await redis.xinfo_groups(streams.applications)
    assert group["name"] == POLLER_GROUP.encode()
    assert group["pending"] == 1


def test_a_prefix_separates_two_systems() -> None:
    assert StreamNames("a:").applications != StreamNames("b:").applications
    assert StreamNames("a:").updates == "a:updates"


async def test_reading_a_lost_group_recreates_it(redis: Redis, streams: StreamNames) -> None:
    assert await read_group(redis, streams.updates, API_GROUP, "c1", count=1) == []

    await redis.xadd(streams.updates, {b"data": b"{}"})
    [entry] = await read_group(redis, streams.updates, API_GROUP, "c1", count=1)

    assert entry.fields == {b"data": b"{}"}


async def test_own_pending_entries_are_read_again_after_a_restart(
    redis: Redis, streams: StreamNames
) -> None:
    await ensure_group(redis, streams.applications, POLLER_GROUP)
    await redis.xadd(streams.applications, {b"data": b"{}"})
    [first] = await read_group(redis, streams.applications, POLLER_GROUP, "c1", count=1)

    [again] = await read_group(
        redis, streams.applications, POLLER_GROUP, "c1", count=1, own_pending=True
    )

    assert again.id == first.id


async def test_autoclaim_takes_over_idle_entries_of_another_consumer(
    redis: Redis, streams: StreamNames
) -> None:
    await ensure_group(redis, streams.applications, POLLER_GROUP)
    await redis.xadd(streams.applications, {b"data": b"{}"})
    [entry] = await read_group(redis, streams.applications, POLLER_GROUP, "dead", count=1)

    _, fresh = await autoclaim(
        redis, streams.applications, POLLER_GROUP, "alive", min_idle_ms=60_000
    )
    _, idle = await autoclaim(redis, streams.applications, POLLER_GROUP, "alive", min_idle_ms=0)

    assert fresh == []
    assert [e.id for e in idle] == [entry.id]
