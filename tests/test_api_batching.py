"""Group commit and shared publishes: concurrent callers batched, each still answered alone."""

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from lendo_api.publisher import SubmissionPublisher
from lendo_api.sqlite_store import SqliteStore
from lendo_runtime.batching import Batcher
from lendo_streams import StreamNames, SubmissionMessage, decode


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "store.sqlite3")
    yield opened
    await opened.close()


async def create(store: SqliteStore, application_id: uuid.UUID | None = None) -> int:
    created = await store.create(
        id=application_id or uuid.uuid4(), first_name="A", last_name="B", request_id=None
    )
    return created.seq


async def test_concurrent_creates_each_get_their_own_committed_row(store: SqliteStore) -> None:
    ids = [uuid.uuid4() for _ in range(200)]

    created = await asyncio.gather(
        *(
            store.create(id=i, first_name=f"A{n}", last_name="B", request_id=None)
            for n, i in enumerate(ids)
        )
    )

    assert [application.id for application in created] == ids
    assert len({application.seq for application in created}) == len(ids)
    for application in created:
        stored = await store.get(application.id)
        assert stored is not None
        assert (stored.seq, stored.first_name) == (application.seq, application.first_name)


async def test_a_create_with_a_used_id_fails_alone(store: SqliteStore) -> None:
    used = uuid.uuid4()
    await create(store, used)

    results = await asyncio.gather(
        create(store), create(store, used), create(store), return_exceptions=True
    )

    [first, reused, last] = results
    assert isinstance(reused, sqlite3.IntegrityError)
    assert isinstance(first, int)
    assert isinstance(last, int)
    page = await store.list_page(status=None, limit=10, after=None)
    assert len(page.items) == 3


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
        assert await reopened.get(application_id) is not None
        assert len((await reopened.list_page(status=None, limit=20, after=None)).items) == 11
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
    page = await store.list_page(status=None, limit=100, after=None)
    assert all(item.published_at is not None for item in page.items)


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
