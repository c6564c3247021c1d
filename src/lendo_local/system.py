"""The one way to start the system on one machine: Redis, the bank simulator, APIs and pollers.

``lendo-local`` runs it in real time; the tests, the chaos suite and the
benchmarks run the same processes with a time scale (:func:`scaled_timings`),
several pollers, or several APIs. Every process is a real child process with
its log in the system's working directory.
"""

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

from pydantic_settings import BaseSettings

from lendo_api.settings import ApiSettings
from lendo_banksim.config import SimConfig
from lendo_local.processes import Service
from lendo_local.redis_server import EmbeddedRedis, free_port
from lendo_poller.settings import PollerSettings

_SCALED: tuple[tuple[type[BaseSettings], str, float], ...] = (
    # (settings, field, floor): a timing never goes below what a loaded 2-core
    # machine needs for a round trip, a process switch or a blocking read.
    (PollerSettings, "first_poll_delay", 0.0),
    (PollerSettings, "poll_interval", 0.0),
    (PollerSettings, "retry_initial", 0.0),
    (PollerSettings, "retry_max", 0.3),
    (PollerSettings, "read_block", 0.1),
    (PollerSettings, "bank_timeout", 0.3),
    (PollerSettings, "bank_connect_timeout", 0.3),
    (PollerSettings, "claim_idle", 2.0),
    (PollerSettings, "claim_interval", 0.5),
    (PollerSettings, "heartbeat_interval", 0.2),
    (PollerSettings, "heartbeat_ttl", 1.0),
    (PollerSettings, "shutdown_grace", 1.0),
    (ApiSettings, "update_block", 0.1),
    (ApiSettings, "reconcile_interval", 0.5),
    (ApiSettings, "republish_after", 1.0),
    (ApiSettings, "redis_check_interval", 0.1),
    (ApiSettings, "publish_timeout", 0.5),
    (ApiSettings, "redis_timeout", 1.0),
    (ApiSettings, "trim_interval", 0.5),
    (ApiSettings, "update_claim_idle", 2.0),
    (ApiSettings, "publish_claim", 1.0),
    (ApiSettings, "webhook_poll_interval", 0.05),
    (ApiSettings, "webhook_timeout", 1.0),
    (ApiSettings, "webhook_claim", 2.5),
)
_RETRY_FLOOR = 0.05
"""The shortest scaled delay before a webhook retry."""


def scaled_timings(scale: float) -> dict[str, str]:
    """The environment that runs every timing of the pipeline ``scale`` times faster.

    Each default is divided by ``scale``, down to its floor; with ``scale``
    1, the defaults stand and nothing is set.
    """
    if scale == 1:
        return {}
    timings = {}
    for settings, field, floor in _SCALED:
        default = settings.model_fields[field].default
        timings[f"LENDO_{field.upper()}"] = f"{max(floor, default / scale):g}"
    timings["LENDO_WEBHOOK_RETRY_SCHEDULE"] = scaled_retry_schedule(scale)
    return timings


def scaled_retry_schedule(scale: float) -> str:
    """``LENDO_WEBHOOK_RETRY_SCHEDULE``: the default retry delays ``scale`` times shorter."""
    schedule = ApiSettings.model_fields["webhook_retry_schedule"].default
    return ",".join(f"{max(_RETRY_FLOOR, delay / scale):g}" for delay in schedule)


def decision_window(scale: float) -> tuple[float, float]:
    """The simulator's decision window (5–20 s by default), ``scale`` times shorter."""
    defaults = SimConfig()
    return defaults.min_delay / scale, defaults.max_delay / scale


