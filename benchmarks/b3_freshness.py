"""Benchmark 3: how soon after the bank decides our stored status follows, and at what cost.

``python -m benchmarks.b3_freshness [--scale 1] [--applications 2000] [--rate 50]``
runs Redis, the simulator (decisions 5–20 s after submission, times ``scale``),
the API and, for each schedule in turn, a fresh poller with that schedule
(times ``scale``). Applications arrive at a steady ``rate`` per second. Real
time is the default: the target is within a few milliseconds of what a 1 s
grid gives, and a compressed run scales each poll's round trip up with the
schedule (twentyfold at ``--scale 0.05``), which is enough to miss it.

For every application it takes three clocks: when the
bank decided (the simulator's ``/_sim/decision_times``), when the poller saw
it (``decided_at`` of its update) and when the API stored it (``updated_at``).
Staleness in real time is the polling part scaled back plus the pipeline
part as measured: ``(seen - decided) / scale + (stored - seen)``; scaling
the pipeline's few milliseconds up too would overstate it twentyfold.
Requests per application count the submission and every poll the bank served.
"""

import argparse
import asyncio
from datetime import datetime
from typing import Any

import redis

from benchmarks.support.clients import (
    create_applications,
    percentile,
    sim_control,
    stored_at,
    wait_until_final,
)
from benchmarks.support.report import table, verdict, write_section
from lendo_local.system import LocalSystem, running_system
from lendo_poller.settings import PollerSettings
from lendo_streams import StreamNames, UpdateMessage, decode

CHOSEN = (
    float(PollerSettings.model_fields["first_poll_delay"].default),
    float(PollerSettings.model_fields["poll_interval"].default),
)
"""The poller's defaults (see lendo_poller.settings)."""

SCHEDULES = sorted(
    {(5.5, 0.5), (5.75, 0.75), (5.95, 0.95), (6.0, 1.0), (6.05, 1.0), (6.5, 1.5), CHOSEN},
    key=lambda schedule: (schedule[1], schedule[0]),
)
"""(first poll delay, poll interval) in real seconds. In most, the first poll comes
one interval after the earliest decision (5 s), so no decision waits longer than
one interval for it; polls keep to that grid (lendo_poller.actor.PollSchedule).
The others spend part of the 1% the p99 allows on a later first poll."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="time compression")
    parser.add_argument("--applications", type=int, default=2000, help="per schedule")
    parser.add_argument("--rate", type=float, default=50.0, help="applications created per second")
    args = parser.parse_args()
    rows = []
    # The simulator's window and every timing but the schedule measured, 1/scale times faster.
    with running_system(time_scale=1 / args.scale) as system:
        bank = system.bank_sim().base_url
        # The updates stream is read back for when the poller saw each decision: not trimmed.
        api = system.api({"LENDO_TRIM_INTERVAL": "3600"}).base_url
        for number, schedule in enumerate(SCHEDULES):
            rows.append(_measure(system, api, bank, schedule, args, number))
    chosen = rows[SCHEDULES.index(CHOSEN)]
    body = (
        "Decisions 5–20 s after submission, "
        + (f"run {1 / args.scale:g}× faster; " if args.scale != 1 else "in real time; ")
        + f"{args.applications} applications per schedule, {args.rate:g} created per second; "
        "figures scaled back to real time. Pipeline = poller's update to the API's "
        "stored status (not scaled).\n\n"
        + table(
            [
                "first poll s",
                "interval s",
                "requests/app",
                "staleness p50 s",
                "staleness p99 s",
                "pipeline p50 ms",
                "pipeline p99 ms",
            ],
            [row["cells"] for row in rows],
        )
        + f"\nChosen schedule: first poll {CHOSEN[0]:g} s, interval {CHOSEN[1]:g} s: "
        f"{chosen['requests']:.2f} requests/app (target ≤ 9: {verdict(chosen['requests'] <= 9)}), "
        f"staleness p99 {chosen['p99']:.2f} s (target ≤ 1.0 s: {verdict(chosen['p99'] <= 1.0)}).\n"
    )
    write_section("b3_freshness", "3. Freshness and cost of polling", body)


def _measure(
    system: LocalSystem,
    api: str,
    bank: str,
    schedule: tuple[float, float],
    args: argparse.Namespace,
    number: int,
) -> dict[str, Any]:
    first, interval = schedule
    scale = args.scale
    poller = system.poller(
        f"freshness-{number}",
        {
            "LENDO_FIRST_POLL_DELAY": str(first * scale),
            "LENDO_POLL_INTERVAL": str(interval * scale),
            "LENDO_READ_BLOCK": "0.1",
        },
    )
    ids = asyncio.run(create_applications(api, args.applications, per_second=args.rate))
    wait_until_final(system.db_path, timeout=60)
    poller.stop()
    decided: dict[str, float] = sim_control(bank, "decision_times")
    requests: dict[str, int] = sim_control(bank, "requests_per_application")
    stored = stored_at(system.db_path, ids)
    seen = _seen(system.redis_url, ids)
    polling = [(seen[i] - decided[i]) / scale for i in ids]
    pipeline = [stored[i] - seen[i] for i in ids]
    staleness = [p + q for p, q in zip(polling, pipeline, strict=True)]
    per_app = sum(requests[i] for i in ids) / len(ids)
    p99 = percentile(staleness, 0.99)
    return {
        "requests": per_app,
        "p99": p99,
        "cells": [
            f"{first:g}",
            f"{interval:g}",
            f"{per_app:.2f}",
            f"{percentile(staleness, 0.5):.2f}",
            f"{p99:.2f}",
            f"{percentile(pipeline, 0.5) * 1000:.1f}",
            f"{percentile(pipeline, 0.99) * 1000:.1f}",
        ],
    }


def _seen(redis_url: str, ids: list[str]) -> dict[str, float]:
    """When the poller saw each decision: ``decided_at`` of its update message."""
    wanted = set(ids)
    seen: dict[str, float] = {}
    client = redis.Redis.from_url(redis_url)
    try:
        entries: Any = client.xrange(StreamNames().updates)
        for _, fields in entries:
            update = decode(UpdateMessage, fields)
            if str(update.id) in wanted:
                seen.setdefault(str(update.id), _timestamp(update.decided_at))
    finally:
        client.close()
    return seen


def _timestamp(moment: datetime) -> float:
    return moment.timestamp()


if __name__ == "__main__":
    main()
