"""The metric catalogue, hot counters and the scrape-time drift collector."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from monitor.publish.health import CORE_CONDITIONS, Health
from monitor.publish.metrics import Metrics
from monitor.publish.results import ResultsStore
from monitor.scaleout.status import ModelShare, ScaleOutStatus
from tests.support.results import INVALID_REASONS as REASONS
from tests.support.results import fake_performance, fake_status, fake_version

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "metrics.txt"
GOLDEN_HEADER = (
    "# driftmon metric catalogue: name, type, label names, HELP (tab-separated, sorted).\n"
    "# The contract is the table in docs/ARCHITECTURE.md; tests/unit/test_metrics.py diffs\n"
    "# a populated live registry against this file. Regenerate after an intended change:\n"
    "#   DRIFTMON_UPDATE_GOLDEN=1 pytest tests/unit/test_metrics.py\n"
)


def build(
    store: ResultsStore | None = None, health: Health | None = None
) -> tuple[CollectorRegistry, Metrics, ResultsStore, Health]:
    registry = CollectorRegistry()
    store = store or ResultsStore()
    health = health or Health()
    metrics = Metrics(
        registry,
        store,
        health,
        invalid_reasons=REASONS,
        models=["fraud"],
        webhooks=["retrain"],
        version="1.2.3",
    )
    return registry, metrics, store, health


def populated() -> tuple[CollectorRegistry, Metrics]:
    """Every family with at least one sample, so label names can be read off the samples."""
    store = ResultsStore()
    store.publish(
        dataclasses.replace(
            fake_status("fraud"),
            performance=fake_performance(),
            version="v2",
            versions=(fake_version("v2"),),
        )
    )
    store.publish_scale_out(
        ScaleOutStatus(
            "a",
            "driftmon.rows",
            ("ml.inference/0",),
            (0,),
            {"fraud": ModelShare("fraud", 0, True, {"applied": 5, "forced": 1}, 100.0, 2.5, 7, ())},
            {"used": 1, "garbled": 2},
        )
    )
    registry, metrics, _, _ = build(store)
    metrics.set_lag("ml.inference", 0, 12)
    metrics.topic_recreated("ml.inference")
    metrics.count_pairing(
        {("fraud", "request", "expired"): 1}, {"fraud": 3}, {("fraud", "request"): 2}
    )
    return registry, metrics


def catalogue(registry: CollectorRegistry) -> list[str]:
    lines = []
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = sorted({k for s in family.samples for k in s.labels if k != "le"})
        lines.append("\t".join([name, family.type, ",".join(labels) or "-", family.documentation]))
    return sorted(lines)


def test_catalogue_matches_golden() -> None:
    registry, _ = populated()
    live = GOLDEN_HEADER + "".join(line + "\n" for line in catalogue(registry))
    if os.environ.get("DRIFTMON_UPDATE_GOLDEN"):
        GOLDEN.write_text(live)
    assert live == GOLDEN.read_text(), "metric catalogue changed; see the golden file header"


def architecture_table() -> dict[str, tuple[str, str]]:
    """``name -> (type, labels)`` from the metric catalogue table in ARCHITECTURE.md."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    section = text.split("## Metric catalogue", 1)[1]
    rows: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        m = re.match(r"\|\s*`(driftmon_\w+)`\s*\|([^|]*)\|([^|]*)\|", line)
        if m:
            kind = m.group(2).split()[0]
            labels = re.sub(r"\(.*?\)", "", m.group(3)).replace(" ", "").strip(",")
            rows[m.group(1)] = (kind, ",".join(sorted(filter(None, labels.split(",")))) or "-")
    return rows


def test_catalogue_matches_architecture_contract() -> None:
    registry, _ = populated()
    live = {
        name: (kind, labels)
        for name, kind, labels, _help in (line.split("\t") for line in catalogue(registry))
    }
    assert live == architecture_table()


def test_drift_score_help_forbids_aggregating_across_tests() -> None:
    text = GOLDEN.read_text()
    (line,) = [x for x in text.splitlines() if x.startswith("driftmon_drift_score\t")]
    assert "never sum, average or otherwise aggregate across the test label" in line


