"""The latest evaluation of every model, published by the pipeline and read at scrape time.

The pipeline builds a new frozen :class:`ModelStatus` after each batch step that changed a
model and hands it to :meth:`ResultsStore.publish`. The store swaps in a new read-only
mapping (copy on write), so readers (the metrics collector and ``/status``) take one
reference with :meth:`ResultsStore.snapshot` and see a consistent picture without a lock,
however long they take to render it.

The stats objects are typed here through small read-only protocols that list exactly the
fields this module and :mod:`monitor.publish.metrics` read from ``DriftResult`` and
``FeatureResult``. The real frozen dataclasses of :mod:`monitor.stats` satisfy them, and
the reporting layer does not depend on how the statistics engine is built.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from monitor.publish.health import Health

REFERENCE_STATES = ("loaded", "capturing", "failed")
"""Values of :attr:`ModelStatus.reference_state`."""

ALERT_STATES = ("ok", "pending", "firing", "resolved")
"""Values of :attr:`ModelStatus.alert_state`; the index is the ``driftmon_alert_state`` value."""


class FeatureResultView(Protocol):
    """The fields of ``monitor.stats.FeatureResult`` that reporting reads."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...  # FeatureKind is a StrEnum
    @property
    def n(self) -> int: ...
    @property
    def missing_ratio(self) -> float: ...
    @property
    def scores(self) -> Mapping[str, float]: ...
    @property
    def p_values(self) -> Mapping[str, float]: ...
    @property
    def crossed(self) -> tuple[str, ...]: ...
    @property
    def drifted(self) -> bool: ...
    @property
    def enough_data(self) -> bool: ...


