"""What tests of every group share beyond fixtures."""

import asyncio

from aiohttp import web

from lendo_api.app_keys import RECONCILER, REDIS_LOSS_WATCH


async def started_up(app: web.Application) -> None:
    """Wait for the API's first outbox sweep and its first look for a Redis data loss."""
    async with asyncio.timeout(10):
        # Counters, not events, are what the app keeps of its rounds.
        while app[RECONCILER].rounds == 0 or app[REDIS_LOSS_WATCH].looks == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
