"""PerformanceMonitor: spec checks, label encoding, thresholds, alerts, payload, restarts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from monitor.model.alerting import Alerting, AlertRule, AlertState
from monitor.performance import (
    EstimationSpec,
    JoinLimits,
    PerformanceMonitor,
    PerformanceSpec,
    ReferencePerformance,
    Task,
    Threshold,
    encode_labels,
    performance_event,
    performance_payload,
)


def stream(rng, n, *, boundary=0.0, start=0):
    """Binary predictions (score = sigmoid(1.5 x)) and labels from sigmoid(3 (x - b))."""
    x = rng.normal(0.0, 1.0, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-3 * (x - boundary)))).astype(float)
    ids = [f"r{start + i}" for i in range(n)]
    return ids, 1 / (1 + np.exp(-1.5 * x)), y


def spec(**kw):
    base = dict(
        task=Task.BINARY,
        window_events=1000,
        window_slide=250,
        thresholds={
            "roc_auc": Threshold.from_mapping("roc_auc", {"min": 0.8}),
            "accuracy": Threshold.from_mapping("accuracy", {"max_drop": 0.05}),
        },
        join=JoinLimits(max_delay_seconds=86_400, max_pending=100_000),
        estimation=EstimationSpec(
            window_events=1000,
            window_slide=500,
            thresholds={"accuracy": Threshold(max_drop=0.05)},
        ),
    )
    base.update(kw)
    return PerformanceSpec(**base)


@pytest.fixture
def reference():
    rng = np.random.default_rng(0)
    _, p, y = stream(rng, 20_000)
    return ReferencePerformance.build(spec(), p, y)


def test_spec_checks_name_the_key():
    with pytest.raises(ValueError, match=r"performance.metrics: mae not available"):
        PerformanceSpec(task=Task.BINARY, metrics=("mae",))
    with pytest.raises(ValueError, match=r"performance.thresholds: r2"):
        PerformanceSpec(task=Task.BINARY, thresholds={"r2": Threshold(min=0.1)})
    with pytest.raises(ValueError, match="use max or max_rise"):
        Threshold.from_mapping("log_loss", {"min": 0.1})
    with pytest.raises(ValueError, match="not offered for regression"):
        PerformanceSpec(task=Task.REGRESSION, estimation=EstimationSpec())
    with pytest.raises(ValueError, match="classes"):
        PerformanceSpec(task=Task.MULTICLASS)
    with pytest.raises(ValueError, match="reference"):
        PerformanceMonitor("m", spec())
    assert PerformanceSpec(task=Task.REGRESSION).metrics == ("mae", "rmse", "mape", "r2")


def test_encode_labels():
    binary = PerformanceSpec(task=Task.BINARY, classes=("legit", "fraud"))
    got = encode_labels([1, 0, True, "fraud", "legit", "1", 1.0, 2, None, [1]], binary)
    assert got[:7].tolist() == [1, 0, 1, 1, 0, 1, 1]
    assert np.isnan(got[7:]).all()
    multi = PerformanceSpec(task=Task.MULTICLASS, classes=("a", "b", "7"))
    assert encode_labels(["b", 7, "c"], multi)[:2].tolist() == [1.0, 2.0]
    reg = PerformanceSpec(task=Task.REGRESSION)
    got = encode_labels([1.5, 2, True, "3", float("inf")], reg)
    assert got[:2].tolist() == [1.5, 2.0] and np.isnan(got[2:]).all()


def test_realised_window_matches_sklearn_with_shuffled_delayed_labels(reference):
    rng = np.random.default_rng(1)
    mon = PerformanceMonitor("fraud", spec(), reference)
    ids, p, y = stream(rng, 3000)
    ts = np.arange(3000, dtype=float)
    label_ts = ts + rng.exponential(600.0, 3000)
    results = []
    order = rng.permutation(3000)  # labels in another order, some before predictions
    half = order[:1500]
    _, r = mon.add_labels([ids[i] for i in half], y[half], label_ts[half])
    results += r
    for b in range(0, 3000, 500):
        _, r = mon.add_predictions(ids[b : b + 500], p[b : b + 500], ts[b : b + 500])
        results += r
    rest = order[1500:]
    joined, r = mon.add_labels([ids[i] for i in rest], y[rest], label_ts[rest])
    results += r
    assert len(joined) == 1500
    realised = [x for x in results if x.kind == "realised"]
    assert [x.slide.last_event for x in realised] == [
        1000,
        1250,
        1500,
        1750,
        2000,
        2250,
        2500,
        2750,
        3000,
    ]
    # the last window holds the last 1000 joined rows: the tail of `rest`
    tail = rest[-1000:]
    assert math.isclose(realised[-1].values["roc_auc"], skm.roc_auc_score(y[tail], p[tail]))
    assert realised[-1].values["accuracy"] == skm.accuracy_score(y[tail], p[tail] >= 0.5)
    assert not realised[-1].crossed
    estimated = [x for x in results if x.kind == "estimated"]
    assert [x.slide.last_event for x in estimated] == [1000, 1500, 2000, 2500, 3000]
    status = mon.status()
    assert status.labels_joined_total == 3000 and status.pending_predictions == 0
    assert status.estimated and abs(status.estimated["accuracy"] - status.values["accuracy"]) < 0.06


def test_concept_shift_crosses_and_enters_the_alert_lifecycle(reference):
    rng = np.random.default_rng(2)
    mon = PerformanceMonitor("fraud", spec(), reference)
    alerting = Alerting(
        "fraud",
        AlertRule(min_features=1, consecutive=2, cooldown_seconds=0),
        mon.alert_thresholds("realised"),
    )
    events = []
    start = 0
    for boundary in (0.0, 0.0, 1.2, 1.2, 1.2):
        ids, p, y = stream(rng, 1000, boundary=boundary, start=start)
        ts = np.arange(start, start + 1000, dtype=float)
        start += 1000
        mon.add_predictions(ids, p, ts)
        _, results = mon.add_labels(ids, y, ts + 3600)
        for res in results:
            outcome = alerting.observe(
                res.as_drift_result(), at=res.slide.last_label_ts, slide_index=res.slide.slide_index
            )
            if outcome.event is not None:
                events.append(performance_event(outcome.event, res))
    assert alerting.status.state is AlertState.FIRING
    (event,) = events
    assert event.kind == "performance"
    crossed = {(d.feature, d.test) for d in event.drifted_features}
    assert ("realised.accuracy", "max_drop") in crossed
    payload = event.extra["performance"]
    json.dumps(event.to_dict(), allow_nan=False)
    drop = next(c for c in payload["crossed"] if c["metric"] == "accuracy")
    assert drop["from"] == pytest.approx(reference.values["accuracy"])
    assert drop["from"] - drop["to"] > 0.05 and drop["limit"] == 0.05
    assert payload["window"]["unit"] == "labelled_predictions"
    assert payload["window"]["events"] == 1000
    assert payload["window"]["label_time_end"] > payload["window"]["prediction_time_end"]


def test_estimated_threshold_fires_before_labels(reference):
    rng = np.random.default_rng(3)
    mon = PerformanceMonitor("fraud", spec(), reference)
    x = rng.normal(0.0, 0.2, 2000)  # covariate shift towards the boundary, no labels at all
    _, results = mon.add_predictions(
        [f"u{i}" for i in range(2000)], 1 / (1 + np.exp(-1.5 * x)), np.arange(2000.0)
    )
    assert results and all(r.kind == "estimated" for r in results)
    crossing = results[-1].crossed[0]
    assert (crossing.metric, crossing.rule) == ("accuracy", "max_drop")
    payload = performance_payload(results[-1])
    assert payload["kind"] == "estimated" and payload["window"]["label_time_start"] is None
    assert mon.status().labels_total == 0


def test_nan_metric_never_crosses(reference):
    mon = PerformanceMonitor("fraud", spec(window_events=4, window_slide=4), reference)
    ids = list("abcd")
    mon.add_predictions(ids, np.array([0.9, 0.8, 0.7, 0.6]), np.zeros(4))
    _, (res,) = mon.add_labels(ids, np.ones(4), np.ones(4))  # one class: AUC undefined
    assert math.isnan(res.values["roc_auc"])
    assert all(c.metric != "roc_auc" for c in res.crossed)


def test_invalid_labels_are_counted(reference):
    mon = PerformanceMonitor("fraud", spec(), reference)
    mon.add_labels(["a", "b", "c"], [1, "maybe", None], np.zeros(3))
    assert mon.status().invalid_labels == 2 and mon.status().pending_labels == 1


def test_restart_from_state_continues_identically(reference):
    rng = np.random.default_rng(4)
    ids, p, y = stream(rng, 4000)
    ts = np.arange(4000, dtype=float)
    a = PerformanceMonitor("fraud", spec(), reference)
    a.add_predictions(ids[:2500], p[:2500], ts[:2500])
    a.add_labels(ids[:1300], y[:1300], ts[:1300] + 5)
    b = PerformanceMonitor.from_state_dict("fraud", spec(), reference, a.state_dict())
    outs = []
    for mon in (a, b):
        _, r1 = mon.add_predictions(ids[2500:], p[2500:], ts[2500:])
        _, r2 = mon.add_labels(ids[1300:], y[1300:], ts[1300:] + 5)
        outs.append([(r.kind, r.slide, dict(r.values)) for r in r1 + r2])
    assert repr(outs[0]) == repr(outs[1]) and len(outs[0]) > 3  # repr: NaN label times
    back = ReferencePerformance.from_dict(json.loads(json.dumps(reference.to_dict())))
    assert back.values == reference.values
    assert back.estimator is not None and reference.estimator is not None
    assert back.estimator.estimate(p) == reference.estimator.estimate(p)


def test_multiclass_and_regression_monitors():
    rng = np.random.default_rng(5)
    proba = rng.dirichlet(np.ones(3), 600)
    y = rng.integers(0, 3, 600).astype(float)
    mc = PerformanceSpec(
        task=Task.MULTICLASS,
        classes=("a", "b", "c"),
        prediction_width=3,
        window_events=200,
        window_slide=100,
    )
    mon = PerformanceMonitor("m", mc)
    ids = [str(i) for i in range(600)]
    mon.add_predictions(ids, proba, np.zeros(600))
    _, res = mon.add_labels(ids, y, np.ones(600))
    last = res[-1].values
    assert math.isclose(last["f1"], skm.f1_score(y[-200:], proba[-200:].argmax(1), average="macro"))
    assert math.isclose(last["log_loss"], skm.log_loss(y[-200:], proba[-200:], labels=[0, 1, 2]))
    reg = PerformanceMonitor(
        "r", PerformanceSpec(task=Task.REGRESSION, window_events=100, window_slide=50)
    )
    target = rng.normal(size=100)
    reg.add_labels(ids[:100], target, np.zeros(100))
    _, res = reg.add_predictions(ids[:100], target + 0.1, np.zeros(100))
    assert math.isclose(res[-1].values["mae"], 0.1)
