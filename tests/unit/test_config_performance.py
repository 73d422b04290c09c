"""The `task` and `performance` keys of a model: every key, its errors and hints."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from monitor.config import (
    ESTIMATED_METRICS,
    PERFORMANCE_METRICS,
    ModelConfig,
    validate_config,
)
from monitor.errors import ConfigError
from monitor.model.performance import performance_spec, prediction_names
from monitor.performance import ESTIMATED_METRICS as CORE_ESTIMATED
from monitor.performance import HIGHER_IS_BETTER, METRICS, Task

MODEL: dict[str, Any] = {
    "reference": "/profiles/fraud.json",
    "window": {"events": 2000, "slide": 200},
    "features": {"amount": {"type": "numeric"}},
    "prediction": {"type": "numeric"},
    "task": "binary_classification",
    "performance": {
        "metrics": ["accuracy", "roc_auc", "log_loss"],
        "window": {"events": 5000, "slide": 500},
        "thresholds": {
            "roc_auc": {"min": 0.8},
            "accuracy": {"max_drop": 0.05},
            "log_loss": {"max_rise": 0.1},
        },
        "join": {"max_delay_seconds": 86400, "max_pending": 1000},
        "estimation": {
            "metrics": ["accuracy", "roc_auc"],
            "window": {"events": 1000, "slide": 100},
            "thresholds": {"accuracy": {"min": 0.7}},
        },
        "decision_threshold": 0.3,
    },
}


def config(**patch: Any) -> dict[str, Any]:
    """A config with MODEL as `fraud`, patched by dotted paths below the model (None
    deletes)."""
    model = copy.deepcopy(MODEL)
    for dotted, value in patch.items():
        node = model
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return {
        "kafka": {"bootstrap_servers": "127.0.0.1:9092", "topics": ["ml.inference"]},
        "models": {"fraud": model},
    }


def model(**patch: Any) -> ModelConfig:
    return validate_config(config(**patch)).models["fraud"]


def one_problem(**patch: Any) -> tuple[str, str, str]:
    with pytest.raises(ConfigError) as info:
        validate_config(config(**patch))
    found = [(p.path, p.message, p.hint) for p in info.value.problems]
    assert len(found) == 1, found
    path, message, hint = found[0]
    assert path.startswith("models.fraud."), path
    return path.removeprefix("models.fraud."), message, hint


def test_tables_match_the_core() -> None:
    assert {Task(t): m for t, m in PERFORMANCE_METRICS.items()} == dict(METRICS)
    assert ESTIMATED_METRICS == CORE_ESTIMATED
    from monitor.config import performance as cfg_module

    assert cfg_module._HIGHER_IS_BETTER == HIGHER_IS_BETTER


def test_every_key_maps_onto_the_core_spec() -> None:
    m = model()
    assert m.task == "binary_classification"
    spec = performance_spec(m)
    assert spec.task is Task.BINARY
    assert spec.metrics == ("accuracy", "roc_auc", "log_loss")
    assert (spec.window_events, spec.window_slide) == (5000, 500)
    assert spec.thresholds["roc_auc"].min == 0.8
    assert spec.thresholds["accuracy"].max_drop == 0.05
    assert spec.thresholds["log_loss"].max_rise == 0.1
    assert (spec.join.max_delay_seconds, spec.join.max_pending) == (86400.0, 1000)
    assert spec.decision_threshold == 0.3
    assert spec.prediction_width == 1
    est = spec.estimation
    assert est is not None
    assert est.metrics == ("accuracy", "roc_auc")
    assert (est.window_events, est.window_slide) == (1000, 100)
    assert est.thresholds["accuracy"].min == 0.7
    assert m.performance is not None
    assert m.performance.relative_thresholds == [
        "thresholds.accuracy",
        "thresholds.log_loss",
    ]


def test_defaults() -> None:
    m = model(performance={})
    spec = performance_spec(m)
    assert spec.metrics == METRICS[Task.BINARY]
    assert (spec.window_events, spec.window_slide) == (5000, 500)
    assert dict(spec.thresholds) == {}
    assert (spec.join.max_delay_seconds, spec.join.max_pending) == (604_800.0, 2_000_000)
    assert spec.estimation is None
    assert spec.decision_threshold == 0.5
    # baseline asks for a calibration even without an estimation section
    est = performance_spec(m, estimation=True).estimation
    assert est is not None and est.metrics == CORE_ESTIMATED
    # a model without the sections is valid and has no performance monitoring
    plain = model(performance=None, task=None)
    assert plain.performance is None and plain.task is None


def test_estimation_defaults() -> None:
    spec = performance_spec(model(**{"performance.estimation": {}}))
    assert spec.estimation is not None
    assert spec.estimation.metrics == CORE_ESTIMATED
    assert (spec.estimation.window_events, spec.estimation.window_slide) == (5000, 500)


def test_probabilities_and_tasks() -> None:
    multi = model(
        task="multiclass_classification",
        prediction={"type": "probabilities", "classes": ["a", "b", "c"]},
        **{"performance.metrics": ["accuracy", "f1", "log_loss"], "performance.thresholds": {}},
    )
    spec = performance_spec(multi)
    assert spec.task is Task.MULTICLASS
    assert spec.classes == ("a", "b", "c") and spec.prediction_width == 3
    assert prediction_names(multi) == ("prediction.a", "prediction.b", "prediction.c")
    with_auc = model(
        task="multiclass_classification",
        prediction={"type": "probabilities", "classes": ["a", "b", "c"]},
        **{"performance.metrics": ["roc_auc"], "performance.thresholds": {"roc_auc": {"min": 0.7}}},
    )
    assert performance_spec(with_auc).metrics == ("roc_auc",)  # one-vs-rest, realised too
    binary = model(prediction={"type": "probabilities", "classes": ["ok", "fraud"]})
    assert performance_spec(binary).prediction_width == 2
    regression = model(
        task="regression",
        performance={"metrics": ["mae", "r2"], "thresholds": {"mae": {"max": 3.0}}},
    )
    assert performance_spec(regression).task is Task.REGRESSION


def test_task_is_checked() -> None:
    path, message, _ = one_problem(task="classification")
    assert path == "task" and "invalid value 'classification'" in message
    path, message, hint = one_problem(task=None)
    assert (path, message) == ("task", "performance monitoring needs the model's task")
    assert "binary_classification" in hint


def test_prediction_must_fit_the_task() -> None:
    path, message, hint = one_problem(prediction=None)
    assert path == "prediction" and "needs the model's prediction" in message
    path, message, hint = one_problem(prediction={"type": "categorical"})
    assert (path, message) == (
        "prediction",
        "a categorical prediction does not fit task binary_classification",
    )
    assert "positive" in hint
    path, _, hint = one_problem(
        prediction={"type": "probabilities", "classes": ["a", "b", "c"]},
    )
    assert path == "prediction" and "two classes" in hint
    path, _, hint = one_problem(task="multiclass_classification")
    assert path == "prediction" and "probabilities" in hint
    path, _, hint = one_problem(
        task="regression", prediction={"type": "probabilities", "classes": ["a", "b"]}
    )
    assert path == "prediction" and "numeric" in hint


def test_metrics_key() -> None:
    path, message, hint = one_problem(**{"performance.metrics": ["acuracy"]})
    assert (path, message) == (
        "performance.metrics",
        "'acuracy' is not among the binary_classification metrics",
    )
    assert "did you mean 'accuracy'?" in hint
    path, message, _ = one_problem(**{"performance.metrics": ["accuracy", "accuracy"]})
    assert (path, message) == ("performance.metrics", "a metric is listed twice")
    path, message, _ = one_problem(**{"performance.metrics": []})
    assert (path, message) == ("performance.metrics", "must not be empty")
    path, message, hint = one_problem(task="regression")
    assert path == "performance.metrics" and "regression metrics" in message
    assert "mae" in hint


def test_window_key() -> None:
    path, message, hint = one_problem(**{"performance.window": {"events": 100, "slide": 30}})
    assert (path, message) == ("performance.window.slide", "slide 30 does not divide events 100")
    assert "25" in hint
    path, message, _ = one_problem(**{"performance.window": {"events": 10, "slide": 20}})
    assert path == "performance.window.slide" and "larger than the window" in message
    path, _, _ = one_problem(**{"performance.window.events": 0})
    assert path == "performance.window.events"
    path, message, hint = one_problem(**{"performance.window.seconds": 60})
    assert (path, message) == ("performance.window.seconds", "unknown key 'seconds'")
    assert "events, slide" in hint


def test_thresholds_key() -> None:
    path, message, hint = one_problem(**{"performance.thresholds.roc_auc": {"max": 0.9}})
    assert path == "performance.thresholds.roc_auc"
    assert message == "max cannot apply to roc_auc (higher is better)"
    assert "`min` or `max_drop`" in hint
    path, message, hint = one_problem(**{"performance.thresholds.log_loss": {"min": 0.1}})
    assert message == "min cannot apply to log_loss (lower is better)"
    assert "`max` or `max_rise`" in hint
    path, message, _ = one_problem(**{"performance.thresholds.roc_auc": {}})
    assert message == "no limit cannot apply to roc_auc (higher is better)"
    path, message, hint = one_problem(**{"performance.thresholds.f1": {"min": 0.5}})
    assert (path, message) == (
        "performance.thresholds.f1",
        "threshold on 'f1', which is not monitored",
    )
    assert "accuracy" in hint
    path, _, _ = one_problem(**{"performance.thresholds.accuracy": {"max_drop": -0.1}})
    assert path == "performance.thresholds.accuracy.max_drop"
    path, message, hint = one_problem(**{"performance.thresholds.accuracy": {"drop": 0.1}})
    assert (path, message) == ("performance.thresholds.accuracy.drop", "unknown key 'drop'")
    assert "max_drop" in hint


def test_relative_thresholds_need_a_profile_reference() -> None:
    path, message, hint = one_problem(reference={"capture_events": 1000})
    assert path == "performance.thresholds.accuracy"
    assert "captured reference" in message and "driftmon baseline" in hint
    ok = model(
        reference={"capture_events": 1000},
        **{"performance.thresholds": {"roc_auc": {"min": 0.8}}},
    )
    assert ok.performance is not None


def test_join_key() -> None:
    path, _, _ = one_problem(**{"performance.join.max_delay_seconds": 0})
    assert path == "performance.join.max_delay_seconds"
    path, _, _ = one_problem(**{"performance.join.max_pending": 0})
    assert path == "performance.join.max_pending"
    path, message, hint = one_problem(**{"performance.join.max_delay": 5})
    assert (path, message) == ("performance.join.max_delay", "unknown key 'max_delay'")
    assert "did you mean 'max_delay_seconds'?" in hint


def test_estimation_key() -> None:
    path, message, hint = one_problem(**{"performance.estimation.metrics": ["log_loss"]})
    assert (path, message) == (
        "performance.estimation.metrics",
        "'log_loss' is not among the estimated metrics",
    )
    assert "roc_auc" in hint
    path, message, _ = one_problem(**{"performance.estimation.thresholds.f1": {"min": 0.5}})
    assert path == "performance.estimation.thresholds.f1" and "not monitored" in message
    path, message, _ = one_problem(**{"performance.estimation.window": {"events": 9, "slide": 2}})
    assert path == "performance.estimation.window.slide"
    path, message, hint = one_problem(
        task="regression",
        performance={"estimation": {}},
    )
    assert (path, message) == (
        "performance.estimation",
        "performance estimation is not offered for regression",
    )
    assert "docs/PERFORMANCE.md" in hint
    path, message, _ = one_problem(
        reference={"capture_events": 1000},
        performance={"estimation": {"thresholds": {"accuracy": {"max_drop": 0.1}}}},
    )
    assert path == "performance.estimation.thresholds.accuracy"


def test_decision_threshold_key() -> None:
    path, _, _ = one_problem(**{"performance.decision_threshold": 1.0})
    assert path == "performance.decision_threshold"
    path, _, _ = one_problem(**{"performance.decision_threshold": 0})
    assert path == "performance.decision_threshold"


def test_unknown_performance_key_lists_the_valid_ones() -> None:
    path, message, hint = one_problem(**{"performance.metric": ["accuracy"]})
    assert (path, message) == ("performance.metric", "unknown key 'metric'")
    assert "did you mean 'metrics'?" in hint


def test_env_overlay_reaches_performance_keys() -> None:
    from monitor.config.env import apply_env

    data = config()
    var = "DRIFTMON_MODELS__FRAUD__PERFORMANCE__JOIN__MAX_PENDING"
    applied = apply_env(data, {var: "42"})
    assert applied == {"models.fraud.performance.join.max_pending": var}
    perf = validate_config(data).models["fraud"].performance
    assert perf is not None and perf.join.max_pending == 42
