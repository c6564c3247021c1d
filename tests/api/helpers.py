"""What the API tests share: how many rows the API's database holds, how to open a store."""

import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import closing

import psycopg
from psycopg import sql

from lendo_api.settings import ApiSettings
from lendo_api.store import ApplicationStore

OpenStore = Callable[[], Awaitable[ApplicationStore]]
"""Opens one more store on the test's database (the ``open_store`` fixture)."""


def count(settings: ApiSettings, table: str = "applications") -> int:
    """Rows of ``table`` in the database of the API with these settings, whichever store."""
    if settings.database_url is not None:
        with psycopg.connect(settings.database_url.get_secret_value()) as db:
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            [(rows,)] = db.execute(query).fetchall()
            return int(rows)
    with closing(sqlite3.connect(settings.db_path)) as db:
        [(rows,)] = db.execute(f"SELECT COUNT(*) FROM {table}").fetchall()  # noqa: S608
        return int(rows)
