"""deploy/k8s: the kustomize base renders, is valid Kubernetes, and keeps our rules.

No kustomize binary installs from PyPI or Debian, so ``render_base`` does in
Python the part of ``kustomize build`` the base uses (resources and labels) and
refuses anything else. Where ``kustomize`` or ``kubectl`` is on PATH (every
machine of this workplace has kubectl), the test also renders with it and
requires the same objects. Validation uses the Kubernetes JSON schemas bundled
in the kubernetes-validate wheel, in strict mode (unknown fields are errors).
"""

import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "k8s"
BANK_IMAGE = "lendoab/interview-service:stable"
COMMON_LABELS = {"app.kubernetes.io/part-of": "lendo"}
OLDEST_KUBERNETES = "1.30.0"
GRACE_SECONDS = 30
CONTAINER_TMP = "/tmp"  # noqa: S108 (a path inside the container, not ours)

Resource = dict[str, Any]
WORKLOADS = {"Deployment", "StatefulSet"}
KNOWN_KINDS = WORKLOADS | {"ConfigMap", "Service", "PersistentVolumeClaim"}
QUANTITY = re.compile(r"(?P<number>\d+(?:\.\d+)?)(?P<unit>m|Ki|Mi|Gi)?")
UNITS = {None: 1.0, "m": 0.001, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30}


def render_base(directory: Path) -> list[Resource]:
    """``kustomize build directory`` for a base using only ``resources`` and ``labels``.

    ``labels`` with ``includeSelectors: true`` is the old ``commonLabels``: the
    pairs go on every object's metadata, selectors, pod templates and the
    volume claim templates of StatefulSets. Without it, on metadata only.
    """
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - {"apiVersion", "kind", "resources", "labels"}
    assert not unsupported, f"render_base does not do {unsupported}; teach it, then compare"
    rendered = [
        document
        for name in kustomization["resources"]
        for document in yaml.safe_load_all((directory / name).read_text())
        if document
    ]
    for group in kustomization.get("labels", []):
        assert set(group) <= {"pairs", "includeSelectors"}, f"unsupported labels option {group}"
        for resource in rendered:
            assert resource["kind"] in KNOWN_KINDS, f"render_base does not know {resource['kind']}"
            _add_labels(resource, group["pairs"], group.get("includeSelectors", False))
    return rendered


def _add_labels(resource: Resource, pairs: dict[str, str], include_selectors: bool) -> None:
    resource["metadata"].setdefault("labels", {}).update(pairs)
    if not include_selectors:
        return
    spec = resource.get("spec", {})
    if resource["kind"] == "Service":
        spec.setdefault("selector", {}).update(pairs)
    if resource["kind"] in WORKLOADS:
        spec["selector"].setdefault("matchLabels", {}).update(pairs)
        spec["template"]["metadata"].setdefault("labels", {}).update(pairs)
    for claim in spec.get("volumeClaimTemplates", []) if resource["kind"] == "StatefulSet" else []:
        claim["metadata"].setdefault("labels", {}).update(pairs)


def kustomize_command() -> list[str] | None:
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build", str(BASE)]
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize", str(BASE)]
    return None


def by_identity(resources: list[Resource]) -> dict[tuple[str, str], Resource]:
    return {(r["kind"], r["metadata"]["name"]): r for r in resources}


def quantity(text: str | int) -> float:
    match = QUANTITY.fullmatch(str(text))
    assert match, f"unreadable quantity {text!r}"
    return float(match["number"]) * UNITS[match["unit"]]


@pytest.fixture(scope="module")
def rendered() -> list[Resource]:
    return render_base(BASE)


@pytest.fixture(scope="module")
def objects(rendered: list[Resource]) -> dict[tuple[str, str], Resource]:
    return by_identity(rendered)


@pytest.fixture(scope="module")
def config(objects: dict[tuple[str, str], Resource]) -> dict[str, str]:
    data: dict[str, str] = objects["ConfigMap", "lendo-config"]["data"]
    return data


@pytest.fixture(scope="module")
def version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as file:
        project_version: str = tomllib.load(file)["project"]["version"]
    return project_version


def workloads(objects: dict[tuple[str, str], Resource]) -> Iterator[Resource]:
    return (r for r in objects.values() if r["kind"] in WORKLOADS)


