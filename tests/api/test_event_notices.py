"""On PostgreSQL, an API replica's event feed reads at once the decisions another commits.

The feeds here look at the log once a minute, so only the database's notice
can bring an event sooner; one test restarts a server of its own in between.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg

from lendo_api.event_feed import EventFeed
from lendo_api.postgres_store import PostgresStore
from lendo_api.store import StatusChange
from lendo_api.timestamps import now
from tests.postgres_server import TemporaryPostgres, scratch_database

LOOK_EVERY = 60.0


async def open_store(url: str) -> PostgresStore:
    return await PostgresStore.open(url, min_size=1, max_size=2, claim_for=timedelta(seconds=30))


@asynccontextmanager
async def following(store: PostgresStore) -> AsyncIterator[EventFeed]:
    """An event feed on ``store`` that looks once a minute, and the store's notices."""
    feed = EventFeed(store, interval=LOOK_EVERY)
    await feed.start()
    tasks = [
        asyncio.create_task(feed.run()),
        asyncio.create_task(store.follow_event_commits(feed.nudge)),
    ]
    try:
        yield feed
    finally:
        feed.stop()
        tasks[1].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def decide(store: PostgresStore) -> None:
    """Create an application, and record the bank's decision on it."""
    created = await store.create(id=uuid.uuid4(), first_name="A", last_name="B", request_id=None)
    await store.apply_updates([StatusChange(created.id, "completed", now())])


async def test_a_replica_reads_at_once_the_decisions_another_commits(database_url: str) -> None:
    writer, reader = await open_store(database_url), await open_store(database_url)
    try:
        async with following(reader) as feed:
            await decide(writer)
            async with asyncio.timeout(10):
                while len(events := (await feed.read(0, application_id=None, owner=None))[0]) < 2:
                    await feed.wait_past(feed.position)
            assert [event.type for event in events] == [
                "application.created",
                "application.completed",
            ]
    finally:
        await writer.close()
        await reader.close()


async def test_the_notices_come_back_after_the_database_restarts() -> None:
    with TemporaryPostgres() as server, scratch_database(server.url) as url:
        writer, reader = await open_store(url), await open_store(url)
        try:
            async with following(reader) as feed:
                await asyncio.to_thread(server.stop)
                await asyncio.to_thread(server.start)
                async with asyncio.timeout(20):
                    while True:  # the writer's pool replaces its broken connections
                        try:
                            await decide(writer)
                            break
                        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                            await asyncio.sleep(0.1)
                    await feed.wait_past(0)
                    # Past the reconnect's own wake-up: this one is a notice.
                    seen = feed.position
                    await decide(writer)
                    await feed.wait_past(seen)
        finally:
            await writer.close()
            await reader.close()
