"""Benchmark 4's budget: the CPU one bank request costs the poller and the simulator.

``python -m benchmarks.b4a_bank_cost [--requests 20000] [--concurrency 64]``
starts the hello-world server and the simulator (deciding after 600 s, so
every poll answers "pending", as almost all polls do), and from this process,
on uvloop as the poller is, sends ``requests`` of each kind, ``concurrency``
at a time:

- the baseline: a plain ``aiohttp.ClientSession`` GET to hello-world, the
  least an aiohttp client and server spend on a request;
- the poller's :class:`~lendo_poller.bank.BankClient` submitting
  applications, then polling their jobs, against the simulator, with its
  requests timed into :class:`~lendo_poller.metrics.PollerMetrics` as
  ``lendo-poller`` wires them, since the poller pays for that on every request.

CPU per request is measured on both sides (this process's CPU time, the
server's from ``/proc``). Multiplied by the bank requests an application
costs under the default poll schedule (computed from the poller's and the
simulator's defaults, as benchmark 3 measures it), it gives the CPU the bank
traffic alone takes per application end to end, hence the most applications
a second that 2 cores could finish if they did nothing else.
"""

import argparse
import asyncio
import math
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import uvloop

from benchmarks.support.baseline import cpu_seconds, hello_world
from benchmarks.support.report import table, write_section
from lendo_banksim.config import SimConfig
from lendo_local.system import running_system
from lendo_poller.bank import BankClient
from lendo_poller.metrics import PollerMetrics
from lendo_poller.settings import PollerSettings
from lendo_streams import SubmissionMessage

WINDOW = "600"
"""Seconds the simulator takes to decide: longer than the run, so every poll is pending."""
WARM_UP = 1_000


@dataclass(frozen=True)
class Cost:
    """CPU per request on each side, and the rate reached."""

    rate: float
    client_us: float
    server_us: float

    @property
    def total_us(self) -> float:
        return self.client_us + self.server_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000, help="requests of each kind")
    parser.add_argument("--concurrency", type=int, default=64, help="requests at once")
    args = parser.parse_args()
    with running_system() as system, hello_world(system.workdir) as hello:
        bank_url = system.bank_sim("--min-delay", WINDOW, "--max-delay", WINDOW).base_url
        costs = uvloop.run(
            _measure(
                hello.url,
                hello.pid,
                bank_url,
                system.pid("lendo-bank-sim"),
                args.requests,
                args.concurrency,
            )
        )
    per_app = requests_per_application(PollerSettings(), SimConfig())
    polls = per_app - 1
    baseline = costs["baseline"]
    submit, poll = costs["submit"], costs["poll"]
    app_us = submit.total_us + polls * poll.total_us
    cores = os.cpu_count() or 1
    rows = [
        _row("plain aiohttp GET of hello-world (baseline)", baseline, baseline),
        _row("BankClient.submit → simulator", submit, baseline),
        _row("BankClient.job_status → simulator (pending)", poll, baseline),
    ]
    body = (
        f"{args.requests:,} requests of each kind, {args.concurrency} at a time, from one "
        "process on uvloop (the client side) to one server process; CPU per request on each "
        "side. × baseline: the baseline's CPU per request over this one's, both sides "
        "together.\n\n"
        + table(["requests", "req/s", "client CPU µs/req", "server CPU µs/req", "× baseline"], rows)
        + f"\nPer application, under the default schedule (first poll "
        f"{PollerSettings().first_poll_delay:g} s, then every "
        f"{PollerSettings().poll_interval:g} s; decisions uniform in "
        f"{SimConfig().min_delay:g}–{SimConfig().max_delay:g} s): 1 submission + "
        f"{polls:.2f} polls = {per_app:.2f} bank requests, "
        f"**{app_us / 1000:.2f} ms of CPU** between poller and simulator. On {cores} cores "
        f"doing nothing else, that alone caps the end-to-end rate at "
        f"**{cores * 1e6 / app_us:,.0f} applications/s**, before the API's create, Redis "
        "and the update consumer take their share.\n"
    )
    write_section("b4a_bank_cost", "4a. What a bank request costs", body)


def requests_per_application(poller: PollerSettings, bank: SimConfig) -> float:
    """Bank requests an application costs on average: one submission and its polls.

    A decision at ``d`` seconds is seen by the first poll at or after it; polls
    come at ``first``, ``first + interval``, ...; ``d`` is uniform over the window.
    """
    first, interval = poller.first_poll_delay, poller.poll_interval
    steps = 100_000
    total = 0.0
    for step in range(steps):
        decided = bank.min_delay + (bank.max_delay - bank.min_delay) * (step + 0.5) / steps
        total += 1 + max(0, math.ceil((decided - first) / interval))
    return 1 + total / steps


async def _measure(
    hello_url: str, hello_pid: int, bank_url: str, bank_pid: int, requests: int, concurrency: int
) -> dict[str, Cost]:
    ids = [uuid.uuid4() for _ in range(requests)]
    costs: dict[str, Cost] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def hello(_: uuid.UUID) -> None:
            async with session.get(hello_url) as response:
                await response.read()

        await _run(hello, ids[:WARM_UP], concurrency)
        costs["baseline"] = await _cost(hello, ids, concurrency, hello_pid)

    settings = PollerSettings(bank_url=bank_url, bank_max_connections=concurrency)
    metrics = PollerMetrics()
    bank = BankClient.from_settings(settings, on_request=metrics.bank_request_timed)
    try:

        async def submit(application_id: uuid.UUID) -> None:
            message = SubmissionMessage(id=application_id, first_name="A", last_name="B")
            await bank.submit(message)

        async def poll(application_id: uuid.UUID) -> None:
            await bank.job_status(application_id)

        warm = [uuid.uuid4() for _ in range(WARM_UP)]
        await _run(submit, warm, concurrency)
        await _run(poll, warm, concurrency)
        costs["submit"] = await _cost(submit, ids, concurrency, bank_pid)
        costs["poll"] = await _cost(poll, ids, concurrency, bank_pid)
    finally:
        await bank.close()
    return costs


async def _cost(
    call: Callable[[uuid.UUID], Awaitable[None]],
    ids: list[uuid.UUID],
    concurrency: int,
    server_pid: int,
) -> Cost:
    client, server, began = time.process_time(), cpu_seconds(server_pid), time.perf_counter()
    await _run(call, ids, concurrency)
    elapsed = time.perf_counter() - began
    return Cost(
        rate=len(ids) / elapsed,
        client_us=1e6 * (time.process_time() - client) / len(ids),
        server_us=1e6 * (cpu_seconds(server_pid) - server) / len(ids),
    )


async def _run(
    call: Callable[[uuid.UUID], Awaitable[None]], ids: list[uuid.UUID], concurrency: int
) -> None:
    """Call ``call`` on every id, ``concurrency`` at a time."""
    pending = iter(ids)

    async def worker() -> None:
        for application_id in pending:
            await call(application_id)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def _row(name: str, cost: Cost, baseline: Cost) -> list[str]:
    return [
        name,
        f"{cost.rate:,.0f}",
        f"{cost.client_us:.0f}",
        f"{cost.server_us:.0f}",
        f"{baseline.total_us / cost.total_us:.2f}",
    ]


if __name__ == "__main__":
    main()
