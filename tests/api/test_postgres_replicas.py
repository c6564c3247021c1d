"""Several API replicas on one PostgreSQL database, each a PostgresStore of its own."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from lendo_api.postgres_store import PostgresStore
from lendo_api.publisher import SubmissionPublisher
from lendo_api.reconciler import Reconciler
from lendo_api.store import IdempotencyKey
from lendo_streams import StreamNames, SubmissionMessage, decode

CLAIM = timedelta(seconds=30)


@pytest.fixture
async def replicas(database_url: str) -> AsyncIterator[list[PostgresStore]]:
    """Two stores on one database, as two API processes have them."""
    stores = [
        await PostgresStore.open(database_url, min_size=1, max_size=4, claim_for=CLAIM)
        for _ in range(2)
    ]
    yield stores
    for store in stores:
        await store.close()


async def create(store: PostgresStore) -> uuid.UUID:
    created = await store.create(
        id=uuid.uuid4(), first_name="Ada", last_name="Lovelace", request_id=None
    )
    return created.id


async def test_one_key_on_two_replicas_at_once_makes_one_application(
    replicas: list[PostgresStore],
) -> None:
    key = IdempotencyKey(scope="client-a", key="k-1", body_hash="h-1")

    results = await asyncio.gather(
        *(
            replicas[n % 2].create_once(
                key=key,
                id=uuid.uuid4(),
                first_name="Ada",
                last_name="Lovelace",
                request_id=None,
                keep_for=timedelta(hours=1),
            )
            for n in range(20)
        )
    )

    assert sum(result.created for result in results) == 1
    assert len({result.application.id for result in results}) == 1
    assert await replicas[1].count_by_status() == {"pending": 1}


async def test_a_cursor_from_one_replica_continues_on_the_other(
    replicas: list[PostgresStore],
) -> None:
    first, second = replicas
    ids = [await create(replicas[n % 2]) for n in range(5)]

    page_one = await first.list_page_json(status=None, limit=3, after=None)
    assert page_one.next_after is not None
    page_two = await second.list_page_json(status=None, limit=3, after=page_one.next_after)

    read = [json.loads(item)["id"] for item in [*page_one.items, *page_two.items]]
    assert read == [str(i) for i in ids]
    assert page_two.next_after is None


async def test_two_sweeps_at_once_take_different_applications(
    replicas: list[PostgresStore],
) -> None:
    ids = {await create(replicas[0]) for _ in range(10)}

    first, second = await asyncio.gather(
        *(store.due_for_publish(older_than=timedelta(0), limit=6) for store in replicas)
    )

    taken = [app.id for app in [*first, *second]]
    assert len(taken) == len(set(taken)) == 10
    assert set(taken) == ids


async def test_applications_a_sweep_claimed_but_never_published_are_due_after_the_claim(
    database_url: str,
) -> None:
    brief = await PostgresStore.open(
        database_url, min_size=1, max_size=2, claim_for=timedelta(seconds=0.2)
    )
    try:
        created = await create(brief)
        [claimed] = await brief.due_for_publish(older_than=timedelta(0), limit=10)

        during = await brief.due_for_publish(older_than=timedelta(0), limit=10)
        await asyncio.sleep(0.3)
        after = await brief.due_for_publish(older_than=timedelta(0), limit=10)
    finally:
        await brief.close()

    assert claimed.id == created
    assert during == []
    assert [app.id for app in after] == [created]


async def test_two_reconcilers_publish_each_application_once(
    replicas: list[PostgresStore], redis: Redis, streams: StreamNames
) -> None:
    ids = {await create(replicas[n % 2]) for n in range(60)}
    reconcilers = [
        Reconciler(
            store,
            SubmissionPublisher(redis, streams.applications, store),
            interval=3600,
            republish_after=3600,
            batch=7,
            keep_keys_for=timedelta(hours=1),
        )
        for store in replicas
    ]

    async def sweep_until_dry(reconciler: Reconciler) -> None:
        while await reconciler.sweep():
            pass

    await asyncio.gather(*(sweep_until_dry(reconciler) for reconciler in reconcilers))

    entries: Any = await redis.xrange(streams.applications)
    published = [decode(SubmissionMessage, fields).id for _, fields in entries]
    assert sorted(published) == sorted(ids)
    assert all(reconciler.published > 0 for reconciler in reconcilers)
