"""Confidence-based performance estimation (CBPE): expected metrics before labels arrive.

A classifier that emits probabilities says, row by row, how likely each class is. Once
those probabilities are *calibrated* (a row given 0.8 is positive 80 % of the time), the
expected confusion matrix of a window follows from the predictions alone: a row predicted
positive adds ``c`` expected true positives and ``1 - c`` expected false positives, where
``c`` is its calibrated probability. Accuracy, precision, recall and F1 are then ratios of
expected counts, and ROC AUC is the area under the expected ROC curve traced by sorting
the rows by score. The predicted class stays the model's own decision (``score >=
threshold`` or the arg-max), so the estimate describes the model as deployed.

Calibration is fitted on reference data (predictions with labels) by isotonic regression:
the pool-adjacent-violators algorithm over the reference scores, interpolated linearly
between the fitted points and clipped at the ends. Multiclass models get one isotonic map
per class (one-vs-rest), and the calibrated rows are renormalised to sum to one.

When it works and when it cannot:

* It tracks realised performance under **covariate shift**: the inputs move (say, more
  rows close to the decision boundary) but ``P(label | score)`` stays what it was on the
  reference. The calibrated probabilities then remain right, and the expected metrics
  move with the realised ones. ``tests/unit/performance/test_estimate.py`` checks this on
  a seeded scenario within a stated tolerance.
* It cannot see **concept shift**: when ``P(label | score)`` itself changes, the scores
  and hence the estimate stay where they were while realised accuracy falls. The test
  suite checks that the estimate does *not* follow in that case; the realised metrics
  (once labels arrive) and the drift tests on inputs are what catch it.
* It also assumes the reference is large and representative enough to calibrate on
  (a few thousand rows with both classes); the fit is only as good as that sample.

Why there is no estimate for regression: a regression model emits a point prediction,
with no statement of its own uncertainty, so there is nothing to take an expectation
over. Estimating its error without labels needs a second model of the residuals as a
function of the inputs (direct loss estimation), trained on the reference, carried in the
daemon and refitted with the model; it fails under concept shift for the same reason as
above. driftmon leaves that to the training pipeline and monitors regression models
through realised metrics and input drift.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.errors import CheckpointError
from monitor.performance import kernels as k
from monitor.performance.kernels import _expected_binary, _expected_multiclass, _pav
from monitor.performance.metrics import Task

__all__ = ["ESTIMATED_METRICS", "IsotonicCalibrator", "PerformanceEstimator"]

#: Metrics the estimator produces, for binary and multiclass tasks alike.
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


@dataclass(frozen=True)
class IsotonicCalibrator:
    """A non-decreasing map from scores to probabilities: ``x`` breakpoints, ``y`` values.

    >>> import numpy as np
    >>> cal = IsotonicCalibrator.fit(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 1, 0, 1]))
    >>> cal.x.tolist(), cal.y.tolist()
    ([0.1, 0.2, 0.3, 0.4], [0.0, 0.5, 0.5, 1.0])
    >>> cal(np.array([0.0, 0.15, 0.9])).round(6).tolist()
    [0.0, 0.25, 1.0]
    """

    x: np.ndarray
    y: np.ndarray

    @classmethod
    def fit(cls, scores: np.ndarray, labels: np.ndarray) -> IsotonicCalibrator:
        """Isotonic least-squares fit of 0/1 ``labels`` on ``scores`` (PAV, tied scores
        pooled first)."""
        s = np.asarray(scores, dtype=np.float64)
        t = np.asarray(labels, dtype=np.float64)
        keep = np.isfinite(s) & np.isfinite(t)
        s, t = s[keep], t[keep]
        if s.size == 0:
            raise ValueError("calibration needs at least one finite score with a label")
        x, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
        means = np.bincount(inverse, weights=t) / counts
        fitted = _pav(np.ascontiguousarray(means), counts.astype(np.float64))
        return cls(x=x, y=np.clip(fitted, 0.0, 1.0))

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (linear between breakpoints, clipped outside)."""
        out: np.ndarray = np.interp(np.asarray(scores, dtype=np.float64), self.x, self.y)
        return out


