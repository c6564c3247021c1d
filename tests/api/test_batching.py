"""Group commit and shared publishes: concurrent callers batched, each still answered alone."""

import asyncio
import json
import sqlite3
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from lendo_api.publisher import SubmissionPublisher
from lendo_api.sqlite_store import SqliteStore
from lendo_runtime.batching import Batcher
from lendo_streams import StreamNames, SubmissionMessage, decode


async def create(store: SqliteStore, application_id: uuid.UUID | None = None) -> uuid.UUID:
    created = await store.create(
        id=application_id or uuid.uuid4(), first_name="A", last_name="B", request_id=None
    )
    return created.id


async def listed(store: SqliteStore) -> list[dict[str, Any]]:
    """Every application, in creation order, as the API lists them."""
    page = await store.list_page_json(status=None, limit=1000, after=None)
    return [json.loads(item) for item in page.items]


async def test_concurrent_creates_each_get_their_own_committed_row(store: SqliteStore) -> None:
    ids = [uuid.uuid4() for _ in range(200)]

    created = await asyncio.gather(
        *(
            store.create(id=i, first_name=f"A{n}", last_name="B", request_id=None)
            for n, i in enumerate(ids)
        )
    )

    assert [application.id for application in created] == ids
    stored = {item["id"]: item["first_name"] for item in await listed(store)}
    assert stored == {str(application.id): application.first_name for application in created}


async def test_a_create_with_a_used_id_fails_alone(store: SqliteStore) -> None:
    used = uuid.uuid4()
    await create(store, used)

    results = await asyncio.gather(
        create(store), create(store, used), create(store), return_exceptions=True
    )

    [first, reused, last] = results
    assert isinstance(reused, sqlite3.IntegrityError)
    assert isinstance(first, uuid.UUID)
    assert isinstance(last, uuid.UUID)
    assert [item["id"] for item in await listed(store)] == [str(used), str(first), str(last)]


async def test_a_cancelled_create_is_still_committed_and_close_waits_for_it(
    tmp_path: Path,
) -> None:
    store = await SqliteStore.open(tmp_path / "store.sqlite3")
    application_id = uuid.uuid4()
    others = [asyncio.create_task(create(store)) for _ in range(10)]
    cancelled = asyncio.create_task(create(store, application_id))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(*others)
    await store.close()

    reopened = await SqliteStore.open(tmp_path / "store.sqlite3")
    try:
        assert await reopened.get_json(application_id) is not None
        assert len(await listed(reopened)) == 11
    finally:
        await reopened.close()


async def test_concurrent_publishes_all_reach_the_stream_and_are_marked(
    store: SqliteStore, redis: Redis, streams: StreamNames
) -> None:
    publisher = SubmissionPublisher(redis, streams.applications, store)
    created = [
        await store.create(id=uuid.uuid4(), first_name="A", last_name="B", request_id=None)
        for _ in range(50)
    ]

    await asyncio.gather(*(publisher.publish([application]) for application in created))

    entries: Any = await redis.xrange(streams.applications)
    published = [decode(SubmissionMessage, fields).id for _, fields in entries]
    assert sorted(published) == sorted(application.id for application in created)
    # Every one was marked published: none is due for the sweep.
    assert await store.due_for_publish(older_than=timedelta(hours=1), limit=100) == []


async def test_a_submitter_that_gives_up_gets_a_timeout_and_its_items_are_still_flushed() -> None:
    release = asyncio.Event()
    flushed: list[str] = []

    async def flush(items: list[str]) -> list[None]:
        await release.wait()  # a Redis that does not answer, until it does
        flushed.extend(items)
        return [None] * len(items)

    batcher: Batcher[str, None] = Batcher(flush)
    patient = asyncio.create_task(batcher.submit(["first"]))

    with pytest.raises(TimeoutError):
        await batcher.submit(["second"], give_up_after=0.01)
    assert not patient.done()

    release.set()
    await batcher.drain()
    assert await patient == [None]
    assert sorted(flushed) == ["first", "second"]
