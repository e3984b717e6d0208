"""Kubernetes manifests: each overlay renders with `kubectl kustomize`, validates strictly against the
Kubernetes API schemas (kubernetes-validate --strict), and its ServiceMonitor validates (check-jsonschema)
against deploy/k8s/schemas/, a schema written for this project from the Prometheus Operator CRD (no third-party
file is vendored). The wiring between the objects (ports, probes, volumes, env) is checked too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lifelong.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SCHEMA = K8S / "schemas" / "servicemonitor.monitoring.coreos.com-v1.json"
OVERLAYS = ["cpu", "gpu"]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    if found is None:
        pytest.skip(f"{name} not installed and scripts/install-check-tools.sh could not install it")
    return found


_rendered: dict[str, list[dict[str, Any]]] = {}


def render(overlay: str) -> list[dict[str, Any]]:
    if overlay not in _rendered:
        out = subprocess.run(
            [_tool("kubectl"), "kustomize", str(K8S / "overlays" / overlay)],
            capture_output=True, text=True, timeout=60, check=True,
        )
        _rendered[overlay] = [doc for doc in yaml.safe_load_all(out.stdout) if doc]
    return _rendered[overlay]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def _validate(tmp_path: Path, docs: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "manifests.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return subprocess.run(
        [_tool("kubernetes-validate"), "--strict", str(path)], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_strictly(overlay: str, tmp_path: Path) -> None:
    docs = [d for d in render(overlay) if d["apiVersion"] != "monitoring.coreos.com/v1"]
    assert {d["kind"] for d in docs} == {"ConfigMap", "Service", "StatefulSet"}
    result = _validate(tmp_path, docs)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed for resource") == len(docs), result.stdout
    assert "ERROR" not in result.stdout + result.stderr


def test_strict_validation_rejects_an_unknown_field(tmp_path: Path) -> None:
    """Negative control: a misspelt field fails --strict (it would be silently dropped without it)."""
    statefulset = json.loads(json.dumps(by_kind(render("cpu"), "StatefulSet")))
    statefulset["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {"periodSeconds": 5}
    result = _validate(tmp_path, [statefulset])
    assert result.returncode != 0
    assert "livenesProbe" in result.stdout + result.stderr


def _check_servicemonitor(tmp_path: Path, monitor: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "servicemonitor.json"
    path.write_text(json.dumps(monitor))
    return subprocess.run(
        [_tool("check-jsonschema"), "--schemafile", str(SCHEMA), str(path)],
        capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_servicemonitor_matches_crd_schema_and_the_service(overlay: str, tmp_path: Path) -> None:
    docs = render(overlay)
    monitor = by_kind(docs, "ServiceMonitor")
    result = _check_servicemonitor(tmp_path, monitor)
    assert result.returncode == 0, result.stdout + result.stderr
    service = by_kind(docs, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    assert all(endpoint["port"] in service_ports for endpoint in monitor["spec"]["endpoints"])


def test_servicemonitor_schema_rejects_wrong_documents(tmp_path: Path) -> None:
    monitor = by_kind(render("cpu"), "ServiceMonitor")
    typo = json.loads(json.dumps(monitor))
    typo["spec"]["endpoints"][0]["intervall"] = "15s"
    assert _check_servicemonitor(tmp_path, typo).returncode != 0
    bad_interval = json.loads(json.dumps(monitor))
    bad_interval["spec"]["endpoints"][0]["interval"] = "15 seconds"
    assert _check_servicemonitor(tmp_path, bad_interval).returncode != 0
    no_selector = json.loads(json.dumps(monitor))
    del no_selector["spec"]["selector"]
    assert _check_servicemonitor(tmp_path, no_selector).returncode != 0


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = by_kind(docs, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    return container


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_statefulset_wiring(overlay: str) -> None:
    docs = render(overlay)
    sts = by_kind(docs, "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    container = _container(docs)
    env = _env(container)
    assert sts["spec"]["serviceName"] == by_kind(docs, "Service")["metadata"]["name"]
    assert env["LIFELONG_KAFKA__GROUP_INSTANCE_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    for key, secret_key in [("USERNAME", "username"), ("PASSWORD", "password")]:
        ref = env[f"LIFELONG_KAFKA__SASL_PLAIN_{key}"]["secretKeyRef"]
        assert ref["key"] == secret_key and ref["name"] == "lifelong-kafka-sasl"
    # Checkpoints on the per-pod volume claim.
    claims = {t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/var/lib/lifelong"] in claims
    assert env["LIFELONG_CHECKPOINT__DIR"].startswith("/var/lib/lifelong/")
    # Probes and the Service hit the named metrics port.
    (port,) = container["ports"]
    assert port["name"] == "metrics" and port["containerPort"] == 9108
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"
    (service_port,) = by_kind(docs, "Service")["spec"]["ports"]
    assert service_port["name"] == "metrics" and service_port["targetPort"] == "metrics"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    # The config volume is the generated ConfigMap (hash-suffixed name).
    config_map = by_kind(docs, "ConfigMap")
    (config_volume,) = [v for v in pod["volumes"] if v["name"] == mounts["/etc/lifelong"]]
    assert config_volume["configMap"]["name"] == config_map["metadata"]["name"]
    # The fetch processes' shared-memory blocks get a memory-backed /dev/shm, not the container's 64 MB.
    (shm_volume,) = [v for v in pod["volumes"] if v["name"] == mounts["/dev/shm"]]
    assert shm_volume["emptyDir"]["medium"] == "Memory"
    assert container["args"] == ["run", "--config", "/etc/lifelong/config.yaml"]


def test_gpu_overlay_asks_for_a_gpu_and_cuda() -> None:
    gpu, cpu = _container(render("gpu")), _container(render("cpu"))
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in cpu["resources"].get("limits", {})
    assert _env(gpu)["LIFELONG_DAEMON__DEVICE"] == "cuda"
    assert _env(cpu)["LIFELONG_DAEMON__DEVICE"] == "cpu"
    assert gpu["image"].endswith("-cuda") and cpu["image"].endswith("-cpu")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configmap_is_a_valid_daemon_config(overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mounted YAML plus the pod's literal env values load through the daemon's own validation."""
    docs = render(overlay)
    path = tmp_path / "config.yaml"
    path.write_text(by_kind(docs, "ConfigMap")["data"]["config.yaml"])
    for name, value in _env(_container(docs)).items():
        if name.startswith("LIFELONG_") and isinstance(value, str):
            monkeypatch.setenv(name, value)
    settings = load_settings(path)
    assert settings.metrics.port == 9108 and settings.metrics.host == "0.0.0.0"
    assert str(settings.checkpoint.dir) == "/var/lib/lifelong/checkpoints"
    assert settings.daemon.device == ("cuda" if overlay == "gpu" else "cpu")