class PerformanceEstimator:
    """Expected binary or multiclass metrics of unlabelled predictions (CBPE).

    Binary predictions are positive-class scores (``(n,)``, or ``(n, 2)`` rows whose
    second column is used); multiclass predictions are ``(n, k)`` probability rows.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.random(20_000)
    >>> y = (rng.random(20_000) < p).astype(float)         # calibrated by construction
    >>> est = PerformanceEstimator.fit(Task.BINARY, p, y)
    >>> round(est.estimate(p)["accuracy"], 2)
    0.75
    """

    def __init__(
        self,
        task: Task,
        calibrators: tuple[IsotonicCalibrator, ...],
        *,
        threshold: float = 0.5,
    ) -> None:
        if task is Task.REGRESSION:
            raise ValueError(
                "performance estimation is offered for classifiers with probabilities only"
            )
        expected = 1 if task is Task.BINARY else len(calibrators)
        if len(calibrators) != expected or (task is Task.MULTICLASS and expected < 2):
            raise ValueError(f"{task} needs {expected} calibrators, got {len(calibrators)}")
        self.task = task
        self.calibrators = calibrators
        self.threshold = threshold

    @property
    def n_classes(self) -> int:
        return 2 if self.task is Task.BINARY else len(self.calibrators)

    @classmethod
    def fit(
        cls,
        task: Task,
        predictions: np.ndarray,
        labels: np.ndarray,
        *,
        n_classes: int = 2,
        threshold: float = 0.5,
    ) -> PerformanceEstimator:
        """Calibrate on reference predictions and labels (0/1, or class indices)."""
        y = np.asarray(labels, dtype=np.float64)
        if task is Task.BINARY:
            scores = _binary_scores(predictions)
            if scores.shape != y.shape:
                raise ValueError("reference predictions and labels differ in length")
            return cls(task, (IsotonicCalibrator.fit(scores, y),), threshold=threshold)
        if task is Task.MULTICLASS:
            proba = np.asarray(predictions, dtype=np.float64)
            if proba.ndim != 2 or proba.shape != (y.shape[0], n_classes):
                raise ValueError(
                    f"multiclass estimation needs probability rows with {n_classes} columns"
                )
            cals = tuple(
                IsotonicCalibrator.fit(proba[:, c], (y == c).astype(np.float64))
                for c in range(n_classes)
            )
            return cls(task, cals, threshold=threshold)
        raise ValueError(
            "performance estimation is offered for classifiers with probabilities only"
        )

    def calibrate(self, predictions: np.ndarray) -> np.ndarray:
        """Calibrated probabilities: ``(n,)`` positive-class (binary) or ``(n, k)`` rows."""
        if self.task is Task.BINARY:
            return self.calibrators[0](_binary_scores(predictions))
        proba = np.asarray(predictions, dtype=np.float64)
        cal = np.column_stack([c(proba[:, i]) for i, c in enumerate(self.calibrators)])
        sums = cal.sum(axis=1, keepdims=True)
        uniform = np.full_like(cal, 1.0 / cal.shape[1])
        return np.where(sums > 0, cal / np.where(sums > 0, sums, 1.0), uniform)

    def estimate(self, predictions: np.ndarray) -> dict[str, float]:
        """Expected metrics of a window of predictions; NaN for an empty window."""
        if self.task is Task.BINARY:
            scores = np.ascontiguousarray(_binary_scores(predictions))
            if scores.size == 0:
                return dict.fromkeys(ESTIMATED_METRICS, math.nan)
            out = np.empty(k.BIN_COLUMNS)
            cal = np.ascontiguousarray(self.calibrators[0](scores))
            _expected_binary(cal, scores, float(self.threshold), out)
            idx = (k.BIN_ACCURACY, k.BIN_PRECISION, k.BIN_RECALL, k.BIN_F1, k.BIN_ROC_AUC)
        else:
            proba = np.ascontiguousarray(predictions, dtype=np.float64)
            if proba.ndim != 2 or proba.shape[1] != self.n_classes:
                raise ValueError(f"estimation needs probability rows of {self.n_classes}")
            if proba.shape[0] == 0:
                return dict.fromkeys(ESTIMATED_METRICS, math.nan)
            out = np.empty(k.MC_COLUMNS)
            _expected_multiclass(np.ascontiguousarray(self.calibrate(proba)), proba, out)
            idx = (k.MC_ACCURACY, k.MC_PRECISION, k.MC_RECALL, k.MC_F1, k.MC_ROC_AUC)
        return {name: float(out[i]) for name, i in zip(ESTIMATED_METRICS, idx, strict=True)}

    def state_dict(self) -> dict[str, Any]:
        """JSON-ready form (breakpoints as lists), stored with the reference profile."""
        return {
            "task": str(self.task),
            "threshold": self.threshold,
            "calibrators": [{"x": c.x.tolist(), "y": c.y.tolist()} for c in self.calibrators],
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> PerformanceEstimator:
        """Inverse of :meth:`state_dict`; raises ``CheckpointError`` on a malformed state."""
        try:
            cals = tuple(
                IsotonicCalibrator(
                    x=np.asarray(c["x"], dtype=np.float64), y=np.asarray(c["y"], dtype=np.float64)
                )
                for c in state["calibrators"]
            )
            if any(c.x.shape != c.y.shape or c.x.size == 0 for c in cals):
                raise ValueError("calibrator breakpoints and values differ in length")
            return cls(Task(state["task"]), cals, threshold=float(state["threshold"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"performance estimator state is invalid: {exc}") from exc


def _binary_scores(predictions: np.ndarray) -> np.ndarray:
    scores = np.asarray(predictions, dtype=np.float64)
    if scores.ndim == 2:
        scores = scores[:, -1]
    return scores
