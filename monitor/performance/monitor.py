"""Performance monitoring of one model: join, windows, thresholds, alert input, payload.

:class:`PerformanceMonitor` takes the model's prediction and label batches, joins them in a
:class:`~monitor.performance.join.JoinStore`, feeds joined rows to a window of realised
metrics and (when a calibrated reference exists) every prediction to a window of
estimated metrics. At each slide of a full window it returns a :class:`PerformanceResult`
with the values, the thresholds crossed and the window's range.

Thresholds, per metric (``reference`` is the metric on the reference data):

* ``min: x`` / ``max: x``: an absolute floor (for scores) or ceiling (for losses/errors);
* ``max_drop: x``: crossed when ``reference - value > x`` (scores: accuracy, precision,
  recall, f1, roc_auc, r2);
* ``max_rise: x``: crossed when ``value - reference > x`` (log_loss, mae, rmse, mape).

A NaN value (undefined metric, e.g. ROC AUC with one class in the window) never crosses.
Estimated metrics have their own thresholds, compared with the same reference values.

Feeding the alert lifecycle: :meth:`PerformanceResult.as_drift_result` renders a result as
a :class:`~monitor.stats.DriftResult` with one pseudo-feature per thresholded metric, so an
:class:`~monitor.model.alerting.Alerting` built with ``min_features=1`` and
:meth:`PerformanceMonitor.alert_thresholds` runs the same ok/pending/firing/resolved
lifecycle, consecutive count and cooldown as drift. Its event is then completed with
:func:`performance_event`, which sets ``kind="performance"`` and the payload extras of
:func:`performance_payload` (which metric fell, from what to what, over which window).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from monitor.errors import CheckpointError
from monitor.performance.estimate import ESTIMATED_METRICS, PerformanceEstimator
from monitor.performance.join import JoinedRows, JoinLimits, JoinStore
from monitor.performance.metrics import (
    HIGHER_IS_BETTER,
    METRICS,
    PerformanceWindow,
    Task,
    WindowSlide,
    compute_metrics,
)
from monitor.stats import DriftResult, FeatureKind, FeatureResult
from monitor.webhooks.event import DriftEvent

__all__ = [
    "LABEL_DELAY_BUCKETS",
    "Crossing",
    "EstimationSpec",
    "PerformanceMonitor",
    "PerformanceResult",
    "PerformanceSpec",
    "PerformanceStatus",
    "ReferencePerformance",
    "Threshold",
    "encode_labels",
    "performance_event",
    "performance_payload",
]

#: Suggested buckets of ``driftmon_label_delay_seconds``: seconds (clicks) to a month
#: (chargebacks), in event time.
LABEL_DELAY_BUCKETS = (
    1.0,
    10.0,
    60.0,
    600.0,
    3600.0,
    6 * 3600.0,
    86_400.0,
    3 * 86_400.0,
    7 * 86_400.0,
    14 * 86_400.0,
    30 * 86_400.0,
)

Rule = Literal["min", "max", "max_drop", "max_rise"]
_RULES: tuple[Rule, ...] = ("min", "max", "max_drop", "max_rise")


@dataclass(frozen=True)
class Threshold:
    """Limits on one metric; ``None`` means not set. See the module docstring."""

    min: float | None = None
    max: float | None = None
    max_drop: float | None = None
    max_rise: float | None = None

    @classmethod
    def from_mapping(cls, metric: str, limits: Mapping[str, float]) -> Threshold:
        """``{min: 0.8}`` and friends, checked against the metric's direction."""
        higher = metric in HIGHER_IS_BETTER
        allowed = ("min", "max_drop") if higher else ("max", "max_rise")
        unknown = sorted(set(limits) - set(allowed))
        if unknown or not limits:
            raise ValueError(
                f"thresholds.{metric}: use {' or '.join(allowed)} "
                f"({'higher' if higher else 'lower'} is better for {metric})"
            )
        return cls(**{key: float(value) for key, value in limits.items()})

    def items(self) -> list[tuple[Rule, float]]:
        return [(rule, v) for rule in _RULES if (v := getattr(self, rule)) is not None]

    @property
    def relative(self) -> bool:
        return self.max_drop is not None or self.max_rise is not None


@dataclass(frozen=True)
class EstimationSpec:
    """``performance.estimation``: the window counts predictions, labelled or not."""

    metrics: tuple[str, ...] = ESTIMATED_METRICS
    window_events: int = 5000
    window_slide: int = 500
    thresholds: Mapping[str, Threshold] = field(default_factory=dict)