class LocalSystem:
    """Processes of one system on one Redis, each logging to a file in ``workdir``.

    Every process started here gets the system's environment: its Redis, its
    key prefix, its database file, the bank (once a simulator is started, or
    as configured) and the timings of its time scale. :meth:`stop` ends them
    all, the last started first.
    """

    def __init__(
        self,
        workdir: Path,
        redis_url: str,
        *,
        time_scale: float = 1.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.redis_url = redis_url
        self.time_scale = time_scale
        self.services: list[Service] = []
        self._env = {
            "LENDO_REDIS_URL": redis_url,
            "LENDO_DB_PATH": str(workdir / "lendo.sqlite3"),
            **scaled_timings(time_scale),
            **(env or {}),
        }

    @property
    def db_path(self) -> Path:
        return Path(self._env["LENDO_DB_PATH"])

    @property
    def bank_url(self) -> str | None:
        return self._env.get("LENDO_BANK_URL")

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a process of this system, with ``extra`` on top."""
        return {**self._env, **(extra or {})}

    def bank_sim(
        self, *args: str, port: int | None = None, log: str = "lendo-bank-sim", wait: bool = True
    ) -> Service:
        """Start the simulator, deciding within the scaled window unless ``args`` say otherwise.

        The bank of every process started after it.
        """
        port = port or free_port()
        low, high = decision_window(self.time_scale)
        window = ["--min-delay", f"{low:g}", "--max-delay", f"{high:g}"]
        service = self.start(
            "lendo-bank-sim",
            ["--port", str(port), *window, *args],
            url=f"http://127.0.0.1:{port}",
            ready_path="/_sim/stats",
            log=log,
        )
        self._env["LENDO_BANK_URL"] = service.base_url
        if wait:
            service.wait_until_ready()
        return service

    def api(
        self,
        env: Mapping[str, str] | None = None,
        *,
        port: int | None = None,
        log: str = "lendo-api",
        wait: bool = True,
    ) -> Service:
        """Start ``lendo-api`` (on a free port unless given); ready once it answers /healthz."""
        port = port or free_port()
        service = self.start(
            "lendo-api",
            [],
            {"LENDO_PORT": str(port), **(env or {})},
            url=f"http://127.0.0.1:{port}",
            ready_path="/healthz",
            log=log,
        )
        if wait:
            service.wait_until_ready()
        return service

    def poller(
        self,
        consumer: str,
        env: Mapping[str, str] | None = None,
        *,
        log: str | None = None,
        wait: bool = True,
    ) -> Service:
        """Start ``lendo-poller`` as ``consumer``; its health and metrics on a free port."""
        port = free_port()
        service = self.start(
            "lendo-poller",
            [],
            {"LENDO_CONSUMER_NAME": consumer, "LENDO_METRICS_PORT": str(port), **(env or {})},
            url=f"http://127.0.0.1:{port}",
            ready_path="/healthz",
            log=log or consumer,
        )
        if wait:
            service.wait_until_ready()
        return service

    def start(
        self,
        name: str,
        args: list[str],
        env: Mapping[str, str] | None = None,
        *,
        url: str | None = None,
        ready_path: str | None = None,
        log: str | None = None,
    ) -> Service:
        """Start one of our console scripts with this system's environment."""
        service = Service(
            name,
            args,
            self.env(env),
            self.workdir / f"{log or name}.log",
            url=url,
            ready_path=ready_path,
        )
        self.services.append(service.start())
        return service

    def stop(self) -> dict[str, int | None]:
        """SIGTERM every process still running, the last started first; their exit codes by log."""
        codes: dict[str, int | None] = {}
        for service in reversed(self.services):
            if service.running:
                codes[service.label] = service.stop()
        return codes

    def pid(self, name: str) -> int:
        """Process id of the first process started as ``name``."""
        process = next(s.process for s in self.services if s.name == name)
        assert process is not None
        return process.pid


@contextmanager
def running_system(
    workdir: Path | None = None,
    redis_url: str | None = None,
    *,
    time_scale: float = 1.0,
    env: Mapping[str, str] | None = None,
) -> Iterator[LocalSystem]:
    """A :class:`LocalSystem` whose processes all stop when the block ends.

    Without ``redis_url`` it runs its own Redis (the embedded one, keeping
    nothing); without ``workdir``, in a temporary directory removed at the end.
    """
    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lendo-")))
        workdir.mkdir(parents=True, exist_ok=True)
        if redis_url is None:
            redis_url = stack.enter_context(EmbeddedRedis()).url
        system = LocalSystem(workdir, redis_url, time_scale=time_scale, env=env)
        stack.callback(system.stop)
        yield system
