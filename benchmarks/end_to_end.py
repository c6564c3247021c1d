"""Benchmarks 4 and 5: applications per second from create to final status, 1 and 2 pollers.

``python -m benchmarks.end_to_end [--seconds 10]`` runs Redis, the simulator
(decisions in 50–200 ms: the 5–20 s window a hundred times faster), the API
and the pollers (schedule a hundred times faster too), all on this machine.
wrk creates applications as fast as the API takes them at 64 connections
for ``seconds``; the database is sampled each second for how many became
final and how many are pending. The baseline is the API alone (no poller)
taking creates in the same run. py-spy samples the API and one poller during
the one-poller run.
"""

import argparse
import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from benchmarks.clients import wait_until_final
from benchmarks.load import Load, post_json, require_wrk, run_wrk
from benchmarks.profiles import Profile
from benchmarks.report import table, verdict, write_section
from benchmarks.system import running_system

SCALED = {
    "LENDO_FIRST_POLL_DELAY": "0.06",
    "LENDO_POLL_INTERVAL": "0.01",
    "LENDO_RETRY_INITIAL": "0.01",
    "LENDO_RETRY_MAX": "0.3",
    "LENDO_READ_BLOCK": "0.1",
    "LENDO_UPDATE_BLOCK": "0.1",
}
BODY = json.dumps({"first_name": "Ada", "last_name": "Lovelace"})
WARM_UP = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load")
    seconds = parser.parse_args().seconds
    require_wrk()
    with running_system() as system:
        api = system.api()
        baseline = run_wrk(f"{api}/api/applications", script=post_json(BODY), seconds=seconds)
    runs = [_run(pollers, seconds) for pollers in (1, 2)]
    one, two = runs
    rows = [
        [
            "API alone, creates (baseline)",
            f"{baseline.rate:,.0f}",
            "—",
            "1.00",
            "—",
            "—",
        ]
    ] + [
        [
            f"{run.pollers} poller(s)",
            f"{run.created:,.0f}",
            f"{run.final:,.0f}",
            f"{run.final / baseline.rate:.2f}",
            f"{run.growth:+,.0f}",
            verdict(run.final >= 1000 and run.growth <= 0.05 * run.final),
        ]
        for run in runs
    ]
    body = (
        f"wrk creates at 64 connections for {seconds:g} s; finals and backlog sampled from "
        f"the database after {WARM_UP:g} s of warm-up. Target: ≥ 1,000 applications/s "
        "reaching final status, with no growth of the pending backlog.\n\n"
        + table(
            ["system", "created/s", "final/s", "final × baseline", "pending growth/s", "target"],
            rows,
        )
        + f"\nScale-out: 2 pollers reach {two.final / one.final:.2f}× the final/s of 1.\n\n"
        f"Where the time goes (1 poller, py-spy, share of samples with the function on the "
        f"stack):\n\n- API: {one.api_profile}\n- poller: {one.poller_profile}\n"
    )
    write_section("end_to_end", "4–5. End to end, 1 and 2 pollers", body)


@dataclass(frozen=True)
class Run:
    pollers: int
    created: float
    final: float
    growth: float
    """Change of the pending backlog per second."""
    api_profile: str
    poller_profile: str


def _run(pollers: int, seconds: float) -> Run:
    with running_system() as system:
        bank = system.bank_sim("--min-delay", "0.05", "--max-delay", "0.2")
        api = system.api()
        for number in range(pollers):
            system.poller(f"e2e-{number}", {"LENDO_BANK_URL": bank, **SCALED})
        with ThreadPoolExecutor(1) as pool:
            load = pool.submit(
                run_wrk, f"{api}/api/applications", script=post_json(BODY), seconds=seconds
            )
            time.sleep(WARM_UP)
            window = seconds - WARM_UP - 1
            profiles = [
                Profile(system.pid(name), window, system.workdir / f"{name}.profile")
                for name in ("lendo-api", "lendo-poller")
            ]
            start = _counts(system.db_path)
            began = time.monotonic()
            time.sleep(window)
            end = _counts(system.db_path)
            elapsed = time.monotonic() - began
            created: Load = load.result()
        api_profile, poller_profile = (profile.summary() for profile in profiles)
        wait_until_final(system.db_path, timeout=120)
    return Run(
        pollers=pollers,
        created=created.rate,
        final=(end[1] - start[1]) / elapsed,
        growth=(end[0] - start[0]) / elapsed,
        api_profile=api_profile,
        poller_profile=poller_profile,
    )


def _counts(db_path: Path) -> tuple[int, int]:
    """(pending, final) applications now."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        [(pending, total)] = db.execute(
            "SELECT SUM(status = 'pending'), COUNT(*) FROM applications"
        ).fetchall()
    return int(pending or 0), int(total) - int(pending or 0)


if __name__ == "__main__":
    main()