class DriftResultView(Protocol):
    """The fields of ``monitor.stats.DriftResult`` that reporting reads."""

    @property
    def model(self) -> str: ...
    @property
    def window_events(self) -> int: ...
    @property
    def features(self) -> Sequence[FeatureResultView]: ...
    @property
    def drifted_features(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class PerformanceReport:
    """Performance of one model (see docs/PERFORMANCE.md); plain values only.

    The totals and the delay histogram are model-state counters: they move with the model
    through checkpoints. ``evicted`` counts both sides of the join per reason;
    ``delay_counts`` are per bucket (not cumulative), the last one above the largest bound.
    """

    values: Mapping[str, float]  # driftmon_performance (latest full window; NaN undefined)
    estimated: Mapping[str, float]  # driftmon_estimated_performance
    reference: Mapping[str, float]  # driftmon_reference_performance
    metrics: tuple[str, ...]  # the configured realised metrics
    labels_total: int
    labels_joined_total: int
    predictions_total: int
    pending_predictions: int
    pending_labels: int
    evicted: Mapping[str, int]  # reason -> predictions and labels evicted unjoined
    duplicate_labels: int
    invalid_labels: int
    window_events: int
    window_capacity: int
    evaluations: int
    alert_state: str  # realised metrics' alert: "ok" | "pending" | "firing" | "resolved"
    estimated_alert_state: str | None  # None without estimation
    delay_buckets: tuple[float, ...]  # upper bounds of driftmon_label_delay_seconds
    delay_counts: tuple[int, ...]  # len(delay_buckets) + 1
    delay_sum: float


@dataclass(frozen=True)
class VersionStatus:
    """One model version of a model with a ``versions`` section (see ``monitor.model.versions``).

    ``version`` ``""`` is the default reference (rows without a version, and new versions
    with ``on_new_version: fallback``). ``reference``: ``"default"``, ``"configured"``
    (listed under ``versions.references``) or ``"captured"`` (from the version's own first
    ``capture_events`` rows; ``captured`` of ``capture_target`` so far while capturing).
    """

    version: str
    reference: str  # "default" | "configured" | "captured"
    ready: bool
    captured: int
    capture_target: int
    events_total: int
    window_events: int
    evaluations: int
    alert_state: str
    last_evaluation_time: float | None
    last_result: DriftResultView | None


@dataclass(frozen=True)
class CalibrationReport:
    """A model's false-alarm budget and the critical values calibrated for it.

    ``source`` is ``pending`` until the calibration exists (it is computed once the
    reference is installed and any checkpoint restored), then ``computed``, ``checkpoint``
    or ``profile`` (stored by ``driftmon baseline``). ``critical_values`` are the
    calibrated values per feature and threshold key, on the scale ``evaluate`` compares
    (a p-value for ``ks_p_value``/``chi2_p_value``); ``overridden`` the raw thresholds set
    explicitly in the config that win over them.
    """

    source: str
    false_alarms_per_month: float
    correction: str  # "bonferroni" | "bh"
    dependence: str  # "union" | "effective"
    events_per_second: float | None
    window_events: int  # the window size calibrated for
    slide_events: int
    evaluations_per_month: float
    looks_per_month: float
    consecutive: int
    min_features: int
    draws: int
    seed: int
    seconds: float | None = None  # spent computing (None while pending)
    alpha_evaluation: float | None = None  # one evaluation flags any check under the null
    alpha_test: float | None = None  # the per-check level (Bonferroni share)
    checks_per_evaluation: int | None = None
    created_at: str | None = None
    critical_values: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    overridden: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelStatus:
    """Everything reported about one model, replaced as a whole by the pipeline.

    ``threshold_values`` maps ``(feature, test)`` to the configured threshold the pipeline
    compares that test with (a p-value threshold for ``ks``/``chi2`` when one is set, the
    score threshold otherwise). It is exported as ``driftmon_drift_threshold`` with the
    same ``test`` label values as the scores, so a panel can draw it as a threshold line.
    """

    model: str
    reference_state: str  # "loaded" | "capturing" | "failed"
    reference_events: int  # events in the profile (or captured so far)
    window_events: int
    window_capacity: int | None  # count windows: window.events; time windows: None
    window_fill_ratio: float  # 0..1 (time windows: slots holding data / slots)
    evaluations: int
    last_evaluation_time: float | None  # wall clock, epoch seconds
    last_result: DriftResultView | None
    drifted: bool  # confirmed drift (min_features x consecutive)
    consecutive: int  # evaluations in a row meeting min_features
    alert_state: str  # "ok" | "pending" | "firing" | "resolved"
    last_trigger_time: float | None
    threshold_values: Mapping[tuple[str, str], float] = field(default_factory=dict)
    # Counters that belong to the model's state (they move with it through checkpoints,
    # so a restart resumes them exactly instead of counting replayed events twice).
    events_total: int = 0
    late_events: int = 0
    retrain_triggers: int = 0
    performance: PerformanceReport | None = None  # models with a `performance` section
    # Models with a `versions` section: the active version (of the newest routed row; ""
    # for rows without a version; None before the first row), every version the model
    # keeps, and the rows of unknown versions dropped by `on_new_version: ignore`.
    # The other fields describe the active version; the counters sum over all versions.
    version: str | None = None
    versions: tuple[VersionStatus, ...] = ()
    ignored_version_events: int = 0

    @property
    def versioned(self) -> bool:
        """The model has a ``versions`` section (its versions are listed)."""
        return bool(self.versions)

    calibration: CalibrationReport | None = None  # models with a false-alarm budget
    # Retrain grace: triggers withheld while one is in flight (model state, like the
    # counters above), the configured grace and the event time the current one ends.
    retrain_suppressed: int = 0
    retrain_grace_seconds: float = 0.0
    retrain_grace_until: float | None = None
    min_effect: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @property
    def reference_ready(self) -> bool:
        """True once the reference profile is loaded or its capture is complete."""
        return self.reference_state == "loaded"

    @property
    def alert_state_value(self) -> int:
        """The ``driftmon_alert_state`` value: 0 ok, 1 pending, 2 firing, 3 resolved."""
        return ALERT_STATES.index(self.alert_state)

    def __post_init__(self) -> None:
        # Catch pipeline bugs at publish time, not as a failed scrape later.
        if self.reference_state not in REFERENCE_STATES:
            raise ValueError(f"reference_state must be one of {REFERENCE_STATES}")
        if self.alert_state not in ALERT_STATES:
            raise ValueError(f"alert_state must be one of {ALERT_STATES}")


class ResultsStore:
    """Per-model latest :class:`ModelStatus`, swapped atomically, read without locks.

    Writers are serialised by a lock and replace the whole mapping; a reader's
    :meth:`snapshot` is a single attribute read, atomic under the GIL.
    """

    def __init__(self) -> None:
        self._statuses: Mapping[str, ModelStatus] = MappingProxyType({})
        self._write_lock = threading.Lock()

    def publish(self, *statuses: ModelStatus) -> None:
        """Replace the status of each given model; several at once become visible together."""
        with self._write_lock:
            updated = dict(self._statuses)
            for status in statuses:
                updated[status.model] = status
            self._statuses = MappingProxyType(updated)

    def retain(self, models: Sequence[str]) -> None:
        """Drop every model not in ``models`` (after a config change); its series vanish."""
        keep = set(models)
        with self._write_lock:
            self._statuses = MappingProxyType(
                {m: s for m, s in self._statuses.items() if m in keep}
            )

    def snapshot(self) -> Mapping[str, ModelStatus]:
        """The current read-only mapping of model name to status; never mutated later."""
        return self._statuses

    def get(self, model: str) -> ModelStatus | None:
        """The current status of one model, if any."""
        return self._statuses.get(model)


def _number(value: float | None) -> float | None:
    """JSON has no NaN or infinity; report them as null."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _feature_document(
    feature: FeatureResultView, thresholds: Mapping[str, float]
) -> dict[str, Any]:
    return {
        "kind": str(feature.kind),
        "n": feature.n,
        "missing_ratio": _number(feature.missing_ratio),
        "scores": {test: _number(v) for test, v in feature.scores.items()},
        "p_values": {test: _number(v) for test, v in feature.p_values.items()},
        "thresholds": dict(thresholds),
        "crossed": list(feature.crossed),
        "drifted": feature.drifted,
        "enough_data": feature.enough_data,
    }


def model_document(status: ModelStatus) -> dict[str, Any]:
    """The ``/status`` entry of one model (also usable for replay reports)."""
    per_feature: dict[str, dict[str, float]] = {}
    for (feature, key), value in status.threshold_values.items():
        per_feature.setdefault(feature, {})[key] = value
    last: dict[str, Any] | None = None
    result = status.last_result
    if result is not None:
        last = {
            "time": status.last_evaluation_time,
            "window_events": result.window_events,
            "drifted_features": list(result.drifted_features),
            "features": {
                f.name: _feature_document(f, per_feature.get(f.name, {})) for f in result.features
            },
        }
    document: dict[str, Any] = {
        "reference": {
            "state": status.reference_state,
            "ready": status.reference_ready,
            "events": status.reference_events,
        },
        "window": {
            "events": status.window_events,
            "capacity": status.window_capacity,
            "fill_ratio": _number(status.window_fill_ratio),
        },
        "evaluations": status.evaluations,
        "last_evaluation": last,
        "alert": {
            "state": status.alert_state,
            "drifted": status.drifted,
            "consecutive": status.consecutive,
            "last_trigger_time": status.last_trigger_time,
            "retrain_grace_seconds": status.retrain_grace_seconds,
            "retrain_grace_until": status.retrain_grace_until,
            "retrain_suppressed": status.retrain_suppressed,
        },
    }
    if status.min_effect:
        document["alert"]["min_effect"] = {f: dict(m) for f, m in status.min_effect.items()}
    if status.calibration is not None:
        document["calibration"] = calibration_document(status.calibration)
    if status.performance is not None:
        document["performance"] = performance_document(status.performance)
    if status.versioned:
        document["active_version"] = status.version
        document["ignored_version_events"] = status.ignored_version_events
        document["versions"] = {v.version: version_document(v) for v in status.versions}
    return document


def version_document(v: VersionStatus) -> dict[str, Any]:
    """The entry of one model version in ``/status`` (models with ``versions``)."""
    last: dict[str, Any] | None = None
    if v.last_result is not None:
        last = {
            "time": v.last_evaluation_time,
            "window_events": v.last_result.window_events,
            "drifted_features": list(v.last_result.drifted_features),
        }
    return {
        "reference": v.reference,
        "state": "ready" if v.ready else "capturing",
        "captured": v.captured,
        "capture_target": v.capture_target,
        "events": v.events_total,
        "window_events": v.window_events,
        "evaluations": v.evaluations,
        "alert_state": v.alert_state,
        "last_evaluation": last,
    }


def calibration_document(cal: CalibrationReport) -> dict[str, Any]:
    """The ``calibration`` entry of a model in ``/status`` (models with a budget)."""
    return {
        "source": cal.source,
        "seconds": _number(cal.seconds),
        "created_at": cal.created_at,
        "budget": {
            "false_alarms_per_month": cal.false_alarms_per_month,
            "events_per_second": cal.events_per_second,
            "window_events": cal.window_events,
            "slide_events": cal.slide_events,
            "evaluations_per_month": _number(cal.evaluations_per_month),
            "looks_per_month": _number(cal.looks_per_month),
            "consecutive": cal.consecutive,
            "min_features": cal.min_features,
        },
        "correction": cal.correction,
        "dependence": cal.dependence,
        "alpha_evaluation": _number(cal.alpha_evaluation),
        "alpha_test": _number(cal.alpha_test),
        "checks_per_evaluation": cal.checks_per_evaluation,
        "draws": cal.draws,
        "seed": cal.seed,
        "critical_values": {
            f: {k: _number(v) for k, v in values.items()}
            for f, values in cal.critical_values.items()
        },
        "overridden": {f: dict(values) for f, values in cal.overridden.items()},
    }


def performance_document(perf: PerformanceReport) -> dict[str, Any]:
    """The ``performance`` entry of a model in ``/status`` (NaN as ``null``)."""
    return {
        "values": {k: _number(v) for k, v in perf.values.items()},
        "estimated": {k: _number(v) for k, v in perf.estimated.items()},
        "reference": {k: _number(v) for k, v in perf.reference.items()},
        "window": {"events": perf.window_events, "capacity": perf.window_capacity},
        "evaluations": perf.evaluations,
        "labels_total": perf.labels_total,
        "labels_joined_total": perf.labels_joined_total,
        "predictions_total": perf.predictions_total,
        "join": {
            "pending_predictions": perf.pending_predictions,
            "pending_labels": perf.pending_labels,
            "evicted": dict(perf.evicted),
            "duplicate_labels": perf.duplicate_labels,
            "invalid_labels": perf.invalid_labels,
        },
        "alert": {"state": perf.alert_state, "estimated_state": perf.estimated_alert_state},
    }


def status_document(store: ResultsStore, health: Health) -> dict[str, Any]:
    """The ``/status`` JSON body: readiness, then every model's latest state.

    Shape::

        {"ready": bool, "reasons": [str], "conditions": {name: bool},
         "models": {model: {"reference": {...}, "window": {...}, "evaluations": int,
                            "last_evaluation": null | {"time", "window_events",
                                "drifted_features", "features": {name: {...}}},
                            "alert": {...},
                            "calibration": {...},  # models with a false-alarm budget
                            "performance": {...},  # models with a `performance` section
                            # models with a `versions` section:
                            "active_version": str | null, "ignored_version_events": int,
                            "versions": {version: {"reference", "state", "captured",
                                "capture_target", "events", "window_events", "evaluations",
                                "alert_state", "last_evaluation"}}
                            }}}

    Non-finite numbers are rendered as ``null`` so the body is strict JSON.
    """
    snapshot = store.snapshot()
    return {
        "ready": health.is_ready,
        "reasons": health.reasons_not_ready(),
        "conditions": health.conditions(),
        "models": {model: model_document(s) for model, s in snapshot.items()},
    }
