"""HTTP load from a separate process: ``wrk``, with a Lua script for bodies and figures.

wrk is a C load generator, so the client never competes with the server for
the Python interpreter; its Lua ``done`` hook prints the figures as JSON.
"""

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_INSTALL = "wrk is not installed: install it with `apt-get install -y wrk` (Debian/Ubuntu)."

_DONE = """
done = function(summary, latency, requests)
  io.write(string.format(
    '\\nFIGURES {"requests": %d, "seconds": %f, "errors": %d, "non2xx": %d,'
    .. ' "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Load:
    """What one wrk run measured."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def require_wrk() -> str:
    """The wrk binary; exit with how to install it when missing."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(_INSTALL)
    return path


def run_wrk(
    url: str,
    *,
    script: str = "",
    connections: int = 64,
    seconds: float = 10.0,
    threads: int = 2,
) -> Load:
    """Load ``url`` for ``seconds`` with ``connections`` keep-alive connections."""
    wrk = require_wrk()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script + _DONE)
    try:
        finished = subprocess.run(
            [
                wrk,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{round(seconds)}s",
                "--timeout",
                "10s",
                "-s",
                lua.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        Path(lua.name).unlink()
    [line] = [line for line in finished.stdout.splitlines() if line.startswith("FIGURES ")]
    figures = json.loads(line.removeprefix("FIGURES "))
    return Load(
        requests=figures["requests"],
        seconds=figures["seconds"],
        errors=figures["errors"] + figures["non2xx"],
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
    )


def post_json(body: str) -> str:
    """A wrk script that POSTs ``body`` as JSON."""
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )


def get_paths(paths: list[str]) -> str:
    """A wrk script that GETs the paths in turn, each thread from its own offset."""
    listed = ",".join(json.dumps(path) for path in paths)
    return (
        f"local paths = {{{listed}}}\n"
        "local i = math.random(#paths)\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        "  return wrk.format(nil, paths[i])\n"
        "end\n"
    )


def paced(script: str, *, per_second: float, connections: int) -> str:
    """``script``, each connection waiting between requests so all make ~``per_second``.

    wrk's ``delay`` hook: closed-loop, so the rate reached is a little below
    the one asked (each connection also waits for its answers); the caller
    reports the rate wrk measured.
    """
    wait_ms = connections / per_second * 1000
    return script + f"delay = function()\n  return {wait_ms:.3f}\nend\n"