@dataclass(frozen=True)
class PerformanceSpec:
    """The ``task`` and ``performance`` sections of one model.

    ``n_classes`` is ``len(classes)`` for multiclass; ``prediction_width`` is 1 for a
    score, value or class index and ``k`` for probability rows. Raises ``ValueError``
    with the key path on an inconsistent combination.
    """

    task: Task
    metrics: tuple[str, ...] = ()
    window_events: int = 5000
    window_slide: int = 500
    thresholds: Mapping[str, Threshold] = field(default_factory=dict)
    join: JoinLimits = field(default_factory=JoinLimits)
    classes: tuple[str, ...] = ()
    prediction_width: int = 1
    decision_threshold: float = 0.5
    estimation: EstimationSpec | None = None

    def __post_init__(self) -> None:
        valid = METRICS[self.task]
        if not self.metrics:
            object.__setattr__(self, "metrics", valid)
        for key, names, allowed in (
            ("metrics", self.metrics, valid),
            ("thresholds", tuple(self.thresholds), self.metrics),
        ):
            bad = [m for m in names if m not in allowed]
            if bad:
                raise ValueError(
                    f"performance.{key}: {', '.join(bad)} not available for {self.task} "
                    f"(choose from {', '.join(allowed)})"
                )
        if self.task is Task.MULTICLASS and len(self.classes) < 2:
            raise ValueError("performance: a multiclass model needs prediction.classes")
        if self.estimation is not None:
            if self.task is Task.REGRESSION:
                raise ValueError("performance.estimation: not offered for regression")
            if self.task is Task.MULTICLASS and self.prediction_width != self.n_classes:
                raise ValueError("performance.estimation: needs probability predictions")
            bad = [
                m
                for m in (*self.estimation.metrics, *self.estimation.thresholds)
                if m not in ESTIMATED_METRICS
            ]
            if bad:
                raise ValueError(
                    f"performance.estimation: {', '.join(bad)} cannot be estimated "
                    f"(choose from {', '.join(ESTIMATED_METRICS)})"
                )

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.task is Task.MULTICLASS else 2


def encode_labels(values: Sequence[Any], spec: PerformanceSpec) -> np.ndarray:
    """Raw label values (as decoded from JSON) to float64; NaN marks an unusable label.

    Binary: ``0``/``1``, ``true``/``false``, or a name from ``classes`` (``classes[1]`` is
    the positive class). Multiclass: a class name (integers match their decimal string)
    to its index. Regression: a finite number.
    """
    out = np.full(len(values), math.nan)
    if spec.task is Task.REGRESSION:
        for i, v in enumerate(values):
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                out[i] = float(v)
        return out
    index = {name: float(i) for i, name in enumerate(spec.classes)}
    if spec.task is Task.BINARY:
        index.update({"0": 0.0, "1": 1.0, "false": 0.0, "true": 1.0})
    for i, v in enumerate(values):
        if isinstance(v, bool):
            key = "true" if v else "false"
        elif isinstance(v, int) or (isinstance(v, float) and v.is_integer()):
            key = str(int(v))
        elif isinstance(v, str):
            key = v
        else:
            continue
        out[i] = index.get(key, math.nan)
    return out


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


@dataclass(frozen=True)
class Crossing:
    """One threshold crossed: ``metric`` went to ``value`` against ``limit``.

    ``reference`` is the reference value (relative rules, and absolute ones when a
    reference exists); ``previous`` the value at the previous evaluation.
    """

    metric: str
    rule: Rule
    value: float
    limit: float
    reference: float | None
    previous: float | None

    @property
    def from_value(self) -> float | None:
        """What the metric fell (or rose) from: the reference, else the previous window."""
        return self.reference if self.reference is not None else self.previous


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
                scores=dict.fromkeys(_RULES, self.values.get(metric, math.nan)),
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


def _crossings(
    values: Mapping[str, float],
    thresholds: Mapping[str, Threshold],
    reference: Mapping[str, float],
    previous: Mapping[str, float],
) -> tuple[Crossing, ...]:
    out: list[Crossing] = []
    for metric, threshold in thresholds.items():
        value = values.get(metric, math.nan)
        if math.isnan(value):
            continue
        ref = reference.get(metric)
        ref = None if ref is None or math.isnan(ref) else ref
        prev = previous.get(metric)
        prev = None if prev is None or math.isnan(prev) else prev
        for rule, limit in threshold.items():
            if rule == "min":
                hit = value < limit
            elif rule == "max":
                hit = value > limit
            elif ref is None:
                continue
            elif rule == "max_drop":
                hit = ref - value > limit
            else:
                hit = value - ref > limit
            if hit:
                out.append(Crossing(metric, rule, value, limit, ref, prev))
    return tuple(out)


