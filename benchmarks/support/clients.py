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


def pending_count(db_path: Path) -> int:
    """Pending applications in the API's database, read without disturbing the API."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        [(count,)] = db.execute("SELECT COUNT(*) FROM applications WHERE status = 'pending'")
        return int(count)


def stored_at(db_path: Path, ids: Sequence[str] | None = None) -> dict[str, float]:
    """When the API stored each final status, as ``time.time()`` timestamps.

    For the applications ``ids``, or every final one when ``ids`` is None.
    """
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT id, updated_at FROM applications WHERE status != 'pending'"
            " AND (?1 IS NULL OR id IN (SELECT value FROM json_each(?1)))",
            (None if ids is None else json.dumps(list(ids)),),
        ).fetchall()
    return {id: datetime.fromisoformat(moment).timestamp() for id, moment in rows}


def wait_until_final(db_path: Path, *, timeout: float) -> None:
    """Return once nothing is pending; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while pending_count(db_path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{pending_count(db_path)} applications still pending")
        time.sleep(0.05)


def sim_control(bank: str, path: str) -> Any:
    """One GET of the simulator's ``/_sim`` control API."""
    with urllib.request.urlopen(f"{bank}/_sim/{path}") as response:  # noqa: S310 - local sim
        return json.load(response)


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
