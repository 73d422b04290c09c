"""What a performance monitor reports: one window's evaluation, and a status snapshot.

Feeding the alert lifecycle: :meth:`PerformanceResult.as_drift_result` renders a result as
a :class:`~monitor.stats.DriftResult` with one pseudo-feature per thresholded metric, so an
:class:`~monitor.model.alerting.Alerting` built with ``min_features=1`` and
:meth:`~monitor.performance.monitor.PerformanceMonitor.alert_thresholds` runs the same
ok/pending/firing/resolved lifecycle, consecutive count and cooldown as drift.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from monitor.performance.metrics import WindowSlide
from monitor.performance.thresholds import RULES, Crossing, Threshold
from monitor.stats import DriftResult, FeatureKind, FeatureResult

__all__ = ["PerformanceResult", "PerformanceStatus"]


@dataclass(frozen=True)
class PerformanceResult:
    """One evaluation of a full performance window.

    ``kind`` is ``"realised"`` (joined, labelled rows) or ``"estimated"`` (predictions,
    no labels needed). For estimated results the label range is ``None`` and the event
    positions count predictions instead of joined rows.
    """

    model: str
    kind: Literal["realised", "estimated"]
    slide: WindowSlide
    values: Mapping[str, float]
    reference: Mapping[str, float]
    crossed: tuple[Crossing, ...]
    thresholds: Mapping[str, Threshold]

    @property
    def breached(self) -> bool:
        return bool(self.crossed)

    def as_drift_result(self) -> DriftResult:
        """The result in the shape the alert state machine folds (one pseudo-feature per
        thresholded metric, named ``<kind>.<metric>``; drifted when crossed)."""
        crossed: dict[str, tuple[str, ...]] = {}
        for c in self.crossed:
            crossed[c.metric] = (*crossed.get(c.metric, ()), c.rule)
        features = tuple(
            FeatureResult(
                name=f"{self.kind}.{metric}",
                kind=FeatureKind.NUMERIC,
                n=self.slide.window_events,
                missing_ratio=0.0,
                scores=dict.fromkeys(RULES, self.values.get(metric, math.nan)),
                p_values={},
                crossed=crossed.get(metric, ()),
                drifted=metric in crossed,
                enough_data=True,
            )
            for metric in self.thresholds
        )
        return DriftResult(
            model=self.model, window_events=self.slide.window_events, features=features
        )


@dataclass(frozen=True)
class PerformanceStatus:
    """Snapshot for the metrics collector and ``/status``."""

    model: str
    values: Mapping[str, float]  # driftmon_performance
    estimated: Mapping[str, float]  # driftmon_estimated_performance
    reference: Mapping[str, float]  # driftmon_reference_performance
    labels_total: int
    labels_joined_total: int
    predictions_total: int
    pending_predictions: int
    pending_labels: int
    evicted: Mapping[str, int]  # reason -> both sides
    evicted_predictions: Mapping[str, int]
    evicted_labels: Mapping[str, int]
    duplicate_labels: int
    invalid_labels: int
    window_events: int
    window_capacity: int
