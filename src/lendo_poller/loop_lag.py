"""How late the event loop runs: the stalls every actor of the process shares.

One process holds tens of thousands of actors on one event loop; anything
that holds the loop (a long synchronous step, a huge reply to parse, garbage
collection of many objects) delays every actor's poll and every heartbeat at
once. A timer that should fire every ``period`` measures it: how much later
than asked it fires is the loop's lag at that moment.
"""

import asyncio
from collections.abc import Callable

PERIOD = 0.05
"""Seconds between measurements: fine enough to catch a stall of 100 ms."""


async def watch_loop_lag(observe: Callable[[float], None], period: float = PERIOD) -> None:
    """Until cancelled, pass ``observe`` each timer's lateness in seconds."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(period)
        observe(max(0.0, loop.time() - started - period))
