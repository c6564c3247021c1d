"""Every command the deployment files run from our image is a console script we ship."""

import json
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def project_scripts() -> set[str]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return set(tomllib.load(file)["project"]["scripts"])


def containerfile_commands() -> set[str]:
    text = (ROOT / "Containerfile").read_text()
    commands = re.findall(r"^CMD (\[.*\])$", text, flags=re.MULTILINE)
    return {json.loads(command)[0] for command in commands}


def compose_commands() -> set[str]:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    return {s["command"][0] for s in services.values() if "build" in s}


def kubernetes_commands() -> set[str]:
    commands: set[str] = set()
    for path in (ROOT / "deploy" / "k8s").glob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text()):
            template = (document or {}).get("spec", {}).get("template", {})
            for container in template.get("spec", {}).get("containers", []):
                if container["image"].startswith("lendo:"):
                    commands.add(container["command"][0])
    return commands


def test_commands_are_console_scripts() -> None:
    scripts = project_scripts()
    for where, used in {
        "Containerfile": containerfile_commands(),
        "compose.yaml": compose_commands(),
        "deploy/k8s": kubernetes_commands(),
    }.items():
        assert used <= scripts, f"{where} runs {used - scripts}, not in [project.scripts]"


def test_api_and_poller_run_everywhere() -> None:
    assert containerfile_commands() == {"lendo-api"}
    assert compose_commands() == {"lendo-api", "lendo-poller", "lendo-bank-sim"}
    assert kubernetes_commands() == {"lendo-api", "lendo-poller"}
