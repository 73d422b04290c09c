"""``performance.predicted_label``: the model's own predicted class instead of
``score >= decision_threshold`` or the arg-max; config checks, metrics, pipeline."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from sklearn import metrics as skm

from monitor.config import validate_config
from monitor.errors import ConfigError
from monitor.performance.metrics import binary_metrics, multiclass_metrics
from monitor.pipeline import Pipeline
from monitor.stats import FeatureKind, build_profile
from tests.unit.test_pipeline_performance import DRIFT_THRESHOLDS, T0


def config(task: str = "binary_classification", **perf: Any) -> dict[str, Any]:
    multiclass = task == "multiclass_classification"
    return {
        "kafka": {"bootstrap_servers": "127.0.0.1:9092", "topics": ["ml.inference"]},
        "models": {
            "m": {
                "reference": "/unused/profile.json",
                "window": {"events": 100, "slide": 50},
                "features": {
                    "amount": {"type": "numeric"},
                    "y_pred": {"type": "categorical" if multiclass else "numeric"},
                },
                "prediction": {"type": "probabilities", "classes": ["a", "b", "c"]}
                if multiclass
                else {"type": "numeric"},
                "task": task,
                "performance": {
                    "window": {"events": 200, "slide": 100},
                    "predicted_label": "y_pred",
                    **perf,
                },
                "thresholds": dict.fromkeys(DRIFT_THRESHOLDS),
            }
        },
    }


def problem(data: dict[str, Any]) -> tuple[str, str, str]:
    with pytest.raises(ConfigError) as info:
        validate_config(data)
    (found,) = info.value.problems
    return found.path, found.message, found.hint


def test_config_names_the_key_and_the_fix() -> None:
    assert validate_config(config()).models["m"].performance.predicted_label == "y_pred"
    path, message, hint = problem(config(predicted_label="y_hat"))
    assert path == "models.m.performance.predicted_label"
    assert "'y_hat'" in message and "`amount`, `y_pred`" in hint
    path, message, hint = problem(config(decision_threshold=0.3))
    assert path == "models.m.performance.predicted_label" and "not both" in hint
    data = config("regression")
    data["models"]["m"]["performance"]["metrics"] = ["mae"]
    path, message, _ = problem(data)
    assert path == "models.m.performance.predicted_label" and "regression" in message


def test_binary_metrics_use_the_given_classes() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300).astype(float)
    scores = rng.random(300)
    hat = rng.integers(0, 2, 300).astype(float)  # unrelated to the scores on purpose
    got = binary_metrics(y, scores, predicted=hat)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, hat))
    assert got["precision"] == pytest.approx(skm.precision_score(y, hat, zero_division=0))
    assert got["recall"] == pytest.approx(skm.recall_score(y, hat, zero_division=0))
    assert got["f1"] == pytest.approx(skm.f1_score(y, hat, zero_division=0))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, scores))  # still the scores
    proba = rng.dirichlet(np.ones(3), 300)
    yk = rng.integers(0, 3, 300)
    hk = rng.integers(0, 3, 300)
    m = multiclass_metrics(yk, proba, n_classes=3, predicted=hk)
    assert m["f1"] == pytest.approx(skm.f1_score(yk, hk, average="macro", zero_division=0))
    with pytest.raises(ValueError, match="predicted classes"):
        multiclass_metrics(yk, proba, n_classes=3, predicted=hk + 1)


def event(i: int, features: dict[str, Any], prediction: Any, label: Any) -> bytes:
    return orjson.dumps(
        {
            "model": "m",
            "id": f"r{i}",
            "ts": T0 + i,
            "features": features,
            "prediction": prediction,
            "label": label,
        }  # fmt: skip
    )


def profile(names: dict[str, FeatureKind]) -> Any:
    rng = np.random.default_rng(0)
    data: dict[str, Any] = {
        n: (rng.normal(size=500) if k is FeatureKind.NUMERIC else np.array(["a", "b"] * 250))
        for n, k in names.items()
    }
    return build_profile("m", data, names)


def test_binary_pipeline_uses_the_model_class_and_counts_unusable_ones() -> None:
    rng = np.random.default_rng(2)
    n = 420
    y = rng.integers(0, 2, n)
    scores = rng.random(n)
    hat = (rng.random(n) < 0.8) * y + (rng.random(n) < 0.2) * (1 - y)  # mostly right
    lines = []
    for i in range(n):
        feats: dict[str, Any] = {"amount": 1.0, "y_pred": int(hat[i])}
        if i % 21 == 20:
            feats["y_pred"] = 7 if i % 2 else None  # not a class / missing
        lines.append(event(i, feats, float(scores[i]), int(y[i])))
    kinds = {"amount": FeatureKind.NUMERIC, "y_pred": FeatureKind.NUMERIC,
             "prediction": FeatureKind.NUMERIC}  # fmt: skip
    pipeline = Pipeline(validate_config(config()), {"m": profile(kinds)})
    pipeline.process(lines, np.zeros(n))
    mon = pipeline.monitors["m"].performance
    assert mon is not None
    bad = [i for i in range(n) if i % 21 == 20]
    assert mon.monitor.invalid_predicted_labels == len(bad)
    good = np.array([i for i in range(n) if i % 21 != 20])
    last = good[-200:]
    perf = pipeline.status("m").performance
    assert perf is not None
    assert perf.values["accuracy"] == pytest.approx(skm.accuracy_score(y[last], hat[last]))
    assert perf.values["roc_auc"] == pytest.approx(skm.roc_auc_score(y[last], scores[last]))
    # the score rule would have said something else: the field is what was used
    assert perf.values["accuracy"] != pytest.approx(
        skm.accuracy_score(y[last], scores[last] >= 0.5)
    )


def test_multiclass_pipeline_reads_class_names() -> None:
    rng = np.random.default_rng(3)
    n, names = 300, ["a", "b", "c"]
    y = rng.integers(0, 3, n)
    proba = rng.dirichlet(np.ones(3), n)
    hat = np.where(rng.random(n) < 0.7, y, rng.integers(0, 3, n))
    lines = [
        event(
            i,
            {"amount": 1.0, "y_pred": names[hat[i]]},
            dict(zip(names, proba[i].tolist(), strict=True)),
            names[y[i]],
        )  # fmt: skip
        for i in range(n)
    ]
    kinds = {"amount": FeatureKind.NUMERIC, "y_pred": FeatureKind.CATEGORICAL}
    kinds |= {f"prediction.{c}": FeatureKind.NUMERIC for c in names}
    pipeline = Pipeline(validate_config(config("multiclass_classification")), {"m": profile(kinds)})
    pipeline.process(lines, np.zeros(n))
    perf = pipeline.status("m").performance
    assert perf is not None
    last = slice(n - 200, n)
    want = skm.accuracy_score(y[last], hat[last])
    assert perf.values["accuracy"] == pytest.approx(want)
    assert perf.values["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y[last], proba[last], multi_class="ovr")
    )