def containers(objects: dict[tuple[str, str], Resource]) -> Iterator[tuple[Resource, Resource]]:
    """(pod spec, container) for every container of every workload."""
    for workload in workloads(objects):
        pod = workload["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            yield pod, container


def test_renders_like_kustomize(rendered: list[Resource]) -> None:
    assert len(by_identity(rendered)) == len(rendered), "two objects share a kind and name"
    command = kustomize_command()
    if command is not None:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
        assert by_identity(list(yaml.safe_load_all(result.stdout))) == by_identity(rendered)


@pytest.mark.parametrize("kubernetes", [OLDEST_KUBERNETES, kubernetes_validate.latest_version()])
def test_valid_kubernetes_objects(rendered: list[Resource], kubernetes: str) -> None:
    for resource in rendered:
        kubernetes_validate.validate(resource, kubernetes, strict=True)


def test_namespace_agnostic_and_commonly_labelled(rendered: list[Resource]) -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert "namespace" not in kustomization
    for resource in rendered:
        assert "namespace" not in resource["metadata"]
        assert COMMON_LABELS.items() <= resource["metadata"]["labels"].items()


def test_every_container_is_locked_down(objects: dict[tuple[str, str], Resource]) -> None:
    for pod, container in containers(objects):
        effective = pod.get("securityContext", {}) | container.get("securityContext", {})
        name = container["name"]
        assert effective.get("runAsNonRoot") is True, name
        assert effective.get("runAsUser") == 10001, name
        assert effective.get("allowPrivilegeEscalation") is False, name
        assert effective.get("readOnlyRootFilesystem") is True, name
        assert effective.get("capabilities", {}).get("drop") == ["ALL"], name
        assert effective.get("seccompProfile") == {"type": "RuntimeDefault"}, name
        empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts.get(CONTAINER_TMP) in empty_dirs, f"{name}: /tmp must be an emptyDir"


def test_every_pod_stops_gracefully_without_api_access(
    objects: dict[tuple[str, str], Resource], config: dict[str, str]
) -> None:
    assert float(config["LENDO_SHUTDOWN_GRACE"]) < GRACE_SECONDS
    for workload in workloads(objects):
        pod = workload["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] == GRACE_SECONDS
        assert pod["automountServiceAccountToken"] is False
        assert pod["enableServiceLinks"] is False, "no *_SERVICE_HOST variables in the env"


def test_every_container_has_resources(objects: dict[tuple[str, str], Resource]) -> None:
    for _, container in containers(objects):
        resources = container["resources"]
        for kind in ("cpu", "memory"):
            request, limit = resources["requests"][kind], resources["limits"][kind]
            assert quantity(request) <= quantity(limit), f"{container['name']} {kind}"


def test_every_container_has_probes_on_its_own_ports(
    objects: dict[tuple[str, str], Resource],
) -> None:
    for _, container in containers(objects):
        port_names = {p["name"] for p in container["ports"]}
        for kind in ("livenessProbe", "readinessProbe"):
            probe = container[kind]
            if "httpGet" in probe:
                assert probe["httpGet"]["port"] in port_names, f"{container['name']} {kind}"
            else:
                assert "redis-cli ping" in " ".join(probe["exec"]["command"])


def test_our_containers_probe_health_and_readiness(
    objects: dict[tuple[str, str], Resource], version: str
) -> None:
    ours = [c for _, c in containers(objects) if c["image"].startswith("lendo:")]
    assert {c["name"] for c in ours} == {"api", "poller"}
    for container in ours:
        assert container["image"] == f"lendo:{version}", "bump the image tag with the project"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["envFrom"] == [{"configMapRef": {"name": "lendo-config"}}]


def test_api_is_a_single_writer_of_its_volume(objects: dict[tuple[str, str], Resource]) -> None:
    api = objects["Deployment", "lendo-api"]
    assert api["spec"]["replicas"] == 1
    assert api["spec"]["strategy"] == {"type": "Recreate"}
    pod = api["spec"]["template"]["spec"]
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["lendo-api-data"]
    assert objects["PersistentVolumeClaim", "lendo-api-data"]["spec"]["accessModes"] == [
        "ReadWriteOnce"
    ]
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert "/data" in mounts


def test_pollers_scale_with_their_pod_names(objects: dict[tuple[str, str], Resource]) -> None:
    poller = objects["Deployment", "lendo-poller"]
    assert poller["spec"]["replicas"] == 3
    container = poller["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["LENDO_CONSUMER_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["LENDO_METRICS_PORT"]["value"] == "9090"
    assert container["ports"] == [{"name": "metrics", "containerPort": 9090}]


def test_config_never_names_a_consumer(config: dict[str, str]) -> None:
    assert "LENDO_CONSUMER_NAME" not in config, "it would give every poller the same name"
    assert all(key.startswith("LENDO_") for key in config)


def test_metrics_are_scraped_from_a_declared_port(
    objects: dict[tuple[str, str], Resource],
) -> None:
    for name in ("lendo-api", "lendo-poller"):
        template = objects["Deployment", name]["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        ports = {str(p["containerPort"]) for p in template["spec"]["containers"][0]["ports"]}
        assert annotations["prometheus.io/port"] in ports


def test_redis_is_durable_behind_a_headless_service(
    objects: dict[tuple[str, str], Resource],
) -> None:
    redis = objects["StatefulSet", "lendo-redis"]
    service = objects["Service", redis["spec"]["serviceName"]]
    assert service["spec"]["clusterIP"] == "None"
    container = redis["spec"]["template"]["spec"]["containers"][0]
    assert "--appendonly yes" in " ".join(container["args"])
    claims = {c["metadata"]["name"] for c in redis["spec"]["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts.get("/data") in claims


def test_bank_runs_the_real_image(objects: dict[tuple[str, str], Resource]) -> None:
    bank = objects["Deployment", "lendo-bank"]
    assert bank["spec"]["template"]["spec"]["containers"][0]["image"] == BANK_IMAGE


def test_every_service_selects_a_pod_and_a_named_port(
    objects: dict[tuple[str, str], Resource],
) -> None:
    for service in (r for r in objects.values() if r["kind"] == "Service"):
        selector = service["spec"]["selector"].items()
        pods = [
            w["spec"]["template"]
            for w in workloads(objects)
            if selector <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(pods) == 1, f"{service['metadata']['name']} selects {len(pods)} workloads"
        port_names = {p["name"] for c in pods[0]["spec"]["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names


def test_configured_addresses_are_services_of_the_base(
    objects: dict[tuple[str, str], Resource], config: dict[str, str]
) -> None:
    for key in ("LENDO_REDIS_URL", "LENDO_BANK_URL"):
        address = urlsplit(config[key])
        service = objects["Service", str(address.hostname)]
        assert address.port in {p["port"] for p in service["spec"]["ports"]}, key
    assert config["LENDO_HOST"] == "0.0.0.0"
    assert config["LENDO_DB_PATH"].startswith("/data/")
