"""What the model layer reports about each model: frozen values, built once per change.

The pipeline builds a new :class:`ModelStatus` (with its :class:`VersionStatus`,
:class:`CalibrationReport` and :class:`PerformanceReport` parts) after each batch step that
changed a model; the publish layer stores it and renders it as metrics and ``/status``
documents. These are plain values, so the model layer defines them and publish imports
them, never the other way round.

The stats objects are typed here through small read-only protocols that list exactly the
fields reporting reads from ``DriftResult`` and ``FeatureResult``. The real frozen
dataclasses of :mod:`monitor.stats` satisfy them, and reporting does not depend on how
the statistics engine is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

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
    #: ``alert.budget_weights`` in force (family -> weight), the defaults when not set.
    budget_weights: Mapping[str, float] = field(default_factory=dict)


class HotCounts(NamedTuple):
    """The fields of a :class:`ModelStatus` that move with every batch of a model's rows.

    A batch that only moved these (no evaluation, no reference or alert change) updates
    them in one table row instead of rebuilding the model's whole status; readers see the
    status with them laid over it (:class:`monitor.publish.results.ResultsStore`).
    """

    events_total: int
    late_events: int
    window_events: int
    window_fill_ratio: float

    @staticmethod
    def of(status: ModelStatus) -> HotCounts:
        return HotCounts(
            status.events_total, status.late_events, status.window_events, status.window_fill_ratio
        )


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
    #: Features missing from every event of the latest evaluated window (a schema
    #: problem; drift only with ``alert.retrain_on_absent_feature``).
    absent_features: tuple[str, ...] = ()
    #: feature -> threshold key (``psi``, ``ks_p_value``, ``missing_ratio``...) -> the
    #: value in use, as ``FeatureResult.crossed`` names them: what ``/status`` shows.
    check_thresholds: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: feature -> the reference's missing share (the missing-ratio check compares the
    #: window's share minus this).
    reference_missing: Mapping[str, float] = field(default_factory=dict)
    #: feature -> its latest sequential alarm: test, statistic, threshold, the alarming
    #: event's position in the model's window stream and its event time.
    sequential_alarms: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

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
