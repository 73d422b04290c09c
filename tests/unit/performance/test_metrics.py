"""Realised metrics against scikit-learn on the same rows, and the window ring."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from monitor.errors import CheckpointError
from monitor.performance.metrics import (
    PerformanceWindow,
    Task,
    binary_metrics,
    compute_metrics,
    multiclass_metrics,
    regression_metrics,
)


def close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def sk_binary(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    hat = (p >= 0.5).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        auc = skm.roc_auc_score(y, p)
    return {
        "accuracy": skm.accuracy_score(y, hat),
        "precision": skm.precision_score(y, hat, zero_division=0),
        "recall": skm.recall_score(y, hat, zero_division=0),
        "f1": skm.f1_score(y, hat, zero_division=0),
        "roc_auc": auc,
        "log_loss": skm.log_loss(y, p, labels=[0, 1]),
    }


# Scores on a coarse grid make ties common, the case where AUC definitions diverge.
scores = st.one_of(st.integers(0, 10).map(lambda i: i / 10), st.floats(0.0, 1.0))


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), scores), min_size=1, max_size=80))
def test_binary_matches_sklearn(rows):
    y = np.array([r[0] for r in rows])
    p = np.array([r[1] for r in rows])
    got = binary_metrics(y, p)
    want = sk_binary(y, p)
    for name, value in want.items():
        assert close(got[name], float(value)), (name, got[name], value)


@pytest.mark.slow
def test_binary_one_class_auc_is_nan_and_zero_division_is_zero():
    got = binary_metrics(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4]))
    assert math.isnan(got["roc_auc"])
    assert got["precision"] == got["recall"] == got["f1"] == 0.0
    assert got["accuracy"] == 1.0
    assert close(got["log_loss"], skm.log_loss([0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4], labels=[0, 1]))


def test_binary_hard_predictions_and_extreme_probabilities():
    y = np.array([0, 1, 1, 0])
    p = np.array([0.0, 1.0, 0.0, 1.0])  # log loss hits the clip
    assert close(binary_metrics(y, p)["log_loss"], skm.log_loss(y, p))
    assert binary_metrics(y, p)["roc_auc"] == 0.5


@st.composite
def multiclass_rows(draw):
    k = draw(st.integers(2, 5))
    n = draw(st.integers(1, 60))
    y = draw(arrays(np.int64, n, elements=st.integers(0, k - 1)))
    raw = draw(arrays(np.float64, (n, k), elements=st.integers(0, 8).map(float)))
    raw[:, 0] += 0.5  # no all-zero rows
    return k, y, raw / raw.sum(axis=1, keepdims=True)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(multiclass_rows())
def test_multiclass_matches_sklearn(case):
    k, y, proba = case
    got = multiclass_metrics(y, proba, n_classes=k)
    hat = np.argmax(proba, axis=1)
    want = {
        "accuracy": skm.accuracy_score(y, hat),
        "precision": skm.precision_score(y, hat, average="macro", zero_division=0),
        "recall": skm.recall_score(y, hat, average="macro", zero_division=0),
        "f1": skm.f1_score(y, hat, average="macro", zero_division=0),
        "log_loss": skm.log_loss(y, proba, labels=list(range(k))),
    }
    for name, value in want.items():
        assert close(got[name], float(value)), (name, got[name], value)
    assert close(got["roc_auc"], sk_ovr_auc(y, proba, k)), (got["roc_auc"], k)
    hard = multiclass_metrics(y, hat, n_classes=k)
    assert math.isnan(hard["log_loss"]) and math.isnan(hard["roc_auc"])  # no scores
    assert hard["f1"] == got["f1"]


def sk_ovr_auc(y: np.ndarray, proba: np.ndarray, k: int) -> float:
    """scikit-learn's one-vs-rest macro ROC AUC; NaN where it refuses (a class missing)."""
    if len(np.unique(y)) < k:
        return math.nan
    if k == 2:  # scikit-learn takes the positive column for two classes
        return float(skm.roc_auc_score(y, proba[:, 1]))
    return float(skm.roc_auc_score(y, proba, multi_class="ovr", labels=list(range(k))))


