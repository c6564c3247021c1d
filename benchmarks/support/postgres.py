"""The PostgreSQL server benchmarks run on, and a fresh database on it for each system.

The server is ``LENDO_BENCH_DATABASE_URL``, else the machine's on
127.0.0.1:5432, with its own settings; each database is dropped after use.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

SERVER = os.environ.get("LENDO_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def fresh_database(server: str = SERVER) -> Iterator[str]:
    """The URL of a new, empty database on ``server``, dropped when the block ends."""
    name = f"lendo_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def server_version(server: str = SERVER) -> str:
    """``PostgreSQL 15.x (...)``, as the server names itself."""
    with psycopg.connect(server) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0] if row else '?'}"


def backend_pids(database: str) -> list[int]:
    """The server processes serving connections to ``database`` right now (this one's excepted)."""
    with psycopg.connect(database) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(pid) for (pid,) in rows]
