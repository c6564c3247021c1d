"""A long schemathesis run against a live ``lendo-api``: on demand, not part of the suite.

The suite's ``tests/test_openapi_schemathesis.py`` sends a few hundred
generated requests; this sends thousands, through every schemathesis phase
(examples, coverage, fuzzing, stateful), with API keys switched on::

    .venv/bin/python -m benchmarks.schemathesis_run              # 1000 per operation
    .venv/bin/python -m benchmarks.schemathesis_run --max-examples 5000

It uses ``LENDO_REDIS_URL`` if set, else starts a throwaway Redis, and a
fresh database in a temporary directory. The exit status is schemathesis's:
0 when every answer matched the document.
"""

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from lendo_local.processes import Service, console_script, wait_for_http
from lendo_local.redis_server import EmbeddedRedis, free_port

API_KEY = f"schemathesis-{uuid.uuid4().hex}"
# Not negative_data_rejection: an invalid X-Request-ID is replaced, not refused, by design.
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance,ignored_auth,"
    "use_after_free,ensure_resource_availability"
)


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    configured = os.environ.get("LENDO_REDIS_URL")
    if configured:
        yield configured
    else:
        with EmbeddedRedis() as server:
            yield server.url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=1000, help="per operation")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir, redis_url() as redis:
        port = free_port()
        env = {
            "LENDO_PORT": str(port),
            "LENDO_DB_PATH": str(Path(workdir) / "api.sqlite3"),
            "LENDO_REDIS_URL": redis,
            "LENDO_STREAM_PREFIX": f"schemathesis:{uuid.uuid4().hex[:8]}:",
            "LENDO_API_KEYS": API_KEY,
            "LENDO_LOG_LEVEL": "WARNING",
        }
        service = Service("lendo-api", [], env, Path(workdir) / "api.log").start()
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_http(f"{url}/healthz", timeout=15, service=service)
            result = subprocess.run(
                [
                    console_script("st"),
                    "run",
                    f"{url}/api/openapi.json",
                    f"--header=Authorization: Bearer {API_KEY}",
                    f"--checks={CHECKS}",
                    f"--max-examples={args.max_examples}",
                    f"--seed={args.seed}",
                    "--mode=all",
                    "--phases=examples,coverage,fuzzing,stateful",
                ],
                # schemathesis keeps a cache in its working directory; keep it out of the tree.
                cwd=workdir,
                check=False,
            )
        finally:
            service.stop()
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
