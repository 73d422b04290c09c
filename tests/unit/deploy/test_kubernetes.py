"""deploy/kubernetes/: schema validation offline, plus the properties the docs promise.

Built-in kinds are validated by `kubernetes-validate --strict` against the schemas it
ships for KUBERNETES_VERSION (strict: unknown fields are errors). It has no schema
for the prometheus-operator ServiceMonitor CRD and only warns on it, so that kind is
checked here against SERVICEMONITOR_SCHEMA, a strict subset of the CRD's
`spec.endpoints` schema covering the fields driftmon uses.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from monitor.config import load_config
from tests.support.promql import REPO

K8S_DIR = REPO / "deploy" / "kubernetes"
MANIFESTS = sorted(K8S_DIR.glob("*.yaml"))
KUBERNETES_VERSION = "1.33.0"
CRD_KINDS = {"ServiceMonitor"}

SERVICEMONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "additionalProperties": False,
        },
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": {"type": "string"},
                "namespaceSelector": {"type": "object"},
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                        "matchExpressions": {"type": "array"},
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": {"type": "string", "pattern": r"^(\d+(ms|s|m|h))+$"},
                            "scrapeTimeout": {
                                "type": "string",
                                "pattern": r"^(\d+(ms|s|m|h))+$",
                            },
                            "honorLabels": {"type": "boolean"},
                            "relabelings": {"type": "array"},
                            "metricRelabelings": {"type": "array"},
                        },
                    },
                },
            },
        },
    },
}


def docs() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p in MANIFESTS for d in yaml.safe_load_all(p.read_text()) if d]


def kinds(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in docs() if d["kind"] == kind]


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    return [(d["metadata"]["name"], d["spec"]["template"]) for d in kinds("Deployment")]


def driftmon_container(spec: dict[str, Any]) -> dict[str, Any]:
    (c,) = [c for c in spec["containers"] if c["name"] == "driftmon"]
    return c


def test_expected_manifests() -> None:
    names = {p.name for p in MANIFESTS}
    assert {
        "configmap.yaml",
        "deployment.yaml",
        "service.yaml",
        "servicemonitor.yaml",
        "sidecar.yaml",
    } <= names


def test_kubernetes_validate_strict() -> None:
    exe = shutil.which("kubernetes-validate") or str(
        Path(sys.executable).parent / "kubernetes-validate"
    )
    if not Path(exe).exists():
        pytest.skip("kubernetes-validate not installed")
    proc = subprocess.run(
        [exe, "--strict", "-k", KUBERNETES_VERSION, *map(str, MANIFESTS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    passed = re.findall(r"^INFO \S+ passed for resource (\S+)", out, re.M)
    warned = re.findall(r"Couldn't find schema for kind (\w+)", out)
    expected = {
        f"{d['kind'].lower()}/{d['metadata']['name']}"
        for _, d in docs()
        if d["kind"] not in CRD_KINDS
    }
    assert set(passed) == expected, out
    assert set(warned) <= CRD_KINDS, f"unvalidated kinds: {warned}"


def test_servicemonitor_structure() -> None:
    (sm,) = kinds("ServiceMonitor")
    jsonschema.validate(sm, SERVICEMONITOR_SCHEMA)
    (svc,) = kinds("Service")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    port_names = {p["name"] for p in svc["spec"]["ports"]}
    assert {e["port"] for e in sm["spec"]["endpoints"]} <= port_names
    # the scrape job is named after the Service, which the `up` alerts select
    assert re.match("driftmon", svc["metadata"]["name"])


def test_service_selects_the_standalone_pods() -> None:
    (svc,) = kinds("Service")
    (dep,) = [d for d in kinds("Deployment") if d["metadata"]["name"] == "driftmon"]
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    (port,) = svc["spec"]["ports"]
    assert port["port"] == 9108


@pytest.mark.parametrize("name", ["driftmon", "fraud-model"])
def test_driftmon_container_policy(name: str) -> None:
    template = dict(pod_specs())[name]
    spec = template["spec"]
    c = driftmon_container(spec)
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001  # the image's USER
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert c["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "512Mi"},
    }
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["args"] == ["run", "--config", "/etc/driftmon/config.yaml"]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for path in ("/var/cache/driftmon/numba", "/var/lib/driftmon", "/tmp"):
        assert "emptyDir" in volumes[mounts[path]], path
    assert "configMap" in volumes[mounts["/etc/driftmon/config.yaml"]]
    # the pre-warmed kernels are copied into the numba emptyDir before start
    (seed,) = spec["initContainers"]
    assert seed["image"] == c["image"]
    assert "/var/cache/driftmon/numba/." in seed["command"]
    assert {m["name"] for m in seed["volumeMounts"]} == {mounts["/var/cache/driftmon/numba"]}
    ann = template["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "9108"


def test_readiness_probes() -> None:
    specs = dict(pod_specs())
    assert driftmon_container(specs["driftmon"]["spec"])["readinessProbe"]["httpGet"]["path"] == (
        "/readyz"
    )
    # sidecar: /readyz would hold the model server out of its Service while the
    # reference is being captured (see the comment in sidecar.yaml)
    sidecar = driftmon_container(specs["fraud-model"]["spec"])
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_sidecar_shares_only_the_pod_network() -> None:
    spec = dict(pod_specs())["fraud-model"]["spec"]
    assert len(spec["containers"]) == 2
    model, drift = spec["containers"][0], driftmon_container(spec)
    assert not {m["name"] for m in model.get("volumeMounts", [])} & {
        m["name"] for m in drift["volumeMounts"]
    }
    assert not spec.get("shareProcessNamespace")
    assert not spec.get("hostNetwork")


def test_webhook_secret_by_reference_only() -> None:
    assert not kinds("Secret"), "no Secret objects (and so no secret values) in the repo"
    for name, template in pod_specs():
        env = {e["name"]: e for e in driftmon_container(template["spec"]).get("env", [])}
        ref = env["RETRAIN_WEBHOOK_SECRET"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "driftmon-webhooks", "key": "retrain-secret"}, name
        assert all("value" not in e for e in env.values()), name


def configs() -> list[tuple[str, dict[str, Any]]]:
    return [
        (cm["metadata"]["name"], yaml.safe_load(cm["data"]["config.yaml"]))
        for cm in kinds("ConfigMap")
    ]


def test_configmaps_hold_real_configs() -> None:
    found = configs()
    assert len(found) == 2
    for name, cfg in found:
        assert set(cfg) <= {"kafka", "http", "models", "webhooks"}, name
        assert cfg["http"] == {"host": "0.0.0.0", "port": 9108}, name
        assert {"bootstrap_servers", "group_id", "topics"} <= set(cfg["kafka"]), name
        for model, m in cfg["models"].items():
            assert {"reference", "window", "features", "tests", "thresholds", "alert"} <= set(m), (
                model
            )
        for hook in cfg["webhooks"]:
            assert hook["secret_env"] == "RETRAIN_WEBHOOK_SECRET"
            # DRIFTMON_* variables are config overrides; a secret must not look like one
            assert not hook["secret_env"].startswith("DRIFTMON_")


def test_configmaps_pass_the_config_loader(tmp_path: Path) -> None:
    for name, cfg in configs():
        # reference files are mounted in the cluster; here only their existence counts
        for model in cfg["models"].values():
            if isinstance(model["reference"], str):
                stand_in = tmp_path / Path(model["reference"]).name
                stand_in.write_text("{}")
                model["reference"] = str(stand_in)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        load_config(path)
