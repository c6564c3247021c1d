"""Start and stop the system's processes: used by ``lendo-local`` and the tests."""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path


def console_script(name: str) -> str:
    """Path of one of our console scripts, installed next to this interpreter."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise RuntimeError(f"{name} is not installed next to {sys.executable}")
    return str(path)


class Service:
    """One child process of the system (``lendo-api``, ``lendo-poller``, ...).

    ``url`` is where it serves HTTP, if it does, and ``ready_path`` what answers
    2xx there once it is up. It can be started again after it ended.
    """

    def __init__(
        self,
        name: str,
        args: list[str],
        env: Mapping[str, str],
        log: Path | None = None,
        *,
        url: str | None = None,
        ready_path: str | None = None,
    ) -> None:
        self.name = name
        self.args = args
        self.env = {**os.environ, **env}
        self.log = log
        self._url = url
        self._ready_path = ready_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def label(self) -> str:
        """The name of its log file, unique within a system."""
        return self.log.stem if self.log else self.name

    @property
    def base_url(self) -> str:
        """Where it serves HTTP, e.g. ``http://127.0.0.1:40123``."""
        if self._url is None:
            raise RuntimeError(f"{self.name} serves no HTTP")
        return self._url

    def wait_until_ready(self, timeout: float = 20.0) -> None:
        """Return once it answers on its ready path; fail if it exits first."""
        wait_for_http(f"{self.base_url}{self._ready_path or '/'}", timeout, service=self)

    def start(self) -> "Service":
        output = self.log.open("ab") if self.log else None
        try:
            self.process = subprocess.Popen(
                [console_script(self.name), *self.args],
                env=self.env,
                stdout=output,
                stderr=output,
            )
        finally:
            if output:
                output.close()
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: signal.Signals) -> None:
        if self.running:
            assert self.process is not None
            self.process.send_signal(signum)

    def kill(self) -> None:
        """kill -9: no chance to clean up, as in a crash."""
        self.signal(signal.SIGKILL)
        self.wait(5)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; return the exit code."""
        if self.process is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def wait(self, timeout: float) -> int | None:
        return None if self.process is None else self.process.wait(timeout)


def wait_for_http(url: str, timeout: float = 20.0, service: Service | None = None) -> None:
    """Return once ``url`` answers 2xx; fail early if ``service`` dies meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310
                if 200 <= response.status < 300:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if service is not None and not service.running:
            raise RuntimeError(f"{service.name} exited before {url} answered")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout} s")
        time.sleep(0.05)