def test_every_invalid_reason_exists_at_zero_and_counts() -> None:
    registry, metrics, _, _ = build()
    for reason in REASONS:
        assert registry.get_sample_value("driftmon_invalid_events_total", {"reason": reason}) == 0
    metrics.count_invalid({"not_json": 3, "oversized": 0})
    metrics.invalid["wrong_type"].inc()
    assert registry.get_sample_value("driftmon_invalid_events_total", {"reason": "not_json"}) == 3
    assert registry.get_sample_value("driftmon_invalid_events_total", {"reason": "wrong_type"}) == 1
    with pytest.raises(KeyError):
        metrics.count_invalid({"made_up": 1})


def test_bound_model_children_and_rebinding() -> None:
    registry, metrics, _, _ = build()
    fraud = metrics.model("fraud")
    fraud.unknown_features.inc(3)
    metrics.note_last_events({"fraud": 1764150000.25})
    assert registry.get_sample_value("driftmon_unknown_features_total", {"model": "fraud"}) == 3
    assert (
        registry.get_sample_value("driftmon_last_event_timestamp_seconds", {"model": "fraud"})
        == 1764150000.25
    )
    metrics.bind_models(["churn"])
    assert registry.get_sample_value("driftmon_unknown_features_total", {"model": "fraud"}) is None
    assert registry.get_sample_value("driftmon_unknown_features_total", {"model": "churn"}) == 0
    with pytest.raises(KeyError):
        metrics.model("fraud")


def test_model_state_counters_are_rendered_from_the_published_status() -> None:
    from dataclasses import replace

    registry, _, results, _ = build()
    results.publish(
        replace(fake_status("fraud"), events_total=500, late_events=2, retrain_triggers=1)
    )
    assert registry.get_sample_value("driftmon_events_total", {"model": "fraud"}) == 500
    assert registry.get_sample_value("driftmon_late_events_total", {"model": "fraud"}) == 2
    assert registry.get_sample_value("driftmon_retrain_triggers_total", {"model": "fraud"}) == 1
    assert registry.get_sample_value("driftmon_evaluations_total", {"model": "fraud"}) is not None


def test_webhook_children_and_dead_letter_outcomes() -> None:
    registry, metrics, _, _ = build()
    hook = metrics.webhook("retrain")
    hook.outcome("retried").inc()
    hook.delivered.inc()
    hook.pending.set(2)
    hook.delivery_seconds.observe(0.03)
    labels = {"webhook": "retrain"}
    assert (
        registry.get_sample_value(
            "driftmon_webhook_deliveries_total", {**labels, "outcome": "retried"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "driftmon_webhook_deliveries_total", {**labels, "outcome": "failed"}
        )
        == 0
    )
    assert registry.get_sample_value("driftmon_webhook_pending", labels) == 2
    assert registry.get_sample_value("driftmon_webhook_delivery_seconds_count", labels) == 1
    for outcome in ("sent", "failed"):
        assert (
            registry.get_sample_value("driftmon_dead_letter_messages_total", {"outcome": outcome})
            == 0
        )
    metrics.bind_webhooks([])
    assert registry.get_sample_value("driftmon_webhook_pending", labels) is None


def test_lag_set_and_removed_on_revoke() -> None:
    registry, metrics, _, _ = build()
    metrics.set_lag("ml.inference", 2, 600)
    labels = {"topic": "ml.inference", "partition": "2"}
    assert registry.get_sample_value("driftmon_consumer_lag_messages", labels) == 600
    metrics.set_lag("ml.inference", 2, -3)  # a stale watermark never shows negative lag
    assert registry.get_sample_value("driftmon_consumer_lag_messages", labels) == 0
    metrics.remove_lag("ml.inference", 2)
    metrics.remove_lag("ml.inference", 2)  # revoking twice is harmless
    assert registry.get_sample_value("driftmon_consumer_lag_messages", labels) is None


def test_ready_and_connected_follow_health() -> None:
    registry, _, _, health = build()
    assert registry.get_sample_value("driftmon_ready") == 0
    assert registry.get_sample_value("driftmon_kafka_connected") == 0
    health.set("kafka_connected", True)
    assert registry.get_sample_value("driftmon_kafka_connected") == 1
    for name in CORE_CONDITIONS:
        health.set(name, True)
    assert registry.get_sample_value("driftmon_ready") == 1
    assert registry.get_sample_value("driftmon_build_info", {"version": "1.2.3"}) == 1


def test_histograms_and_no_created_series() -> None:
    registry, metrics, _, _ = build()
    metrics.batch_duration.observe(0.004)
    metrics.evaluation_duration.observe(0.0003)
    assert registry.get_sample_value("driftmon_batch_duration_seconds_bucket", {"le": "0.005"}) == 1
    assert (
        registry.get_sample_value("driftmon_evaluation_duration_seconds_bucket", {"le": "0.0005"})
        == 1
    )
    assert b"_created" not in generate_latest(registry)


def test_drift_collector_renders_the_snapshot() -> None:
    store = ResultsStore()
    store.publish(fake_status("fraud"))
    registry, _, _, _ = build(store)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"model": "fraud", **labels})

    assert value("driftmon_drift_score", feature="amount", test="psi") == 0.41
    assert value("driftmon_drift_p_value", feature="amount", test="ks") == 1e-9
    assert value("driftmon_drift_threshold", feature="amount", test="ks") == 0.001
    # NaN (not enough data) is left out rather than exported.
    assert value("driftmon_drift_score", feature="country", test="chi2") is None
    assert value("driftmon_drift_p_value", feature="country", test="chi2") is None
    assert value("driftmon_drift_score", feature="country", test="js") == 0.02
    assert value("driftmon_feature_drifted", feature="amount") == 1
    assert value("driftmon_feature_drifted", feature="country") == 0
    assert value("driftmon_features_drifted") == 1
    assert value("driftmon_model_drifted") == 1
    assert value("driftmon_alert_state") == 2
    assert value("driftmon_missing_ratio", feature="amount") == 0.01
    assert value("driftmon_window_events") == 20000
    assert value("driftmon_window_fill_ratio") == 1.0
    assert value("driftmon_reference_ready") == 1
    assert value("driftmon_last_evaluation_timestamp_seconds") == 1764150000.5


