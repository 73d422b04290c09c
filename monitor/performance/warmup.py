"""Compile the performance kernels before the daemon reports ready."""

from __future__ import annotations

import time

import numpy as np

from monitor.performance.estimate import PerformanceEstimator
from monitor.performance.metrics import Task, compute_metrics


def warmup() -> float:
    """Run every performance kernel once on tiny inputs; return the seconds spent.

    Realised metrics of the three tasks, isotonic calibration (fit and apply) and the
    expected binary and multiclass metrics. With a populated ``NUMBA_CACHE_DIR`` this
    only loads the compiled code.
    """
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    n, k = 64, 3
    scores = rng.random(n)
    binary = (rng.random(n) < scores).astype(np.float64)
    compute_metrics(Task.BINARY, binary, scores)
    proba = rng.random((n, k))
    proba /= proba.sum(axis=1, keepdims=True)
    classes = rng.integers(0, k, n).astype(np.float64)
    compute_metrics(Task.MULTICLASS, classes, proba, n_classes=k)
    compute_metrics(Task.REGRESSION, scores, scores + 0.1)
    PerformanceEstimator.fit(Task.BINARY, scores, binary).estimate(scores)
    PerformanceEstimator.fit(Task.MULTICLASS, proba, classes, n_classes=k).estimate(proba)
    return time.perf_counter() - start
