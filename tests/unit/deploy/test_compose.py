"""deploy/compose/: the local stack, checked without a Docker engine.

`docker compose config` would validate against the Compose specification, but the
compose plugin is not installed here (only the bare docker client is), so it runs
only where `docker compose version` works. The structural checks always run:
services, pinned images, ports, and every bind-mounted file exists in the repo.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor import cli
from monitor.config import load_config
from monitor.demo import runner as demo
from monitor.demo import synthetic
from tests.support.promql import REPO

COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "docker-compose.yml"


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict[str, Any]:
    return compose()["services"]


def bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    out = []
    for v in service.get("volumes", []):
        src, dst = v.split(":")[:2]
        out.append(((COMPOSE_DIR / src).resolve(), dst))
    return out


def test_required_services() -> None:
    assert set(services()) >= {"broker", "driftmon", "demo-producer", "prometheus", "grafana"}


def test_images_are_pinned() -> None:
    for name, svc in services().items():
        if "build" in svc:
            assert (
                COMPOSE_DIR / svc["build"]["context"] / svc["build"]["dockerfile"]
            ).resolve() == (REPO / "Dockerfile"), name
            continue
        image = svc["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"


def test_bind_mounted_files_exist() -> None:
    for name, svc in services().items():
        for src, dst in bind_mounts(svc):
            assert src.exists(), f"{name}: {src} (mounted at {dst}) does not exist"


def test_driftmon_service() -> None:
    svc = services()["driftmon"]
    assert svc["command"] == ["run", "--config", "/etc/driftmon/config.yaml"]
    assert "9108:9108" in svc["ports"]
    assert {dst for _, dst in bind_mounts(svc)} == {"/etc/driftmon/config.yaml"}
    assert svc["depends_on"]["broker"]["condition"] == "service_healthy"


def test_demo_producer() -> None:
    cmd = services()["demo-producer"]["command"]
    assert cmd[:4] == ["demo", "--bootstrap", "broker:9092", "--producer-only"]


def test_demo_flags_exist_in_the_cli() -> None:
    src = Path(cli.__file__).read_text()
    for flag in ("--bootstrap", "--producer-only", "--duration", "--rate"):
        assert f'"{flag}"' in src, flag


def test_driftmon_config_matches_the_demo_model(tmp_path: Path) -> None:
    cfg = yaml.safe_load((COMPOSE_DIR / "driftmon.yaml").read_text())
    assert cfg["kafka"]["bootstrap_servers"] == "broker:9092"
    assert cfg["http"]["port"] == 9108
    assert cfg["kafka"]["topics"] == [demo.TOPIC]
    (model,) = cfg["models"]
    assert model == synthetic.MODEL
    assert list(cfg["models"][model]["features"]) == [*synthetic.NUMERIC, *synthetic.CATEGORICAL]
    load_config(COMPOSE_DIR / "driftmon.yaml")


def test_prometheus_loads_the_rules_and_scrapes_driftmon(tmp_path: Path) -> None:
    svc = services()["prometheus"]
    mounts = {dst: src for src, dst in bind_mounts(svc)}
    prom = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())
    for rule_file in prom["rule_files"]:
        assert mounts[rule_file] == (REPO / "grafana" / "alerts" / "driftmon.rules.yml")
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert jobs["driftmon"]["static_configs"][0]["targets"] == ["driftmon:9108"]
    # promtool checks the config with the rule path pointed at the repository copy
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool missing")
        pytest.skip("promtool not installed")
    prom["rule_files"] = [str(mounts[f]) for f in prom["rule_files"]]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(prom))
    proc = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_grafana_gets_provisioning_and_dashboards() -> None:
    svc = services()["grafana"]
    mounts = {dst: src for src, dst in bind_mounts(svc)}
    assert (
        mounts["/etc/grafana/provisioning/dashboards"] == REPO / "grafana/provisioning/dashboards"
    )
    assert (
        mounts["/etc/grafana/provisioning/datasources"] == REPO / "grafana/provisioning/datasources"
    )
    provider = yaml.safe_load((REPO / "grafana/provisioning/dashboards/driftmon.yaml").read_text())
    (p,) = provider["providers"]
    assert mounts[p["options"]["path"]] == REPO / "grafana" / "dashboards"
    home = svc["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (REPO / "grafana/dashboards" / Path(home).name).exists()
    assert home.startswith(p["options"]["path"] + "/")
    ds = yaml.safe_load((REPO / "grafana/provisioning/datasources/prometheus.yaml").read_text())
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"


@pytest.mark.slow
def test_compose_file_validates_against_the_compose_specification(tmp_path: Path) -> None:
    """The official compose-spec JSON schema (vendored by check-jsonschema, offline).

    No Docker engine runs here, so ``docker compose config`` cannot be the check; the
    schema catches unknown keys and wrong types the same way.
    """
    tool = Path(sys.executable).parent / "check-jsonschema"
    proc = subprocess.run(
        [str(tool), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bad = tmp_path / "bad.yml"
    bad.write_text("services:\n  a:\n    image: x\n    portz: [1]\n")
    proc = subprocess.run(
        [str(tool), "--builtin-schema", "vendor.compose-spec", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0 and "portz" in proc.stdout
