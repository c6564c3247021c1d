"""deploy/k8s-postgres: the base with PostgreSQL and three API replicas, valid and as promised.

The overlay is rendered in Python as test_kubernetes renders the base (its
resources, labels, a ``$patch: delete`` and a JSON patch are all it uses), and
compared with ``kubectl kustomize`` where that is on PATH.
"""

import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from tests.deploy.test_kubernetes import (
    BASE,
    COMMON_LABELS,
    OLDEST_KUBERNETES,
    ROOT,
    Resource,
    _add_labels,
    by_identity,
    render_base,
)

OVERLAY = ROOT / "deploy" / "k8s-postgres"


def render_overlay(directory: Path) -> list[Resource]:
    """``kustomize build`` of an overlay of the base made of resources, labels and patches."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(kustomization) <= {"apiVersion", "kind", "resources", "labels", "patches"}
    [base, *files] = kustomization["resources"]
    assert (directory / base).resolve() == BASE
    rendered = render_base(BASE) + [
        document
        for name in files
        for document in yaml.safe_load_all((directory / name).read_text())
        if document
    ]
    for group in kustomization["labels"]:
        for resource in rendered:
            _add_labels(resource, group["pairs"], group["includeSelectors"])
            if resource["kind"] == "PodDisruptionBudget" and group["includeSelectors"]:
                resource["spec"]["selector"]["matchLabels"].update(group["pairs"])
    for patch in kustomization["patches"]:
        if "patch" in patch:
            deleted = yaml.safe_load(patch["patch"])
            assert deleted.pop("$patch") == "delete", "only deletions are inline"
            rendered = [r for r in rendered if not _same_object(r, deleted)]
        else:
            [target] = [r for r in rendered if _same_object(r, patch["target"])]
            for operation in yaml.safe_load((directory / patch["path"]).read_text()):
                _apply(target, operation)
    return rendered


def _same_object(resource: Resource, selector: dict[str, Any]) -> bool:
    name = selector.get("name") or selector["metadata"]["name"]
    return bool(resource["kind"] == selector["kind"] and resource["metadata"]["name"] == name)


def _apply(document: Resource, operation: dict[str, Any]) -> None:
    """One RFC 6902 ``add`` or ``replace``, the two the overlay uses."""
    *parents, last = operation["path"].lstrip("/").split("/")
    node: Any = document
    for step in parents:
        node = node[int(step)] if isinstance(node, list) else node[step]
    if operation["op"] == "add" and last == "-":
        node.append(operation["value"])
    else:
        assert operation["op"] in {"add", "replace"}, operation
        node[int(last) if isinstance(node, list) else last] = operation["value"]


@pytest.fixture(scope="module")
def rendered() -> list[Resource]:
    return render_overlay(OVERLAY)


@pytest.fixture(scope="module")
def objects(rendered: list[Resource]) -> dict[tuple[str, str], Resource]:
    return by_identity(rendered)


def test_renders_like_kustomize(rendered: list[Resource]) -> None:
    assert len(by_identity(rendered)) == len(rendered), "two objects share a kind and name"
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        result = subprocess.run(
            [kubectl, "kustomize", str(OVERLAY)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert by_identity(list(yaml.safe_load_all(result.stdout))) == by_identity(rendered)


@pytest.mark.parametrize("kubernetes", [OLDEST_KUBERNETES, kubernetes_validate.latest_version()])
def test_valid_kubernetes_objects(rendered: list[Resource], kubernetes: str) -> None:
    for resource in rendered:
        kubernetes_validate.validate(resource, kubernetes, strict=True)
    for resource in rendered:
        assert "namespace" not in resource["metadata"]
        assert COMMON_LABELS.items() <= resource["metadata"]["labels"].items()


def test_three_api_replicas_roll_one_at_a_time_on_the_database_secret(
    objects: dict[tuple[str, str], Resource],
) -> None:
    api = objects["Deployment", "lendo-api"]["spec"]
    pod = api["template"]["spec"]
    [container] = pod["containers"]

    assert api["replicas"] == 3
    assert api["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert {"secretRef": {"name": "lendo-database"}} in container["envFrom"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert [volume["name"] for volume in pod["volumes"]] == ["tmp"]
    assert ("PersistentVolumeClaim", "lendo-api-data") not in objects


def test_a_drain_leaves_two_api_replicas(objects: dict[tuple[str, str], Resource]) -> None:
    budget = objects["PodDisruptionBudget", "lendo-api"]["spec"]
    api = objects["Deployment", "lendo-api"]["spec"]

    assert budget["selector"]["matchLabels"] == api["selector"]["matchLabels"]
    assert 0 < budget["minAvailable"] < api["replicas"]


def test_postgresql_is_durable_and_reached_by_the_secrets_url(
    objects: dict[tuple[str, str], Resource],
) -> None:
    postgres = objects["StatefulSet", "lendo-postgres"]["spec"]
    [container] = postgres["template"]["spec"]["containers"]
    service = objects["Service", "lendo-postgres"]["spec"]
    secret = objects["Secret", "lendo-database"]["stringData"]
    url = urlsplit(secret["LENDO_DATABASE_URL"])

    assert container["image"].startswith("postgres:15")
    assert container["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    [claim] = postgres["volumeClaimTemplates"]
    assert {"name": claim["metadata"]["name"], "mountPath": "/var/lib/postgresql/data"} in (
        container["volumeMounts"]
    )
    assert service["clusterIP"] == "None"
    assert (url.hostname, url.port) == ("lendo-postgres", service["ports"][0]["port"])
    assert url.password == secret["POSTGRES_PASSWORD"]
    env = {variable["name"]: variable for variable in container["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "lendo-database"
    assert url.path == f"/{env['POSTGRES_DB']['value']}"
