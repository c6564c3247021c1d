"""compose.yaml: valid per the Compose Specification, and shaped to run and to scale.

The schema is the copy of compose-spec's ``compose-spec.json`` that
check-jsonschema vendors (with its Apache-2.0 licence), so no network is needed.
"""

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OUR_IMAGE = "lendo:local"
BANK_IMAGE = "lendoab/interview-service:stable"
CONTAINER_TMP = "/tmp"  # noqa: S108 (a path inside the container, not ours)

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, and $$ for a literal $.
VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<default>[^}]*))?\}")


def interpolate(value: Any, environment: dict[str, str]) -> Any:
    """What compose does to every string before it reads the file."""
    if isinstance(value, dict):
        return {key: interpolate(item, environment) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environment) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, op, default = match["name"], match["op"], match["default"]
        assert op in {":-", "-"}, f"${{{name}}} must have a default, or `compose up` needs a .env"
        return environment.get(name, default)

    return VARIABLE.sub(substitute, value)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    resolved: dict[str, Any] = interpolate(raw, {})
    return resolved


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def test_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    # No format checker: the spec's "duration" means Go's "30s", not ISO 8601.
    validator = jsonschema.Draft202012Validator(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []
    assert "version" not in compose


def test_every_variable_has_a_default_and_the_bank_can_be_swapped(raw: dict[str, Any]) -> None:
    default = interpolate(raw, {})
    simulated = interpolate(raw, {"LENDO_BANK_URL": "http://bank-sim:8000"})
    for name in ("api", "poller"):
        assert default["services"][name]["environment"]["LENDO_BANK_URL"] == "http://bank:8000"
        assert simulated["services"][name]["environment"]["LENDO_BANK_URL"] == (
            "http://bank-sim:8000"
        )


def test_services_and_their_images(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"redis", "bank", "api", "poller", "bank-sim"}
    assert services["bank"]["image"] == BANK_IMAGE
    assert services["redis"]["image"].startswith("redis:7")
    for name in ("api", "poller", "bank-sim"):
        assert services[name]["image"] == OUR_IMAGE
        assert services[name]["build"] == {"context": ".", "dockerfile": "Containerfile"}


def test_every_service_restarts(services: dict[str, dict[str, Any]]) -> None:
    assert {name: s.get("restart") for name, s in services.items()} == dict.fromkeys(
        services, "unless-stopped"
    )


def test_poller_scales(services: dict[str, dict[str, Any]]) -> None:
    poller = services["poller"]
    assert "container_name" not in poller
    assert "ports" not in poller
    assert "LENDO_CONSUMER_NAME" not in poller["environment"], "the hostname differs per replica"
    assert poller["command"] == ["lendo-poller"]


def test_our_services_are_checked_and_stop_gracefully(
    services: dict[str, dict[str, Any]],
) -> None:
    probes = {"api": "127.0.0.1:8080/readyz", "poller": "127.0.0.1:9090/readyz"}
    for name, address in probes.items():
        service = services[name]
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"]
        assert f"urlopen('http://{address}'" in test[3]
        assert not service["healthcheck"].get("disable", False)
        assert service["stop_signal"] == "SIGTERM"
        grace = int(service["environment"]["LENDO_SHUTDOWN_GRACE"])
        assert int(service["stop_grace_period"].removesuffix("s")) > grace
        assert service["read_only"] is True
        assert CONTAINER_TMP in service["tmpfs"]


def test_start_order(services: dict[str, dict[str, Any]]) -> None:
    assert services["api"]["depends_on"] == {"redis": {"condition": "service_healthy"}}
    assert services["poller"]["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "api": {"condition": "service_healthy"},
        "bank": {"condition": "service_started"},
    }
    assert "healthcheck" not in services["bank"], "the bank documents no health endpoint"


def test_redis_keeps_its_streams(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    redis = services["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    volume, _, target = redis["volumes"][0].partition(":")
    assert target == "/data"
    assert volume in compose["volumes"]
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])


def test_api_keeps_its_database_on_a_named_volume(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    api = services["api"]
    volume, _, target = api["volumes"][0].partition(":")
    assert target == "/data", "the image's LENDO_DB_PATH is /data/lendo.sqlite3"
    assert volume in compose["volumes"]
    assert api["ports"] == ["8080:8080"]
    redis_url = api["environment"]["LENDO_REDIS_URL"]
    assert redis_url == "redis://redis:6379/0"


def test_bank_simulator_is_opt_in(services: dict[str, dict[str, Any]]) -> None:
    simulator = services["bank-sim"]
    assert simulator["profiles"] == ["bank-sim"]
    assert simulator["command"] == ["lendo-bank-sim", "--host", "0.0.0.0", "--port", "8000"]
    assert "ports" not in simulator
    assert "127.0.0.1', 8000" in simulator["healthcheck"]["test"][3]
    assert all("profiles" not in s for name, s in services.items() if name != "bank-sim")
