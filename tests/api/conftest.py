"""Fixtures the API tests share: a store of their own, beside the root's API client."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lendo_api.sqlite_store import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A SQLite store on a file of this test's own, closed afterwards."""
    opened = await SqliteStore.open(tmp_path / "store.sqlite3")
    yield opened
    await opened.close()