@pytest.mark.parametrize("k", [3, 4, 7])
def test_multiclass_roc_auc_is_sklearn_one_vs_rest(k):
    rng = np.random.default_rng(k)
    n = 500
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.0  # an informative model
    logits[: n // 5] = np.round(logits[: n // 5])  # ties inside each column
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    got = multiclass_metrics(y, proba, n_classes=k)["roc_auc"]
    want = skm.roc_auc_score(y, proba, multi_class="ovr")
    assert 0.6 < got and close(got, float(want))
    missing = y != k - 1  # one class absent: undefined, never a crossing
    assert math.isnan(multiclass_metrics(y[missing], proba[missing], n_classes=k)["roc_auc"])


def test_multiclass_rejects_bad_classes():
    with pytest.raises(ValueError, match="class indices"):
        multiclass_metrics(np.array([0, 3]), np.array([0, 1]), n_classes=3)
    with pytest.raises(ValueError, match="columns"):
        multiclass_metrics(np.array([0, 1]), np.ones((2, 2)) / 2, n_classes=3)


finite = st.floats(-1e6, 1e6, allow_nan=False).filter(lambda v: v == 0 or abs(v) > 1e-6)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=60))
def test_regression_matches_sklearn(rows):
    y = np.array([r[0] for r in rows])
    yhat = np.array([r[1] for r in rows])
    got = regression_metrics(y, yhat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        r2 = skm.r2_score(y, yhat)
    want = {
        "mae": skm.mean_absolute_error(y, yhat),
        "rmse": skm.root_mean_squared_error(y, yhat),
        "mape": skm.mean_absolute_percentage_error(y, yhat),
        "r2": r2,
    }
    for name, value in want.items():
        assert close(got[name], float(value)), (name, got[name], value)


def test_regression_constant_labels_and_single_row():
    assert regression_metrics(np.array([2.0, 2.0]), np.array([2.0, 2.0]))["r2"] == 1.0
    assert regression_metrics(np.array([2.0, 2.0]), np.array([1.0, 2.0]))["r2"] == 0.0
    assert math.isnan(regression_metrics(np.array([1.0]), np.array([2.0]))["r2"])


@pytest.mark.parametrize("task", list(Task))
def test_empty_window_is_nan(task):
    pred = np.empty((0, 3)) if task is Task.MULTICLASS else np.empty(0)
    values = compute_metrics(task, np.empty(0), pred, n_classes=3)
    assert values and all(math.isnan(v) for v in values.values())


def test_binary_probability_pairs_use_the_positive_column():
    y = np.array([0, 1, 1])
    pairs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert compute_metrics(Task.BINARY, y, pairs) == binary_metrics(y, pairs[:, 1])


def test_window_slides_and_evaluates_the_last_rows():
    win = PerformanceWindow(events=6, slide=2)
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 15).astype(float)
    p = rng.random(15)
    ts = np.arange(15, dtype=float)
    slides = []
    for start, stop in ((0, 5), (5, 6), (6, 15)):
        for slide in win.feed(p[start:stop], y[start:stop], ts[start:stop], ts[start:stop] + 9):
            slides.append(slide)
            last = slide.last_event
            want = sk_binary(y[max(0, last - 6) : last], p[max(0, last - 6) : last])
            got = win.metrics(Task.BINARY)
            assert all(close(got[m], float(want[m])) for m in want)
    assert [s.slide_index for s in slides] == [0, 1, 2, 3, 4, 5, 6]  # 0-based, like drift
    assert slides[-1].window_events == 6
    assert (slides[-1].first_event, slides[-1].last_event) == (9, 14)
    assert slides[-1].first_prediction_ts == 8.0
    assert slides[-1].last_label_ts == 22.0
    assert win.is_full and win.events == 6 and win.events_seen == 15


def test_window_state_roundtrip_and_errors():
    win = PerformanceWindow(events=4, slide=2, width=3)
    proba = np.full((5, 3), 1 / 3)
    list(win.feed(proba, np.array([0, 1, 2, 0, 1.0]), np.zeros(5), np.ones(5)))
    back = PerformanceWindow.from_state_dict(4, 2, 3, win.state_dict())
    assert back.metrics(Task.MULTICLASS, n_classes=3) == win.metrics(Task.MULTICLASS, n_classes=3)
    assert back.events_seen == 5
    with pytest.raises(CheckpointError):
        PerformanceWindow.from_state_dict(8, 2, 3, win.state_dict())
    with pytest.raises(ValueError, match="multiple"):
        PerformanceWindow(events=5, slide=2)
