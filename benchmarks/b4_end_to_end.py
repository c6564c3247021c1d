"""Benchmarks 4 and 5: applications per second from create to final status, 1 and 2 pollers.

``python -m benchmarks.b4_end_to_end [--seconds 20] [--rates 250,500,1000]``
runs Redis, the simulator, the API and the pollers on this machine, every
timing a hundred times faster (:func:`lendo_local.system.scaled_timings`:
decisions in 50–200 ms, polls every ~10 ms). For each rate in turn, with a
fresh system, wrk offers creates at that fixed rate for ``seconds``; the
database is sampled after a warm-up for how many became final and how the
pending backlog moved. wrk's
load is closed (each connection waits for its answer, then a fixed pause),
so the rate created is a little below the rate offered, and falls when the
API slows: the created rate is the one reported. A rate is sustained when as
many applications become final as are created (within 5%) and the backlog
does not grow. The rates stop at the
first one not sustained. The baseline is the API alone taking creates as
fast as it can, in the same run. During the first unsustained rate of one
poller (else the last), py-spy samples the API and the poller, and each
process's CPU time is read from /proc. The simulator's counters give the bank
requests per application finished in the window: a poller short of CPU polls
late and skips the poll times it missed, so it spends fewer requests (and
less CPU) per application than the schedule does, at the cost of freshness.
Staleness, the delay from the bank's decision (the simulator's
``/_sim/decision_times``) to the API's stored final status, of the
applications finished in the window, shows that cost: the schedule keeps it
within one poll interval (~10 ms) plus the pipeline's few milliseconds.
"""

import argparse
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.support.baseline import cpu_seconds
from benchmarks.support.clients import (
    Database,
    percentile,
    sim_control,
    status_counts,
    stored_at,
)
from benchmarks.support.load import Load, paced, post_json, require_wrk, run_wrk
from benchmarks.support.profiles import Profile
from benchmarks.support.report import table, verdict, write_section
from lendo_local.processes import Service, wait_for_http
from lendo_local.system import LocalSystem, running_system

TIME_SCALE = 100.0
ENV = {
    "LENDO_LOG_LEVEL": "WARNING",
    # Unscaled as before the shared scale: scaled, overload republishes, re-claims and times out.
    "LENDO_RECONCILE_INTERVAL": "5",
    "LENDO_REPUBLISH_AFTER": "120",
    "LENDO_CLAIM_IDLE": "60",
    "LENDO_CLAIM_INTERVAL": "10",
    "LENDO_BANK_TIMEOUT": "5",
    "LENDO_BANK_CONNECT_TIMEOUT": "2",
}
BODY = json.dumps({"first_name": "Ada", "last_name": "Lovelace"})
CONNECTIONS = 64
WARM_UP = 3.0
PROCESSES = ("lendo-api", "lendo-poller", "lendo-bank-sim", "redis")

FreshDatabase = Callable[[], AbstractContextManager[str | None]]
"""A new PostgreSQL database's URL for one system, or None for the system's own SQLite file."""


@contextmanager
def on_sqlite() -> Iterator[None]:
    yield None


@dataclass(frozen=True)
class Run:
    pollers: int
    offered: float
    created: float
    final: float
    growth: float
    """Change of the pending backlog per second."""
    cpu: dict[str, float]
    """Share of one core each process used during the window."""
    bank_requests: float
    """Bank requests served in the window per application finished in it."""
    staleness: tuple[float, float]
    """Decision to stored status of those applications, p50 and p99, in seconds."""

    @property
    def sustained(self) -> bool:
        return self.final >= 0.95 * self.created and self.growth <= max(5.0, 0.02 * self.created)


def main() -> None:
    measure(__doc__, "b4_end_to_end", "4–5. End to end, 1 and 2 pollers", on_sqlite, "")


