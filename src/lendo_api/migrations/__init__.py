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
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from yoyo import get_backend, read_migrations
from yoyo.backends import DatabaseBackend

POSTGRES_LOCK = 0x6C656E646F
"""The advisory lock key that serialises migrations on one PostgreSQL database ("lendo")."""


def migrate_sqlite(path: Path) -> None:
    """Bring the SQLite file at ``path`` (created if missing) to the newest schema."""
    lock = path.with_name(f"{path.name}-migrations.lock")
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with get_backend(f"sqlite:///{path}") as backend:
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


def _apply(backend: DatabaseBackend, store: str) -> None:
    """Apply what has not run yet; the caller holds the lock that keeps others out."""
    backend.break_lock()
    migrations = read_migrations(f"package:lendo_api.migrations:{store}")
    with backend.lock():
        backend.apply_migrations(backend.to_apply(migrations))


def _psycopg_url(url: str) -> str:
    """``postgresql://...`` as yoyo names its psycopg 3 backend."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql+psycopg"))
