"""Serving a simulator on a TCP port, for the CLI and for in-process tests.

For example, a bank that fails half of its requests and decides within 0.2 s::

    config = SimConfig(min_delay=0.05, max_delay=0.2, fail_rate=0.5)
    async with running_bank_sim(config) as sim:
        ...  # talk to sim.url over HTTP; assert on sim.state
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web
from yarl import URL

from lendo_banksim.app import create_app
from lendo_banksim.config import SimConfig
from lendo_banksim.keys import BANK_STATE
from lendo_banksim.state import BankState

SHUTDOWN_GRACE = 1.0
"""Seconds to let in-flight requests finish on stop. Real answers are instant;
only deliberately slow ones are still running, and they are not worth waiting for."""


@dataclass(frozen=True)
class RunningBankSim:
    """A simulator that is serving: where to reach it and its state, for assertions."""

    url: str
    """Base URL without a trailing slash, e.g. ``http://127.0.0.1:40123``."""
    state: BankState


@asynccontextmanager
async def running_bank_sim(
    config: SimConfig, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningBankSim]:
    """Serve a simulator until the block exits; ``port=0`` picks a free port."""
    app = create_app(config)
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_GRACE)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_host, bound_port = runner.addresses[0][:2]
        url = str(URL.build(scheme="http", host=bound_host, port=bound_port))
        yield RunningBankSim(url=url, state=app[BANK_STATE])
    finally:
        await runner.cleanup()