def measure(doc: str | None, section: str, title: str, fresh: FreshDatabase, store: str) -> None:
    """Run the rates on the store ``fresh`` gives each system; write ``section``."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each rate")
    parser.add_argument("--rates", default="250,500,1000", help="offered creates per second")
    args = parser.parse_args()
    rates = [float(rate) for rate in args.rates.split(",")]
    require_wrk()
    # As in production, INFO logs and real-time timings: the API alone, at full speed.
    with running_system() as system, fresh() as url:
        api = _start_api(system, url).base_url
        baseline = run_wrk(f"{api}/api/applications", script=post_json(BODY), seconds=5)
    results: dict[int, list[Run]] = {}
    profiles: dict[str, str] = {}
    for pollers in (1, 2):
        results[pollers] = []
        for number, rate in enumerate(rates):
            last = number == len(rates) - 1
            run, summary = _run(pollers, rate, args.seconds, fresh, profile=pollers == 1)
            results[pollers].append(run)
            if pollers == 1 and (not run.sustained or last):
                profiles = summary
            if not run.sustained:
                break
    best = {pollers: _best(runs) for pollers, runs in results.items()}
    rows = [
        ["API alone, creates at full speed (baseline)", "—", f"{baseline.rate:,.0f}"] + ["—"] * 7
    ]
    for runs in results.values():
        rows += [
            [
                f"{run.pollers} poller(s)",
                f"{run.offered:,.0f}",
                f"{run.created:,.0f}",
                f"{run.final:,.0f}",
                f"{run.growth:+,.0f}",
                f"{run.bank_requests:.1f}",
                " / ".join(f"{seconds * 1000:,.0f}" for seconds in run.staleness),
                "yes" if run.sustained else "no",
                " ".join(
                    f"{name.removeprefix('lendo-')} {share:.0%}" for name, share in run.cpu.items()
                ),
                verdict(run.sustained and run.final >= 1000),
            ]
            for run in runs
        ]
    ratio = best[2] / best[1] if best[1] else float("nan")
    body = (
        f"{store}wrk offers creates at a fixed rate ({CONNECTIONS} connections, each waiting "
        f"between requests) for {args.seconds:g} s per rate, a fresh system each time; finals and "
        f"backlog sampled after {WARM_UP:g} s of warm-up; CPU = share of one core per process "
        "over the same window (2 cores in all, wrk included); bank req/app = requests the "
        "simulator served in the window per application finished in it (the schedule's "
        "is ~9; fewer means polls came late); staleness = the bank's decision to our "
        "stored status for the applications finished in the window (the schedule keeps it "
        "within its ~10 ms interval plus the pipeline's few ms). Target: ≥ 1,000 "
        "applications/s reaching final status, with no growth of the pending backlog.\n\n"
        + table(
            [
                "system",
                "offered/s",
                "created/s",
                "final/s",
                "pending growth/s",
                "bank req/app",
                "staleness p50 / p99 ms",
                "sustained",
                "CPU",
                "target",
            ],
            rows,
        )
        + f"\nHighest created rate sustained: {best[1]:,.0f}/s with 1 poller, "
        f"{best[2]:,.0f}/s with 2 (scale-out ratio {ratio:.2f}).\n\n"
        "Where the time goes (1 poller, at its first unsustained rate, py-spy, share of "
        "samples with the function on the stack):\n\n"
        + "".join(f"- {name}: {summary}\n" for name, summary in profiles.items())
    )
    write_section(section, title, body)


def _best(runs: list[Run]) -> float:
    sustained = [run.created for run in runs if run.sustained]
    return max(sustained, default=0.0)


def _start_api(system: LocalSystem, url: str | None) -> Service:
    """The API on the system's SQLite file, or on the PostgreSQL database at ``url``."""
    service = system.api({} if url is None else {"LENDO_DATABASE_URL": url}, wait=False)
    # Ready once migrated and connected: /readyz, not /healthz.
    wait_for_http(f"{service.base_url}/readyz", timeout=60, service=service)
    return service


def _run(
    pollers: int, rate: float, seconds: float, fresh: FreshDatabase, *, profile: bool
) -> tuple[Run, dict[str, str]]:
    with running_system(time_scale=TIME_SCALE, env=ENV) as system, fresh() as url:
        database: Database = system.db_path if url is None else url
        bank = system.bank_sim("--log-level", "WARNING").base_url
        api = _start_api(system, url).base_url
        for number in range(pollers):
            system.poller(f"e2e-{number}")
        script = paced(post_json(BODY), per_second=rate, connections=CONNECTIONS)
        with ThreadPoolExecutor(1) as pool:
            load = pool.submit(
                run_wrk,
                f"{api}/api/applications",
                script=script,
                connections=CONNECTIONS,
                seconds=seconds,
            )
            time.sleep(WARM_UP)
            window = seconds - WARM_UP - 1
            spies = (
                [
                    (name, Profile(system.pid(name), window, system.workdir / f"{name}.profile"))
                    for name in ("lendo-api", "lendo-poller")
                ]
                if profile
                else []
            )
            pids = _pids(system)
            cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            start = status_counts(database)
            requests_before = _bank_requests(bank)
            began, began_wall = time.monotonic(), time.time()
            time.sleep(window)
            end = status_counts(database)
            elapsed = time.monotonic() - began
            requests = _bank_requests(bank) - requests_before
            cpu = {
                name: (cpu_seconds(pid) - cpu_before[name]) / elapsed for name, pid in pids.items()
            }
            # After the CPU reading: the simulator rendering every decision time is not load.
            staleness = _staleness(bank, database, since=began_wall)
            created: Load = load.result()
        summaries = {name.removeprefix("lendo-"): spy.summary() for name, spy in spies}
    run = Run(
        pollers=pollers,
        offered=rate,
        created=created.rate,
        final=(end[1] - start[1]) / elapsed,
        growth=(end[0] - start[0]) / elapsed,
        cpu=cpu,
        bank_requests=requests / max(end[1] - start[1], 1),
        staleness=staleness,
    )
    print(run, flush=True)
    return run, summaries


def _pids(system: LocalSystem) -> dict[str, int]:
    """The processes sharing the machine: one of each (the first poller), and Redis."""
    pids = {s.name: s.process.pid for s in reversed(system.services) if s.process is not None}
    redis = _redis_pid()
    if redis is not None:
        pids["redis"] = redis
    return {name: pids[name] for name in PROCESSES if name in pids}


def _redis_pid() -> int | None:
    """The embedded redis-server started by this process, if /proc shows it."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat.split("(", 1)[1].split(")", 1)[0]
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if name.startswith("redis-server") and parent == me:
            return int(entry.name)
    return None


def _bank_requests(bank: str) -> int:
    """Bank requests the simulator has served so far: submissions and job lookups."""
    stats = sim_control(bank, "stats")
    return int(stats["submissions"]) + int(stats["duplicate_submissions"]) + int(stats["polls"])


def _staleness(bank: str, database: Database, *, since: float) -> tuple[float, float]:
    """p50 and p99 of decision to stored status, for applications stored final ``since``."""
    decided: dict[str, float] = sim_control(bank, "decision_times")
    delays = [
        moment - decided[id]
        for id, moment in stored_at(database).items()
        if moment >= since and id in decided
    ]
    if not delays:
        return (float("nan"), float("nan"))
    return (percentile(delays, 0.5), percentile(delays, 0.99))


if __name__ == "__main__":
    main()
