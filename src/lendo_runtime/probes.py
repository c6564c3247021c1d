"""Readiness, shared by both processes: named checks, each bounded by a short timeout.

A probe is asked every few seconds and must answer before the orchestrator's
own timeout (3 s in our manifests), so every check gets :data:`CHECK_TIMEOUT`
and they run at once. A check that raises, times out or returns False fails,
and the answer names every check that failed, so whoever reads it knows
which dependency to look at.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from redis.asyncio import Redis

Check = Callable[[], Awaitable[bool]]

CHECK_TIMEOUT = 1.0
"""Seconds a check may take; well under a probe's timeout."""

PROBLEM_JSON = "application/problem+json"


async def readiness(checks: Mapping[str, Check]) -> web.Response:
    """200 ``{"status": "ok"}`` if every check passes, else a 503 problem naming the failures."""
    results = await asyncio.gather(*(_passes(check) for check in checks.values()))
    failed = [name for name, passed in zip(checks, results, strict=True) if not passed]
    if not failed:
        return web.json_response({"status": "ok"})
    return web.json_response(
        {
            "type": "about:blank",
            "title": "Service Unavailable",
            "status": 503,
            "detail": f"Not ready: {', '.join(failed)} failed.",
        },
        status=503,
        content_type=PROBLEM_JSON,
    )


def redis_answers(redis: "Redis") -> Check:
    """A check that Redis answers PING."""

    async def ping() -> bool:
        return bool(await redis.ping())

    return ping


def task_running(task: "asyncio.Task[None]") -> Check:
    """A check that ``task`` has not ended (returned or crashed)."""

    async def running() -> bool:
        return not task.done()

    return running


async def _passes(check: Check) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return await check()
    except Exception:
        return False
