"""Benchmark 1b: the API on PostgreSQL beside SQLite and hello-world, one process and two.

``python -m benchmarks.b1b_api_postgres [--seconds 5]`` starts Redis, the
hello-world baseline, the API on SQLite, the API on PostgreSQL in one process
and with ``LENDO_API_WORKERS=2``, and loads each in turn with wrk as section 1
does (create, GET by id, a page of 100). PostgreSQL is the server at
``LENDO_BENCH_DATABASE_URL``, else the machine's on 127.0.0.1:5432, with its
own settings (fsync on); each API gets a fresh database on it, dropped after.
Before its loads each API takes creates for a warm-up, and on PostgreSQL its
database is then analyzed, as autovacuum keeps a table in use.
The CPU per request of two workers is theirs and their parent's together.
"""

import argparse
from pathlib import Path

import psycopg

from benchmarks.b1_api import BODY, CONNECTIONS, Measured, some_ids
from benchmarks.support.baseline import cpu_seconds, hello_world
from benchmarks.support.load import get_paths, post_json, require_wrk, run_wrk
from benchmarks.support.postgres import SERVER, backend_pids, fresh_database, server_version
from benchmarks.support.report import against_target, table, write_section
from lendo_local.processes import Service, wait_for_http
from lendo_local.system import LocalSystem, running_system

WARM_UP = 2.0
"""Seconds of creates before the measured loads."""


def start_api(system: LocalSystem, env: dict[str, str]) -> tuple[str, Service]:
    service = system.api(env, wait=False)
    # Ready once migrated and connected: /readyz, not /healthz.
    wait_for_http(f"{service.base_url}/readyz", timeout=60, service=service)
    return service.base_url, service


def process_tree(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(int(child) for child in children)]


def measure(pids: list[int], url: str, *, seconds: float, script: str = "") -> Measured:
    before = sum(cpu_seconds(pid) for pid in pids)
    load = run_wrk(url, script=script, seconds=seconds)
    spent = sum(cpu_seconds(pid) for pid in pids) - before
    return Measured(load, spent / max(load.requests, 1) * 1e6)


def measure_with_database(
    pids: list[int], url: str, database: str | None, *, seconds: float, script: str = ""
) -> tuple[Measured, float | None]:
    """The API's load and CPU, and its PostgreSQL backends' CPU per request (None on SQLite)."""
    if database is None:
        return measure(pids, url, seconds=seconds, script=script), None
    # Backends the pool opens during the load count from their start.
    before = {pid: cpu_seconds(pid) for pid in backend_pids(database)}
    measured = measure(pids, url, seconds=seconds, script=script)
    spent = sum(cpu_seconds(pid) - before.get(pid, 0.0) for pid in backend_pids(database))
    return measured, spent / max(measured.load.requests, 1) * 1e6


