"""grafana/alerts/driftmon.rules.yml: promtool check and unit tests, plus the conventions
promtool does not enforce (severity, annotations, runbook anchors, catalogue names)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import promql

RULES = promql.RULES_FILE
RULE_TESTS = RULES.parent / "tests" / "driftmon.rules.test.yml"
RUNBOOK = promql.REPO / "docs" / "RUNBOOK.md"


def runbook_base() -> str:
    """The one runbook base of the rule file (``make runbook-url`` sets it)."""
    match = re.search(r"runbook_url: (\S+)#runbook-", RULES.read_text())
    assert match, "no runbook_url in the rules"
    return match[1]


SEVERITIES = {"warning", "critical"}
REQUIRED_ALERTS = {
    "DriftmonKafkaUnreachable",
    "DriftmonNotReady",
    "DriftmonConsumerPaused",
    "DriftmonModelDrifted",
    "DriftmonManyFeaturesDrifted",
    "DriftmonFeatureAbsent",
    "DriftmonNoEvents",
    "DriftmonInvalidEventsHigh",
    "DriftmonConsumerLagGrowing",
    "DriftmonWebhookDeliveriesFailing",
    "DriftmonDown",
}


def promtool() -> str:
    exe = shutil.which("promtool")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("promtool missing (make test installs the Debian prometheus package)")
        pytest.skip("promtool not installed")
    return exe


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [r for r in rules() if "alert" in r]


def test_promtool_check_rules() -> None:
    proc = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_test_rules() -> None:
    proc = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_required_alerts_exist() -> None:
    names = [a["alert"] for a in alerts()]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_ALERTS


def test_every_alert_is_complete() -> None:
    for a in alerts():
        name = a["alert"]
        assert re.fullmatch(r"Driftmon[A-Z]\w+", name), name
        assert re.fullmatch(r"\d+[smh]", str(a.get("for", ""))), f"{name}: needs `for:`"
        assert a["labels"]["severity"] in SEVERITIES, name
        ann = a["annotations"]
        assert ann["summary"].strip() and ann["description"].strip(), name
        assert ann["runbook_url"] == f"{runbook_base()}#runbook-{name.lower()}", name


def test_runbook_has_a_section_per_alert() -> None:
    text = RUNBOOK.read_text()
    for a in alerts():
        anchor = f"runbook-{a['alert'].lower()}"
        assert f'<a id="{anchor}"></a>' in text, f"docs/RUNBOOK.md lacks the {anchor} anchor"


def test_recording_rule_names_follow_level_metric_operations() -> None:
    for r in rules():
        if "record" in r:
            assert re.fullmatch(r"[a-z_]+:driftmon_[a-z_]+:[a-z0-9_]+", r["record"]), r["record"]


def test_rules_use_only_catalogue_metrics_and_labels() -> None:
    series = promql.series_names(promql.catalogue())
    known = set(series) | promql.recording_rules() | {"up"}
    labels = set().union(*series.values()) | promql.TARGET_LABELS | {"le"}
    for src, expr in promql.rule_expressions():
        names = promql.metric_names(expr)
        assert names and names <= known, f"{src}: {sorted(names - known)}"
        assert promql.label_names(expr) <= labels, f"{src}: unknown label in {expr!r}"
        for _, clause, by in promql.aggregations(expr):
            if "driftmon_drift_score" in expr:
                assert clause == "by" and "test" in by, f"{src}: aggregates across `test`"


def test_every_alert_is_tested_firing_and_quiet() -> None:
    doc = yaml.safe_load(RULE_TESTS.read_text())
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in doc["tests"]:
        for t in case.get("alert_rule_test", []):
            (firing if t.get("exp_alerts") else quiet).add(t["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names <= firing, f"never tested firing: {sorted(names - firing)}"
    assert names <= quiet, f"never tested quiet: {sorted(names - quiet)}"


def test_rule_tests_check_full_annotations() -> None:
    """Each firing expectation pins labels and all three annotations, so a broken
    template ({{ $labels.x }} on a label the alert does not have) fails."""
    doc = yaml.safe_load(RULE_TESTS.read_text())
    for case in doc["tests"]:
        for t in case.get("alert_rule_test", []):
            for exp in t.get("exp_alerts") or []:
                assert set(exp["exp_annotations"]) == {"summary", "description", "runbook_url"}
                assert "severity" in exp["exp_labels"]
                assert "<no value>" not in str(exp["exp_annotations"])


def test_rule_files_are_what_the_stacks_load(tmp_path: Path) -> None:
    """The compose Prometheus loads this very file."""
    compose = yaml.safe_load(
        (promql.REPO / "deploy" / "compose" / "docker-compose.yml").read_text()
    )
    mounts = compose["services"]["prometheus"]["volumes"]
    assert any("grafana/alerts/driftmon.rules.yml" in m for m in mounts)


def test_runbook_base_is_one_setting_that_make_runbook_url_changes(tmp_path: Path) -> None:
    """Every runbook_url shares one base ending in docs/RUNBOOK.md; `make runbook-url`
    derives it from the clone's origin remote (or takes RUNBOOK_URL) and rewrites the
    rules and their tests, which still pass."""
    assert runbook_base().startswith("https://") and runbook_base().endswith("/docs/RUNBOOK.md")
    alerts = tmp_path / "grafana" / "alerts"
    shutil.copytree(RULES.parent, alerts)
    git = shutil.which("git") or pytest.skip("git not installed")
    subprocess.run([git, "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    remote = ["remote", "add", "origin", "git@github.com:acme/driftmon.git"]
    subprocess.run([git, *remote], cwd=tmp_path, check=True)
    makefile = promql.REPO / "Makefile"
    proc = subprocess.run(
        ["make", "-s", "-f", str(makefile), "runbook-url"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    base = "https://github.com/acme/driftmon/blob/main/docs/RUNBOOK.md"
    for path in (alerts / RULES.name, alerts / "tests" / RULE_TESTS.name):
        urls = set(re.findall(r"runbook_url: (\S+)#runbook-", path.read_text()))
        assert urls == {base}, path
    tested = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name],
        cwd=alerts / "tests",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    bad = subprocess.run(
        ["make", "-s", "-f", str(makefile), "runbook-url", "RUNBOOK_URL=docs/RUNBOOK.md"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "RUNBOOK_URL must be an http(s) URL" in bad.stderr
