"""The live API keeps the contract its OpenAPI document states, under generated requests.

schemathesis reads the served document and sends requests generated from
it, valid ones and invalid ones, to a real ``lendo-api`` process with API
keys switched on, checking every answer against the document. A larger run
is ``benchmarks/schemathesis_run.py``.
"""

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from redis import Redis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lendo_local.processes import Service, wait_for_http
from lendo_local.redis_server import free_port

Operation = APIOperation[Any, Any, Any, Any]

API_KEY = "schemathesis-key-5b1e"
EXAMPLES_PER_OPERATION_AND_MODE = 40
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]


@pytest.fixture
def live_api(tmp_path: Path, redis_url: str) -> Iterator[str]:
    """A ``lendo-api`` process requiring :data:`API_KEY`; yields its base URL."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    port = free_port()
    env = {
        "LENDO_PORT": str(port),
        "LENDO_DB_PATH": str(tmp_path / "api.sqlite3"),
        "LENDO_REDIS_URL": redis_url,
        "LENDO_STREAM_PREFIX": prefix,
        "LENDO_API_KEYS": API_KEY,
        "LENDO_LOG_LEVEL": "WARNING",
    }
    service = Service("lendo-api", [], env, tmp_path / "api.log").start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", timeout=15, service=service)
        yield url
    finally:
        assert service.stop() == 0
        with Redis.from_url(redis_url) as redis:
            keys = list(redis.scan_iter(match=f"{prefix}*"))
            if keys:
                redis.delete(*keys)


def test_the_live_api_answers_every_generated_request_as_documented(live_api: str) -> None:
    schema = schemathesis.openapi.from_url(f"{live_api}/api/openapi.json")
    cases: Counter[str] = Counter()

    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            cases[f"{result.ok().label} {mode}"] = fuzz(result.ok(), mode, live_api)

    print(f"schemathesis: {sum(cases.values())} cases", dict(cases))
    assert {label.rsplit(" ", 1)[0] for label in cases} == {
        "POST /api/applications",
        "GET /api/applications",
        "GET /api/applications/{id}",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
    }
    assert all(cases.values())


def fuzz(operation: Operation, mode: GenerationMode, base_url: str) -> int:
    """Send ``operation`` generated requests and check every answer; return how many."""
    sent = 0

    @settings(
        max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def answers_as_documented(case: schemathesis.Case[Operation]) -> None:
        nonlocal sent
        case.call_and_validate(
            base_url=base_url,
            headers={"Authorization": f"Bearer {API_KEY}"},
            checks=CHECKS,
            timeout=10,
        )
        sent += 1

    answers_as_documented()
    return sent
