"""Versioned schema migrations of both stores, applied by yoyo-migrations at every start.

The SQL of each store is in this package, one directory per store (``sqlite/``,
``postgresql/``), one file per version; yoyo records in the database which ones
have run. Starting processes take a lock of their own around yoyo's: yoyo's is a
row in a table, which a process killed while migrating leaves behind, so that
every later start would wait for it and fail. Ours dies with its holder (a
PostgreSQL session's advisory lock; on SQLite an ``flock`` beside the file),
and under it any row of yoyo's is such a leftover, so it is removed.
"""

import fcntl
import sqlite3
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from yoyo import get_backend, read_migrations
from yoyo.backends import DatabaseBackend, SQLiteBackend
from yoyo.connections import parse_uri
from yoyo.migrations import MigrationList, default_migration_table

from lendo_runtime.logs import get_logger

log = get_logger()

POSTGRES_LOCK = 0x6C656E646F
"""The advisory lock key that serialises migrations on one PostgreSQL database ("lendo")."""


def migrate_sqlite(path: Path) -> None:
    """Bring the SQLite file at ``path`` (created if missing) to the newest schema."""
    lock = path.with_name(f"{path.name}-migrations.lock")
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        backend = _WalSqliteBackend(parse_uri(f"sqlite:///{path}"), default_migration_table)
        backend.init_database()
        with backend:
            _apply(backend, "sqlite")


def migrate_postgres(url: str) -> None:
    """Bring the PostgreSQL database at ``url`` to the newest schema; replicas take turns."""
    with get_backend(_psycopg_url(url)) as backend:
        # Session-level and in autocommit: held until released, or the connection ends.
        backend.execute(f"SELECT pg_advisory_lock({POSTGRES_LOCK})")
        try:
            _apply(backend, "postgresql")
        finally:
            backend.execute(f"SELECT pg_advisory_unlock({POSTGRES_LOCK})")


class _WalSqliteBackend(SQLiteBackend):  # type: ignore[misc]
    """yoyo's SQLite backend on the store's journal settings, so its commits cost no fsync."""

    def connect(self, dburi: object) -> sqlite3.Connection:
        connection: sqlite3.Connection = super().connect(dburi)
        # As SqliteStore.open sets them: WAL persists in the file, synchronous per connection.
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        return connection


def _apply(backend: DatabaseBackend, store: str) -> None:
    """Apply what has not run yet; the caller holds the lock that keeps others out."""
    backend.break_lock()
    with backend.lock():
        missing = backend.to_apply(_migrations(store))
        backend.apply_migrations(missing)
    if missing:
        log.info("schema_migrated", store=store, applied=[m.id for m in missing])


@cache
def _migrations(store: str) -> MigrationList:
    """The store's migrations, parsed once per process (sqlparse splits each file)."""
    return read_migrations(f"package:lendo_api.migrations:{store}")


def _psycopg_url(url: str) -> str:
    """``postgresql://...`` as yoyo names its psycopg 3 backend."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql+psycopg"))
