"""Fixtures the API tests share: a store of their own, beside the root's API client."""

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from lendo_api.postgres_store import PostgresStore
from lendo_api.sqlite_store import SqliteStore
from lendo_api.store import ApplicationStore
from tests.api.helpers import OpenStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A SQLite store on a file of this test's own, closed afterwards."""
    opened = await SqliteStore.open(tmp_path / "store.sqlite3")
    yield opened
    await opened.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenStore]:
    """Opens the store under test on this test's own database; each one opened is closed after."""
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite3"

        async def open_sqlite() -> ApplicationStore:
            return await SqliteStore.open(path)

        opener: OpenStore = open_sqlite
    else:
        url: str = request.getfixturevalue("database_url")

        async def open_postgres() -> ApplicationStore:
            return await PostgresStore.open(
                url, min_size=1, max_size=4, claim_for=timedelta(seconds=30)
            )

        opener = open_postgres
    opened: list[ApplicationStore] = []

    async def open_one() -> ApplicationStore:
        store = await opener()
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()
