"""Listing and replaying dead letters: the poller's and the API's, back where they came from."""

import json
import os
import subprocess
import sys
import uuid
from typing import Any

from redis.asyncio import Redis

from lendo_streams import (
    POLLER_GROUP,
    StreamNames,
    SubmissionMessage,
    decode,
    encode,
    ensure_group,
    read_group,
)
from lendo_streams.dead_letters import dead_letters, replay


async def _dead_submission(redis: Redis, streams: StreamNames) -> SubmissionMessage:
    """A submission as the poller dead-letters it: original fields plus bookkeeping."""
    message = SubmissionMessage(id=uuid.uuid4(), first_name="Ada", last_name="Lovelace")
    fields: dict[Any, Any] = {
        **encode(message),
        b"reason": b"delivered 11 times",
        b"entry_id": b"1-0",
        b"source_stream": streams.applications.encode(),
    }
    await redis.xadd(streams.dead_letters, fields)
    return message


async def test_replay_puts_entries_back_on_their_streams_and_removes_them(
    redis: Redis, streams: StreamNames
) -> None:
    submission = await _dead_submission(redis, streams)
    await redis.xadd(
        streams.dead_letters,
        {
            b"data": b"not json",
            b"reason": b"not a valid UpdateMessage: 1 errors",
            b"source_stream": streams.updates.encode(),
            b"source_id": b"2-0",
        },
    )
    listed = await dead_letters(redis, streams)
    assert [(letter.source_stream, letter.source_id) for letter in listed] == [
        (streams.applications, "1-0"),
        (streams.updates, "2-0"),
    ]
    await ensure_group(redis, streams.applications, POLLER_GROUP)

    assert await replay(redis, streams, [listed[0].id]) == 1
    [entry] = await read_group(redis, streams.applications, POLLER_GROUP, "p", count=10)
    assert decode(SubmissionMessage, entry.fields) == submission
    assert set(entry.fields) == {b"data"}
    assert [letter.id for letter in await dead_letters(redis, streams)] == [listed[1].id]

    assert await replay(redis, streams) == 1
    assert await dead_letters(redis, streams) == []
    updates: Any = await redis.xrange(streams.updates)
    [(_, fields)] = updates
    assert fields == {b"data": b"not json"}


async def test_the_command_lists_without_names_and_replays_all(
    redis_url: str, redis: Redis, streams: StreamNames
) -> None:
    await _dead_submission(redis, streams)
    env = {**os.environ, "LENDO_REDIS_URL": redis_url, "LENDO_STREAM_PREFIX": streams.prefix}

    def command(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "lendo_streams.dead_letters_cli", *args],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    [line] = command("list").splitlines()
    assert json.loads(line)["reason"] == "delivered 11 times"
    assert "Lovelace" not in line
    assert "Lovelace" in command("list", "--data")
    assert command("replay", "--all") == "replayed 1\n"
    assert await redis.xlen(streams.applications) == 1
    assert command("list") == ""
