"""Every application reaches exactly the bank's decision, whatever breaks meanwhile; every
event reaches the webhook receiver, signed, and an SSE client that reconnects misses none.

Fast by default (a few hundred applications in all). The long variant is the
same tests with more applications per scenario, e.g.
``LENDO_CHAOS_APPLICATIONS=2000 .venv/bin/pytest tests/system/chaos``; see
docs/reliability.md.
"""

import os
from pathlib import Path

import pytest
from redis.asyncio import Redis

from lendo_local.redis_server import EmbeddedRedis

from .harness import Cluster, Report, run_scenario
from .scenarios import SCENARIOS, Scenario

APPLICATIONS = int(os.environ.get("LENDO_CHAOS_APPLICATIONS", "120"))
"""Applications created per scenario."""
RATE = float(os.environ.get("LENDO_CHAOS_RATE", "40"))
"""Creates per second: the load, and so the faults, last APPLICATIONS / RATE seconds."""
DEADLINE = 30 + 2 * APPLICATIONS / RATE
"""Longest wait for every application to be final once the load is done."""


@pytest.mark.timeout(60 + 2 * DEADLINE)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.name.split()[0])
async def test_every_application_reaches_the_bank_decision(
    scenario: Scenario,
    tmp_path: Path,
    redis_url: str,
    stream_prefix: str,
    redis: Redis,
    chaos_reports: list[Report],
) -> None:
    if scenario.own_redis:
        with EmbeddedRedis() as server:
            report, codes = await _run(scenario, tmp_path, server.url, stream_prefix, server)
    else:
        report, codes = await _run(scenario, tmp_path, redis_url, stream_prefix, None)
    chaos_reports.append(report)

    assert report.applications == APPLICATIONS
    assert (report.lost, report.wrong) == (0, 0)
    assert report.push is not None
    push = report.push
    assert (push.undelivered, push.bad_signatures) == (0, 0)
    assert (push.sse_missed, push.sse_repeated) == (0, 0)
    # Whatever survived the chaos stops cleanly on SIGTERM.
    assert set(codes.values()) == {0}


async def _run(
    scenario: Scenario,
    workdir: Path,
    redis_url: str,
    prefix: str,
    server: EmbeddedRedis | None,
) -> tuple[Report, dict[str, int | None]]:
    cluster = Cluster(
        workdir,
        redis_url,
        prefix,
        pollers=scenario.pollers,
        api_env=scenario.api_env,
        redis_server=server,
    )
    try:
        await cluster.start()
        report = await run_scenario(
            scenario.name,
            cluster,
            scenario.chaos,
            applications=APPLICATIONS,
            rate=RATE,
            deadline=DEADLINE,
        )
        await cluster.up()
    finally:
        codes = cluster.stop()
        await cluster.receiver.stop()
    return report, codes
