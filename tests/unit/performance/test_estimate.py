"""CBPE: isotonic calibration, and whether the estimate tracks realised performance.

Stated tolerance (README and the estimate module): on windows of 5,000 predictions whose
scores keep their reference relation to the labels (covariate shift only), the estimated
accuracy and ROC AUC are within 0.03 of the realised ones, precision/recall/F1 within 0.04.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.isotonic import IsotonicRegression

from monitor.errors import CheckpointError
from monitor.performance.estimate import IsotonicCalibrator, PerformanceEstimator
from monitor.performance.metrics import Task, binary_metrics, multiclass_metrics

TOLERANCE = {"accuracy": 0.03, "roc_auc": 0.03, "precision": 0.04, "recall": 0.04, "f1": 0.04}


def binary_scenario(rng, n, *, scale=1.0, boundary=0.0):
    """x ~ N(0, scale); true P(y=1|x) = sigmoid(3 (x - boundary)); the model reports the
    under-confident sigmoid(1.5 x). ``scale`` is covariate shift, ``boundary`` concept shift."""
    x = rng.normal(0.0, scale, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-3 * (x - boundary)))).astype(float)
    return 1 / (1 + np.exp(-1.5 * x)), y


def multiclass_scenario(rng, n, *, scale=1.0, concept=False):
    x = rng.normal(0.0, scale, (n, 3))
    proba = np.exp(2 * x)
    proba /= proba.sum(axis=1, keepdims=True)
    truth = np.exp(3 * (x[:, [1, 2, 0]] if concept else x))
    truth /= truth.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(truth, axis=1)).sum(axis=1)
    return proba, y


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 20).map(lambda i: i / 20), st.integers(0, 1)),
        min_size=1,
        max_size=60,
    )
)
def test_isotonic_matches_sklearn(rows):
    s = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows], dtype=float)
    cal = IsotonicCalibrator.fit(s, y)
    ref = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(s, y)
    grid = np.linspace(-0.1, 1.1, 49)
    np.testing.assert_allclose(cal(grid), ref.predict(grid), atol=1e-12)
    assert np.all(np.diff(cal.y) >= 0)


def test_covariate_shift_is_tracked():
    rng = np.random.default_rng(20240501)
    est = PerformanceEstimator.fit(Task.BINARY, *binary_scenario(rng, 20_000))
    realised_accuracy = []
    for scale in (1.0, 0.6, 0.3, 0.15):  # inputs crowd the boundary: accuracy falls
        scores, labels = binary_scenario(rng, 5_000, scale=scale)  # labels withheld below
        estimated = est.estimate(scores)
        realised = binary_metrics(labels, scores)
        realised_accuracy.append(realised["accuracy"])
        for metric, tol in TOLERANCE.items():
            assert abs(estimated[metric] - realised[metric]) <= tol, (scale, metric)
    assert realised_accuracy[0] - realised_accuracy[-1] > 0.2  # the shift does hurt


def test_concept_shift_is_not_tracked():
    rng = np.random.default_rng(7)
    est = PerformanceEstimator.fit(Task.BINARY, *binary_scenario(rng, 20_000))
    scores, labels = binary_scenario(rng, 5_000, boundary=1.0)  # same inputs, new concept
    estimated = est.estimate(scores)
    realised = binary_metrics(labels, scores)
    assert realised["accuracy"] < 0.72
    assert estimated["accuracy"] - realised["accuracy"] > 0.1  # the estimate stays put
    assert (
        abs(estimated["accuracy"] - est.estimate(binary_scenario(rng, 5_000)[0])["accuracy"]) < 0.02
    )


def test_multiclass_covariate_and_concept_shift():
    rng = np.random.default_rng(11)
    proba, y = multiclass_scenario(rng, 30_000)
    est = PerformanceEstimator.fit(Task.MULTICLASS, proba, y, n_classes=3)
    for scale in (1.0, 0.5, 0.2):
        p2, y2 = multiclass_scenario(rng, 5_000, scale=scale)
        estimated, realised = est.estimate(p2), multiclass_metrics(y2, p2, n_classes=3)
        for metric in ("accuracy", "precision", "recall", "f1"):
            assert abs(estimated[metric] - realised[metric]) <= TOLERANCE[metric], (scale, metric)
    p2, y2 = multiclass_scenario(rng, 5_000, concept=True)
    estimated, realised = est.estimate(p2), multiclass_metrics(y2, p2, n_classes=3)
    assert estimated["accuracy"] - realised["accuracy"] > 0.3


def test_calibrated_scores_give_closed_form_expectations():
    # each score's label rate equals the score, so calibration is the identity and the
    # expected confusion matrix is TP 3, FP 1, FN 1, TN 3
    s = np.repeat([0.25, 0.75], 4)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0], dtype=float)
    est = PerformanceEstimator.fit(Task.BINARY, s, y)
    np.testing.assert_allclose(est.calibrate(s), s)
    got = est.estimate(s)
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert math.isclose(got[metric], 0.75), metric
    assert got["roc_auc"] == binary_metrics(y, s)["roc_auc"]
    assert all(math.isnan(v) for v in est.estimate(np.empty(0)).values())


def test_state_roundtrip_and_errors():
    rng = np.random.default_rng(3)
    proba, y = multiclass_scenario(rng, 2_000)
    est = PerformanceEstimator.fit(Task.MULTICLASS, proba, y, n_classes=3)
    back = PerformanceEstimator.from_state_dict(est.state_dict())
    assert back.estimate(proba) == est.estimate(proba)
    with pytest.raises(CheckpointError):
        PerformanceEstimator.from_state_dict({"task": "binary_classification"})
    with pytest.raises(ValueError, match="classifiers"):
        PerformanceEstimator.fit(Task.REGRESSION, np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="columns"):
        PerformanceEstimator.fit(Task.MULTICLASS, proba[:, :2], y, n_classes=3)
