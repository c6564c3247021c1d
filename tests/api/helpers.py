"""What the API tests share: how many rows the API's database holds."""

import sqlite3
from contextlib import closing

from lendo_api.settings import ApiSettings


def count(settings: ApiSettings, table: str = "applications") -> int:
    """Rows of ``table`` in the database of the API with these settings."""
    with closing(sqlite3.connect(settings.db_path)) as db:
        [(rows,)] = db.execute(f"SELECT COUNT(*) FROM {table}").fetchall()  # noqa: S608
        return int(rows)
