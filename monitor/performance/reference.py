"""The performance of the reference data: metric values and the calibrated estimator.

Built once by ``driftmon baseline`` from reference predictions and labels, stored in the
reference profile file under ``performance`` (:meth:`ReferencePerformance.to_dict`), and
the baseline that relative thresholds and estimation compare with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.performance.estimate import PerformanceEstimator
from monitor.performance.metrics import compute_metrics
from monitor.performance.spec import PerformanceSpec

__all__ = ["ReferencePerformance"]


@dataclass(frozen=True)
class ReferencePerformance:
    """Metric values on the reference data, and the calibrated estimator when possible."""

    values: Mapping[str, float]
    events: int
    estimator: PerformanceEstimator | None = None

    @classmethod
    def build(
        cls, spec: PerformanceSpec, predictions: np.ndarray, labels: np.ndarray
    ) -> ReferencePerformance:
        """From reference predictions and encoded labels (rows with a NaN label skipped)."""
        y = np.asarray(labels, dtype=np.float64)
        pred = np.asarray(predictions, dtype=np.float64)
        keep = np.isfinite(y) & np.all(np.isfinite(pred.reshape(len(y), -1)), axis=1)
        y, pred = y[keep], pred[keep]
        values = compute_metrics(
            spec.task, y, pred, n_classes=spec.n_classes, threshold=spec.decision_threshold
        )
        estimator = None
        if spec.estimation is not None:
            estimator = PerformanceEstimator.fit(
                spec.task, pred, y, n_classes=spec.n_classes, threshold=spec.decision_threshold
            )
        return cls(values=values, events=int(y.shape[0]), estimator=estimator)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the reference profile file (NaN as ``None``)."""
        return {
            "values": {k: (None if math.isnan(v) else v) for k, v in self.values.items()},
            "events": self.events,
            "estimator": None if self.estimator is None else self.estimator.state_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferencePerformance:
        est = data.get("estimator")
        return cls(
            values={k: math.nan if v is None else float(v) for k, v in data["values"].items()},
            events=int(data["events"]),
            estimator=None if est is None else PerformanceEstimator.from_state_dict(est),
        )