class PerformanceMonitor:
    """Join, windows and thresholds of one model's performance."""

    def __init__(
        self, model: str, spec: PerformanceSpec, reference: ReferencePerformance | None = None
    ) -> None:
        relative = [m for m, t in spec.thresholds.items() if t.relative]
        if spec.estimation is not None:
            relative += [
                f"estimation.{m}" for m, t in spec.estimation.thresholds.items() if t.relative
            ]
        if relative and reference is None:
            raise ValueError(
                f"performance.thresholds: {', '.join(relative)} compare with the reference "
                "performance; the reference needs labels and predictions"
            )
        self.model = model
        self.spec = spec
        self.reference = reference
        self.join = JoinStore(spec.join, spec.prediction_width)
        self.window = PerformanceWindow(
            spec.window_events, spec.window_slide, spec.prediction_width
        )
        self.estimator = reference.estimator if reference is not None else None
        est = spec.estimation
        self.estimate_window = (
            PerformanceWindow(est.window_events, est.window_slide, spec.prediction_width)
            if est is not None and self.estimator is not None
            else None
        )
        self.invalid_labels = 0
        self.values: dict[str, float] = {}
        self.estimated: dict[str, float] = {}

    @property
    def reference_values(self) -> Mapping[str, float]:
        return self.reference.values if self.reference is not None else {}

    def add_predictions(
        self, ids: Sequence[str | None], predictions: np.ndarray, ts: np.ndarray
    ) -> tuple[JoinedRows, list[PerformanceResult]]:
        """One batch of predictions (``(n,)`` or ``(n, width)``); returns the rows it
        joined (for the label-delay histogram) and the evaluations it completed."""
        pred = np.asarray(predictions, dtype=np.float64).reshape(len(ids), -1)
        ts = np.asarray(ts, dtype=np.float64)
        results: list[PerformanceResult] = []
        if self.estimate_window is not None and self.estimator is not None:
            nan = np.full(len(ids), math.nan)
            for slide in self.estimate_window.feed(pred, nan, ts, nan):
                if self.estimate_window.is_full:
                    results.append(self._evaluate_estimate(self.estimator, slide))
        joined = self.join.add_predictions(ids, pred, ts)
        results.extend(self._feed(joined))
        return joined, results

    def add_labels(
        self, ids: Sequence[str | None], labels: Sequence[Any] | np.ndarray, ts: np.ndarray
    ) -> tuple[JoinedRows, list[PerformanceResult]]:
        """One batch of labels: raw values (see :func:`encode_labels`) or encoded float64."""
        if isinstance(labels, np.ndarray) and labels.dtype.kind == "f":
            encoded = labels.astype(np.float64, copy=False)
        else:
            encoded = encode_labels(list(labels), self.spec)
        ok = np.isfinite(encoded)
        ts = np.asarray(ts, dtype=np.float64)
        if not ok.all():
            self.invalid_labels += int((~ok).sum())
            ids = [i for i, keep in zip(ids, ok.tolist(), strict=True) if keep]
            encoded, ts = encoded[ok], ts[ok]
        joined = self.join.add_labels(ids, encoded, ts)
        return joined, self._feed(joined)

    def _feed(self, joined: JoinedRows) -> list[PerformanceResult]:
        if not len(joined):
            return []
        results = []
        for slide in self.window.feed(
            joined.predictions, joined.labels, joined.prediction_ts, joined.label_ts
        ):
            if self.window.is_full:
                values = self.window.metrics(
                    self.spec.task,
                    n_classes=self.spec.n_classes,
                    threshold=self.spec.decision_threshold,
                )
                values = {m: values[m] for m in self.spec.metrics}
                crossed = _crossings(
                    values, self.spec.thresholds, self.reference_values, self.values
                )
                self.values = values
                results.append(
                    PerformanceResult(
                        self.model,
                        "realised",
                        slide,
                        values,
                        self.reference_values,
                        crossed,
                        self.spec.thresholds,
                    )
                )
        return results

    def _evaluate_estimate(
        self, estimator: PerformanceEstimator, slide: WindowSlide
    ) -> PerformanceResult:
        est = self.spec.estimation or EstimationSpec()
        pred, _ = self.estimate_window.rows() if self.estimate_window else (np.empty(0), None)
        values = estimator.estimate(pred)
        values = {m: values[m] for m in est.metrics}
        crossed = _crossings(values, est.thresholds, self.reference_values, self.estimated)
        self.estimated = values
        return PerformanceResult(
            self.model, "estimated", slide, values, self.reference_values, crossed, est.thresholds
        )

    def alert_thresholds(
        self, kind: Literal["realised", "estimated"] = "realised"
    ) -> dict[str, dict[str, float]]:
        """Threshold values keyed like :meth:`PerformanceResult.as_drift_result`'s
        pseudo-features, for ``Alerting(model, rule, thresholds)``."""
        if kind == "realised":
            thresholds = self.spec.thresholds
        else:
            thresholds = self.spec.estimation.thresholds if self.spec.estimation else {}
        return {f"{kind}.{m}": dict(t.items()) for m, t in thresholds.items()}

    def status(self) -> PerformanceStatus:
        j = self.join
        return PerformanceStatus(
            model=self.model,
            values=dict(self.values),
            estimated=dict(self.estimated),
            reference=dict(self.reference_values),
            labels_total=j.labels_total,
            labels_joined_total=j.joined_total,
            predictions_total=j.predictions_total,
            pending_predictions=j.pending_predictions,
            pending_labels=j.pending_labels,
            evicted=j.evicted,
            evicted_predictions=dict(j.evicted_predictions),
            evicted_labels=dict(j.evicted_labels),
            duplicate_labels=j.duplicate_labels,
            invalid_labels=self.invalid_labels,
            window_events=self.window.events,
            window_capacity=self.spec.window_events,
        )

    def state_dict(self) -> dict[str, Any]:
        """Flat: numpy arrays and scalars (prefixed ``join.``, ``window.``, ``estimate.``);
        the last values are JSON-ready dicts."""
        state: dict[str, Any] = {f"join.{k}": v for k, v in self.join.state_dict().items()}
        state.update({f"window.{k}": v for k, v in self.window.state_dict().items()})
        if self.estimate_window is not None:
            state.update({f"estimate.{k}": v for k, v in self.estimate_window.state_dict().items()})
        state["invalid_labels"] = self.invalid_labels
        state["values"] = dict(self.values)
        state["estimated"] = dict(self.estimated)
        return state

    @classmethod
    def from_state_dict(
        cls,
        model: str,
        spec: PerformanceSpec,
        reference: ReferencePerformance | None,
        state: Mapping[str, Any],
    ) -> PerformanceMonitor:
        """Rebuild with the running config; raises ``CheckpointError`` when it does not fit."""
        mon = cls(model, spec, reference)

        def part(prefix: str) -> dict[str, Any]:
            return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}

        mon.join = JoinStore.from_state_dict(spec.join, part("join."))
        if mon.join.width != spec.prediction_width:
            raise CheckpointError("performance state has another prediction width")
        mon.window = PerformanceWindow.from_state_dict(
            spec.window_events, spec.window_slide, spec.prediction_width, part("window.")
        )
        if mon.estimate_window is not None and spec.estimation is not None:
            saved = part("estimate.")
            if saved:
                mon.estimate_window = PerformanceWindow.from_state_dict(
                    spec.estimation.window_events,
                    spec.estimation.window_slide,
                    spec.prediction_width,
                    saved,
                )
        try:
            mon.invalid_labels = int(state["invalid_labels"])
            mon.values = {k: float(v) for k, v in state["values"].items()}
            mon.estimated = {k: float(v) for k, v in state["estimated"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"performance state is incomplete: {exc}") from exc
        return mon


def _num(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def performance_payload(result: PerformanceResult) -> dict[str, Any]:
    """The webhook payload extras: which metric fell, from what to what, over which window.

    JSON values only (NaN becomes ``None``), for ``DriftEvent.extra["performance"]``.
    """
    s = result.slide
    labelled = result.kind == "realised"
    return {
        "kind": result.kind,
        "window": {
            "events": s.window_events,
            "unit": "labelled_predictions" if labelled else "predictions",
            "first_event": s.first_event,
            "last_event": s.last_event,
            "prediction_time_start": _num(s.first_prediction_ts),
            "prediction_time_end": _num(s.last_prediction_ts),
            "label_time_start": _num(s.first_label_ts) if labelled else None,
            "label_time_end": _num(s.last_label_ts) if labelled else None,
        },
        "crossed": [
            {
                "metric": c.metric,
                "rule": c.rule,
                "from": _num(c.from_value),
                "to": _num(c.value),
                "reference": _num(c.reference),
                "previous": _num(c.previous),
                "limit": c.limit,
            }
            for c in result.crossed
        ],
        "values": {k: _num(v) for k, v in result.values.items()},
        "reference": {k: _num(v) for k, v in result.reference.items()},
    }


def performance_event(event: DriftEvent, result: PerformanceResult) -> DriftEvent:
    """Turn the event the alert state machine built from :meth:`as_drift_result` into a
    performance event: ``kind="performance"`` and the payload extras."""
    extra = {**event.extra, "performance": performance_payload(result)}
    return replace(event, kind="performance", extra=extra)
