"""Benchmarks 4 and 5 on PostgreSQL: section 4–5's runs with the API on a PostgreSQL database.

``python -m benchmarks.b4b_end_to_end_postgres [--seconds 20] [--rates 250,500,1000]``
runs exactly what ``benchmarks.b4_end_to_end`` runs (its docstring says how),
each system's API on a fresh database of the PostgreSQL server at
``LENDO_BENCH_DATABASE_URL``, else the machine's on 127.0.0.1:5432 (its own
settings, fsync on), dropped after; counts and stored times are read from
that database.
"""

from benchmarks.b4_end_to_end import measure
from benchmarks.support.postgres import SERVER, fresh_database, server_version


def main() -> None:
    measure(
        __doc__,
        "b4b_end_to_end_postgres",
        "4–5b. End to end on PostgreSQL, 1 and 2 pollers",
        fresh_database,
        f"The API on {server_version(SERVER)}, on this machine (its own settings, fsync on), "
        "a fresh database for each system; otherwise as section 4–5. ",
    )


if __name__ == "__main__":
    main()
