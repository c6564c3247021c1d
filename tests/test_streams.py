"""The stream contract: messages round-trip and groups are created idempotently."""

import uuid
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from lendo_streams import (
    POLLER_GROUP,
    MalformedEntry,
    StreamNames,
    SubmissionMessage,
    UpdateMessage,
    decode,
    encode,
    ensure_group,
)


async def test_submission_round_trips_through_a_real_stream(
    redis: Redis, streams: StreamNames
) -> None:
    sent = SubmissionMessage(
        id=uuid.uuid4(), first_name="Åsa", last_name="Ñúñez-O'Brien", request_id="req-1"
    )
    await redis.xadd(streams.submissions, encode(sent))

    [(_entry_id, fields)] = await redis.xrange(streams.submissions)

    assert decode(SubmissionMessage, fields) == sent


async def test_update_round_trips_through_a_real_stream(redis: Redis, streams: StreamNames) -> None:
    sent = UpdateMessage(id=uuid.uuid4(), status="rejected", decided_at=datetime.now(UTC))
    await redis.xadd(streams.updates, encode(sent))

    [(_entry_id, fields)] = await redis.xrange(streams.updates)

    assert decode(UpdateMessage, fields) == sent


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
    await ensure_group(redis, streams.submissions, POLLER_GROUP)
    await redis.xadd(streams.submissions, {b"data": b"{}"})
    await redis.xreadgroup(POLLER_GROUP, "c1", {streams.submissions: ">"})

    await ensure_group(redis, streams.submissions, POLLER_GROUP)

    [group] = await redis.xinfo_groups(streams.submissions)
    assert group["name"] == POLLER_GROUP.encode()
    assert group["pending"] == 1


def test_a_prefix_separates_two_systems() -> None:
    assert StreamNames("a:").submissions != StreamNames("b:").submissions
    assert StreamNames("a:").updates == "a:updates"