def api_loads(
    url: str, pids: list[int], seconds: float, database: str | None = None
) -> dict[str, tuple[Measured, float | None]]:
    """Create, then GET among existing ids, then a page of 100 pending."""
    # As a database in use: applications in it and, on PostgreSQL, the statistics
    # autovacuum keeps; a never-analyzed table gets other plans (docs/performance.md).
    run_wrk(f"{url}/api/applications", script=post_json(BODY), seconds=WARM_UP)
    if database is not None:
        with psycopg.connect(database, autocommit=True) as connection:
            connection.execute("ANALYZE")
    create = measure_with_database(
        pids, f"{url}/api/applications", database, script=post_json(BODY), seconds=seconds
    )
    ids = some_ids(url)
    paths = [f"/api/applications/{id}" for id in ids]
    get = measure_with_database(pids, f"{url}/", database, script=get_paths(paths), seconds=seconds)
    page = measure_with_database(
        pids, f"{url}/api/applications?status=pending&limit=100", database, seconds=seconds
    )
    return {"create": create, "get": get, "page": page}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each load")
    seconds = parser.parse_args().seconds
    require_wrk()
    results: dict[str, dict[str, tuple[Measured, float | None]]] = {}
    with running_system() as system, hello_world(system.workdir) as hello:
        baseline_get = measure([hello.pid], f"{hello.url}/", seconds=seconds)
        baseline_post = measure(
            [hello.pid], f"{hello.url}/", script=post_json(BODY), seconds=seconds
        )
        url, service = start_api(system, {"LENDO_STREAM_PREFIX": "sqlite:"})
        assert service.process is not None
        results["SQLite, 1 process"] = api_loads(url, [service.process.pid], seconds)
        service.stop()
        for workers in (1, 2):
            with fresh_database(SERVER) as database:
                env = {
                    "LENDO_DATABASE_URL": database,
                    "LENDO_API_WORKERS": str(workers),
                    "LENDO_STREAM_PREFIX": f"pg{workers}:",
                }
                url, service = start_api(system, env)
                assert service.process is not None
                pids = process_tree(service.process.pid)
                label = f"PostgreSQL, {workers} process{'es' if workers > 1 else ''}"
                results[label] = api_loads(url, pids, seconds, database)
                service.stop()
    rows = [
        _row("hello-world GET (baseline)", (baseline_get, None), baseline_get, 1, None),
        _row("hello-world POST (baseline)", (baseline_post, None), baseline_post, 1, None),
    ]
    for label, loads in results.items():
        processes = 2 if label.endswith("2 processes") else 1
        on_postgres = label.startswith("PostgreSQL")
        rows += [
            _row(
                f"{label}: POST /api/applications",
                loads["create"],
                baseline_post,
                processes,
                (0.2, 50.0) if on_postgres else None,
            ),
            _row(
                f"{label}: GET /api/applications/{{id}}",
                loads["get"],
                baseline_get,
                processes,
                (0.4, None) if on_postgres else None,
            ),
            _row(
                f"{label}: GET ?status=pending&limit=100",
                loads["page"],
                baseline_get,
                processes,
                None,
            ),
        ]
    body = (
        f"{CONNECTIONS} keep-alive connections, wrk (2 threads) in its own process, "
        f"{seconds:g} s per load, every server on uvloop. PostgreSQL: "
        f"{server_version(SERVER)} on this machine, its own settings (fsync on). "
        f"Each API first takes {WARM_UP:g} s of creates, and its PostgreSQL database is then "
        "analyzed, as autovacuum keeps a database in use. "
        "× per process: the rate's ratio to the baseline's, divided by the API's "
        "processes (the targets are per process); CPU µs/req: the API processes' CPU "
        "per request; DB CPU µs/req: the CPU per request of the PostgreSQL backends serving "
        "the API's database (the server's background processes not counted), which share "
        "the same 2 cores.\n\n"
        + table(
            [
                "endpoint",
                "req/s",
                "× per process",
                "CPU µs/req",
                "DB CPU µs/req",
                "× by CPU",
                "p50 ms",
                "p99 ms",
                "errors",
                "target (PostgreSQL)",
                "result",
            ],
            rows,
        )
    )
    write_section("b1b_api_postgres", "1b. API on PostgreSQL, one process and two", body)


def _row(
    name: str,
    measured_and_database: tuple[Measured, float | None],
    baseline: Measured,
    processes: int,
    target: tuple[float, float | None] | None,
) -> list[str]:
    measured, database_us = measured_and_database
    load = measured.load
    ratio = load.rate / baseline.load.rate / processes
    wanted, result = against_target(ratio, load.p99_ms, target)
    return [
        name,
        f"{load.rate:,.0f}",
        f"{ratio:.2f}",
        f"{measured.cpu_us:,.0f}",
        "—" if database_us is None else f"{database_us:,.0f}",
        f"{baseline.cpu_us / measured.cpu_us:.2f}",
        f"{load.p50_ms:.1f}",
        f"{load.p99_ms:.1f}",
        str(load.errors),
        wanted,
        result,
    ]


if __name__ == "__main__":
    main()
