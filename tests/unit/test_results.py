"""ResultsStore swaps and the /status document."""

from __future__ import annotations

import dataclasses
import json

import pytest

from monitor.model.status import ModelStatus
from monitor.publish.health import Health
from monitor.publish.results import ResultsStore
from monitor.publish.status import status_document
from tests.support.results import fake_status


def test_publish_swaps_without_mutating_earlier_snapshots() -> None:
    store = ResultsStore()
    before = store.snapshot()
    first = fake_status("fraud")
    store.publish(first)
    taken = store.snapshot()
    assert before == {}
    assert taken["fraud"] is first
    second = dataclasses.replace(first, evaluations=8)
    store.publish(second, fake_status("churn"))
    assert taken["fraud"] is first  # a reader's snapshot never changes under it
    assert set(store.snapshot()) == {"fraud", "churn"}
    assert store.get("fraud") is second
    with pytest.raises(TypeError):
        store.snapshot()["x"] = first  # type: ignore[index]


def test_status_validates_enums() -> None:
    with pytest.raises(ValueError, match="alert_state"):
        dataclasses.replace(fake_status(), alert_state="burning")
    with pytest.raises(ValueError, match="reference_state"):
        dataclasses.replace(fake_status(), reference_state="ready")


def test_status_document_shape() -> None:
    store = ResultsStore()
    store.publish(fake_status("fraud"), fake_status("idle", with_result=False))
    health = Health()
    health.set("config_loaded", True)
    doc = status_document(store, health)
    # Strict JSON: NaN scores must have become null.
    doc = json.loads(json.dumps(doc, allow_nan=False))

    assert doc["ready"] is False
    assert "kernels_warm" in doc["reasons"]
    assert doc["conditions"]["config_loaded"] is True
    fraud = doc["models"]["fraud"]
    assert fraud["reference"] == {"state": "loaded", "ready": True, "events": 50000}
    assert fraud["window"] == {"events": 20000, "capacity": 20000, "fill_ratio": 1.0}
    assert fraud["evaluations"] == 7
    assert fraud["alert"] == {
        "state": "firing",
        "drifted": True,
        "consecutive": 2,
        "last_trigger_time": 1764150000.5,
        "retrain_grace_seconds": 0.0,
        "retrain_grace_until": None,
        "retrain_suppressed": 0,
    }
    last = fraud["last_evaluation"]
    assert last["time"] == 1764150000.5
    assert last["window_events"] == 20000
    assert last["drifted_features"] == ["amount"]
    assert list(last["features"]) == ["amount", "country"]
    amount = last["features"]["amount"]
    assert amount == {
        "kind": "numeric",
        "n": 19800,
        "missing_ratio": 0.01,
        "scores": {"psi": 0.41, "ks": 0.12, "js": 0.08},
        "p_values": {"ks": 1e-9},
        # Keyed like `crossed` and the config: the ks threshold is on its p-value.
        "thresholds": {"psi": 0.2, "ks_p_value": 0.001, "js": 0.1, "missing_ratio": 0.1},
        # Each threshold with the quantity it is compared with, named.
        "checks": {
            "psi": {
                "test": "psi",
                "compared": "score",
                "score": 0.41,
                "score_threshold": 0.2,
                "crossed": True,
            },
            "ks_p_value": {
                "test": "ks",
                "compared": "p_value",
                "p_value": 1e-9,
                "p_value_threshold": 0.001,
                "crossed": True,
            },
            "js": {
                "test": "js",
                "compared": "score",
                "score": 0.08,
                "score_threshold": 0.1,
                "crossed": False,
            },
            "missing_ratio": {
                "test": "missing_ratio",
                "compared": "missing_ratio_increase",
                "missing_ratio_increase": pytest.approx(0.006),
                "missing_ratio_increase_threshold": 0.1,
                "crossed": False,
            },
        },
        "crossed": ["psi", "ks_p_value"],
        "drifted": True,
        "absent": False,
        "enough_data": True,
    }
    assert last["absent_features"] == []
    country = last["features"]["country"]
    assert country["checks"]["chi2_p_value"]["p_value"] is None  # NaN: too little data
    assert set(country["thresholds"]) == {"psi", "js", "chi2_p_value", "missing_ratio"}
    assert country["scores"]["chi2"] is None
    assert country["p_values"] == {"chi2": None}
    assert country["enough_data"] is False
    assert doc["models"]["idle"]["last_evaluation"] is None


def test_model_status_accepts_the_documented_fields() -> None:
    names = [f.name for f in dataclasses.fields(ModelStatus)]
    assert names == [
        "model",
        "reference_state",
        "reference_events",
        "window_events",
        "window_capacity",
        "window_fill_ratio",
        "evaluations",
        "last_evaluation_time",
        "last_result",
        "drifted",
        "consecutive",
        "alert_state",
        "last_trigger_time",
        "threshold_values",
        "events_total",
        "late_events",
        "retrain_triggers",
        "performance",
        "version",
        "versions",
        "ignored_version_events",
        "calibration",
        "retrain_suppressed",
        "retrain_grace_seconds",
        "retrain_grace_until",
        "min_effect",
        "absent_features",
        "check_thresholds",
        "reference_missing",
        "sequential_alarms",
    ]


def test_performance_document_renders_nan_as_null() -> None:
    from monitor.publish.status import model_document
    from tests.support.results import fake_performance

    plain = model_document(fake_status())
    assert "performance" not in plain
    doc = model_document(dataclasses.replace(fake_status(), performance=fake_performance()))
    perf = doc["performance"]
    assert perf["values"] == {"accuracy": 0.91, "roc_auc": 0.83, "log_loss": None}
    assert perf["reference"]["accuracy"] == 0.95
    assert perf["join"] == {
        "pending_predictions": 120,
        "pending_labels": 30,
        "evicted": {"capacity": 0, "expired": 20},
        "duplicate_labels": 3,
        "invalid_labels": 1,
    }
    assert (perf["labels_total"], perf["labels_joined_total"]) == (900, 850)
    assert perf["alert"] == {"state": "pending", "estimated_state": "ok"}
    assert perf["window"] == {"events": 500, "capacity": 500}