def test_removed_features_disappear() -> None:
    store = ResultsStore()
    full = fake_status("fraud")
    store.publish(full)
    registry, _, _, _ = build(store)
    assert full.last_result is not None
    amount_only = dataclasses.replace(
        full.last_result, features=tuple(full.last_result.features)[:1]
    )
    store.publish(dataclasses.replace(full, last_result=amount_only, threshold_values={}))
    labels = {"model": "fraud", "feature": "country"}
    assert registry.get_sample_value("driftmon_feature_drifted", labels) is None
    assert registry.get_sample_value("driftmon_drift_threshold", {**labels, "test": "psi"}) is None
    assert registry.get_sample_value("driftmon_feature_drifted", {**labels, "feature": "amount"})


def test_model_before_its_first_evaluation() -> None:
    store = ResultsStore()
    capturing = dataclasses.replace(
        fake_status("fraud", with_result=False),
        reference_state="capturing",
        alert_state="ok",
        drifted=False,
    )
    store.publish(capturing)
    registry, _, _, _ = build(store)
    assert registry.get_sample_value("driftmon_reference_ready", {"model": "fraud"}) == 0
    assert registry.get_sample_value("driftmon_alert_state", {"model": "fraud"}) == 0
    assert (
        registry.get_sample_value("driftmon_last_evaluation_timestamp_seconds", {"model": "fraud"})
        is None
    )
    assert registry.get_sample_value("driftmon_features_drifted", {"model": "fraud"}) is None


def test_second_metrics_in_one_registry_is_refused() -> None:
    registry, _, store, health = build()
    with pytest.raises(ValueError, match="Duplicated"):
        Metrics(registry, store, health, invalid_reasons=REASONS)


def test_last_event_times_of_a_batch_are_one_table_update_read_at_scrape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry, metrics, _, _ = build()
    metrics.bind_models([f"m{i}" for i in range(300)])

    def no_per_model_call(*_: object) -> None:
        raise AssertionError("a prometheus call per model in the consume loop")

    monkeypatch.setattr("prometheus_client.Gauge.set", no_per_model_call)
    metrics.note_last_events({f"m{i}": 1.7e9 + i for i in range(0, 300, 2)})
    metrics.note_last_events({"m0": 1.8e9})
    family = "driftmon_last_event_timestamp_seconds"
    assert registry.get_sample_value(family, {"model": "m0"}) == 1.8e9
    assert registry.get_sample_value(family, {"model": "m298"}) == 1.7e9 + 298
    assert registry.get_sample_value(family, {"model": "m1"}) == 0.0  # no event yet
