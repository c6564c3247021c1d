"""Cooperative stopping of background loops (the API's, the poller's heartbeat).

The loops are asked to stop instead of being cancelled: redis-py can swallow
a cancellation that lands during a blocking read (redis/redis-py#2028, seen
with XREADGROUP BLOCK on redis-py 8.1), and the loop would then run forever.
A loop that checks a :class:`StopSignal` between steps ends within one step,
and a step is bounded by the Redis socket timeout.
"""

import asyncio
import contextlib


class StopSignal:
    """Set once to ask a loop to finish its current step and return."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the signal is set meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._event.wait()
