"""What benchmarks do to the running system from outside: create, wait, collect."""

import asyncio
import json
import sqlite3
import time
import urllib.request
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

Database = Path | str
"""The API's database, read beside it: its SQLite file, or its PostgreSQL URL."""


async def create_applications(
    api: str, count: int, *, concurrency: int = 64, per_second: float | None = None
) -> list[str]:
    """Create ``count`` applications through the API; return their ids in creation order.

    All at once (``concurrency`` requests in flight), or ``per_second`` evenly spaced.
    """
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def one(number: int) -> str:
            if per_second:
                await asyncio.sleep(number / per_second)
            body = {"first_name": f"Ada{number}", "last_name": "Lovelace"}
            async with http.post(f"{api}/api/applications", json=body) as response:
                response.raise_for_status()
                created: dict[str, Any] = await response.json()
                return str(created["id"])

        return list(await asyncio.gather(*(one(n) for n in range(count))))


def status_counts(database: Database) -> tuple[int, int]:
    """(pending, final) applications in the API's database, read without disturbing the API."""
    if isinstance(database, Path):
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            [(pending, total)] = db.execute(
                "SELECT SUM(status = 'pending'), COUNT(*) FROM applications"
            ).fetchall()
    else:
        with psycopg.connect(database) as db:
            [(pending, total)] = db.execute(
                "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FROM applications"
            ).fetchall()
    return int(pending or 0), int(total) - int(pending or 0)


def pending_count(database: Database) -> int:
    """Pending applications in the API's database."""
    return status_counts(database)[0]


def stored_at(database: Database, ids: Sequence[str] | None = None) -> dict[str, float]:
    """When the API stored each final status, as ``time.time()`` timestamps.

    For the applications ``ids``, or every final one when ``ids`` is None.
    """
    if not isinstance(database, Path):
        with psycopg.connect(database) as db:
            found = db.execute(
                "SELECT id::text, extract(epoch FROM updated_at)::float8 FROM applications"
                " WHERE status <> 'pending' AND (%(ids)s::uuid[] IS NULL OR id = ANY(%(ids)s))",
                {"ids": None if ids is None else list(ids)},
            ).fetchall()
        return dict(found)
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT id, updated_at FROM applications WHERE status != 'pending'"
            " AND (?1 IS NULL OR id IN (SELECT value FROM json_each(?1)))",
            (None if ids is None else json.dumps(list(ids)),),
        ).fetchall()
    return {id: datetime.fromisoformat(moment).timestamp() for id, moment in rows}


def wait_until_final(database: Database, *, timeout: float) -> None:
    """Return once nothing is pending; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while pending_count(database):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{pending_count(database)} applications still pending")
        time.sleep(0.05)


def sim_control(bank: str, path: str) -> Any:
    """One GET of the simulator's ``/_sim`` control API."""
    with urllib.request.urlopen(f"{bank}/_sim/{path}") as response:  # noqa: S310 - local sim
        return json.load(response)


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
