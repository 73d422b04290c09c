"""One batch step with no I/O: decoded columns → windows → evaluations → alert transitions.

The daemon and ``driftmon replay`` both drive this module, so a replay of a file gives
exactly the evaluations the live daemon computed on the same events.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from monitor.config import CaptureReference, Config, CountWindowConfig, ModelConfig
from monitor.errors import CheckpointError, ProfileError
from monitor.ingest.decode import (
    CategoryCodes,
    DecodedBatch,
    DecodeSchema,
    KafkaTimes,
    ModelColumns,
    Rejection,
    build_decode_schema,
    decode_batch,
)
from monitor.model.alerting import (
    Alerting,
    AlertOutcome,
    AlertRule,
    AlertState,
    AlertStatus,
    RetrainGrace,
)
from monitor.model.budget import (
    ModelCalibration,
    apply_min_effects,
    budget_for,
    calibrate_model,
    calibration_digest,
    decide,
    effective_thresholds,
    without_overridden,
)
from monitor.model.performance import (
    ModelPerformance,
    PerformanceEvaluation,
    label_only_rows,
    prediction_names,
)
from monitor.model.status import CalibrationReport, ModelStatus, VersionStatus
from monitor.model.versions import DEFAULT_VERSION, Action, VersionRouter
from monitor.performance import ReferencePerformance
from monitor.publish.results import ResultsStore
from monitor.state.checkpoint import ModelState
from monitor.stats import (
    REGISTRY,
    CountWindowSpec,
    DriftResult,
    DriftThresholds,
    FeatureKind,
    ReferenceProfile,
    SlideInfo,
    SlotWindow,
    TimeWindowSpec,
    build_profile,
    evaluate,
)
from monitor.stats.calibration import Calibration
from monitor.stats.profile import profile_from_json, profile_to_json
from monitor.webhooks.event import DriftEvent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    """One window evaluation of one model."""

    model: str
    slide: SlideInfo
    first_event: int  # 1-based index of the window's first event in the model's stream
    last_event: int
    result: DriftResult
    alert: AlertOutcome
    duration_seconds: float
    version: str | None = None  # models with versions: the version whose window this is

    @property
    def drift_event(self) -> DriftEvent | None:
        return self.alert.event


@dataclass
class BatchOutcome:
    """Everything one batch did, for the daemon to count, export and act on."""

    accepted: dict[str, int] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)
    unknown_features: dict[str, int] = field(default_factory=dict)
    late: dict[str, int] = field(default_factory=dict)
    # Indices (in the batch) of the messages each model's accepted events came from.
    model_messages: dict[str, np.ndarray] = field(default_factory=dict)
    evaluations: list[Evaluation] = field(default_factory=list)
    last_event_time: dict[str, float] = field(default_factory=dict)
    # Performance windows evaluated in this batch (models with a `performance` section).
    performance: list[PerformanceEvaluation] = field(default_factory=list)
    # Label events (no features, no prediction) per model: joined, never windowed.
    labels: dict[str, int] = field(default_factory=dict)
    # Events of unknown versions dropped per model (`versions.on_new_version: ignore`).
    ignored_versions: dict[str, int] = field(default_factory=dict)

    @property
    def drift_events(self) -> list[DriftEvent]:
        """Every event for the webhooks: confirmed drift, then performance crossings."""
        found = [e.alert.event for e in self.evaluations if e.alert.event is not None]
        return found + [p.alert.event for p in self.performance if p.alert.event is not None]

    def merge(self, other: BatchOutcome) -> None:
        for model, n in other.accepted.items():
            self.accepted[model] = self.accepted.get(model, 0) + n
        for model, n in other.unknown_features.items():
            self.unknown_features[model] = self.unknown_features.get(model, 0) + n
        for model, n in other.late.items():
            self.late[model] = self.late.get(model, 0) + n
        for model, ts in other.last_event_time.items():
            self.last_event_time[model] = max(ts, self.last_event_time.get(model, ts))
        for model, n in other.labels.items():
            self.labels[model] = self.labels.get(model, 0) + n
        for model, n in other.ignored_versions.items():
            self.ignored_versions[model] = self.ignored_versions.get(model, 0) + n
        self.rejected.extend(other.rejected)
        self.evaluations.extend(other.evaluations)
        self.performance.extend(other.performance)


def window_spec(config: ModelConfig) -> CountWindowSpec | TimeWindowSpec:
    """The statistics engine's window spec for a model's ``window:`` section."""
    window = config.window
    if isinstance(window, CountWindowConfig):
        return CountWindowSpec(events=window.events, slide=window.slide)
    return TimeWindowSpec(
        seconds=window.seconds, slide_seconds=window.slide_seconds, min_events=window.min_events
    )


def take_rows(columns: ModelColumns, rows: np.ndarray) -> ModelColumns:
    """The given rows (sorted int64 indices) of a model's decoded columns.

    Kept for app/baseline.py; new code calls :meth:`ModelColumns.take` directly.
    """
    return columns.take(rows)


def schema_for(config: Config, topic: str | None, bound_model: str | None = None) -> DecodeSchema:
    """The decode schema of ``topic``; without one (replay, baseline) the first topic's."""
    known = {t.name for t in config.kafka.topics}
    name = topic if topic in known else config.kafka.topics[0].name
    schema = build_decode_schema(config, name)
    if bound_model is not None:
        schema = replace(schema, bound_model=bound_model)
    return schema


def restrict_profile(profile: ReferenceProfile, names: Sequence[str]) -> ReferenceProfile:
    """The profile limited to the configured features, in configuration order."""
    return replace(profile, features={name: profile.features[name] for name in names})


def _threshold_lines(
    tests: Mapping[str, Sequence[str]], thresholds: Mapping[str, DriftThresholds]
) -> dict[tuple[str, str], float]:
    """``(feature, test) -> threshold`` as exported by ``driftmon_drift_threshold``.

    ks and chi2 are thresholded on their p-value when one is set (ks falls back to its
    D statistic threshold), every other test on its score.
    """
    lines: dict[tuple[str, str], float] = {}
    for feature, names in tests.items():
        limits = thresholds[feature]
        for test in names:
            key = REGISTRY[test].primary_key
            value = getattr(limits, key, None)
            if test == "ks" and limits.ks is not None and limits.ks_p_value is None:
                value = limits.ks
            if value is not None:
                lines[(feature, test)] = float(value)
    return lines


class ModelMonitor:
    """Reference, window and alert of one model.

    With a false-alarm budget (``alert.false_alarms_per_month``) the thresholds are
    calibrated for the installed reference (:mod:`monitor.model.budget`): from a stored
    ``calibration`` (a profile file's, or the previous monitor's after a handover) or a
    checkpoint's when its digest matches, else computed by :meth:`ensure_calibrated`, which
    the first batch of events (or the daemon after restoring checkpoints) calls.
    """

    def __init__(
        self,
        name: str,
        config: ModelConfig,
        profile: ReferenceProfile | None,
        *,
        numeric_columns: Sequence[str],
        categorical_columns: Sequence[str],
        reference_performance: ReferencePerformance | None = None,
        version: str | None = None,
        calibration: ModelCalibration | None = None,
    ) -> None:
        """``version``: the model version this monitor watches (carried by drift events)."""
        self.name = name
        self.config = config
        self.version = version
        self.kinds = {
            feature: FeatureKind(kind) for feature, kind in config.feature_kinds().items()
        }
        self._numeric_columns = list(numeric_columns)
        self._categorical_columns = list(categorical_columns)
        self.events_seen = 0
        self.late_events = 0
        self.evaluations = 0
        self.last_evaluation_time: float | None = None
        self.last_result: DriftResult | None = None
        self.thresholds: dict[str, DriftThresholds] = {}
        self.tests: dict[str, list[str]] = {}
        threshold_values: dict[str, dict[str, float]] = {}
        for feature in self.kinds:
            limits = config.thresholds_for(feature).model_dump()
            self.thresholds[feature] = DriftThresholds(**limits)
            self.tests[feature] = list(config.tests_for(feature))
            threshold_values[feature] = {k: float(v) for k, v in limits.items() if v is not None}
        # The threshold line per (feature, test) is fixed by the config (or the
        # calibration): built once here, not in status(), which runs for every batch.
        self._threshold_lines = _threshold_lines(self.tests, self.thresholds)
        self.grace = RetrainGrace(config.alert.retrain_grace_seconds)
        self.alerting = Alerting(
            name,
            AlertRule(
                min_features=config.alert.min_features,
                consecutive=config.alert.consecutive,
                cooldown_seconds=config.alert.cooldown_seconds,
            ),
            threshold_values,
            version=version,
            grace=self.grace,
        )
        self.min_effects = {
            feature: measures
            for feature in self.kinds
            if (measures := config.min_effect_for(feature))
        }
        self._reference_missing: dict[str, float] = {}
        # False-alarm budget: the calibration in use, the digest a usable one must have
        # (None without a budget or a reference), and what /status reports of it.
        self.calibration: ModelCalibration | None = None
        self._stored_calibration = calibration
        self._calibration_digest: str | None = None
        self._bh: Calibration | None = None
        self._overridden: dict[str, dict[str, float | None]] = {}
        self._calibration_report: CalibrationReport | None = None
        self._capture: list[ModelColumns] = []
        self._captured = 0
        self.category_codes: tuple[CategoryCodes, ...] | None = None
        self.retrain_triggers = 0
        self.profile: ReferenceProfile | None = None
        self.window: SlotWindow | None = None
        self._file_profile = profile
        self._reference_performance = reference_performance
        self._prediction_index = [self._numeric_columns.index(n) for n in prediction_names(config)]
        self.performance: ModelPerformance | None = None
        # `versions` is left out: the per-version monitors check their own fingerprints, so
        # adding a versions section keeps the checkpointed state of the default reference.
        config_json = json.dumps(
            config.model_dump(mode="json", warnings=False, exclude={"versions"}), sort_keys=True
        )
        digest = hashlib.sha256(config_json.encode())
        if config.performance is not None:
            self.performance = ModelPerformance(
                name,
                config,
                reference_performance,
                prediction_index=self._prediction_index,
                grace=self.grace,
            )
            digest.update(self.performance.fingerprint_data)
        if profile is not None:
            digest.update(json.dumps(profile_to_json(profile), sort_keys=True).encode())
            self._install_profile(profile)
        self.fingerprint = digest.hexdigest()

    # -- reference ---------------------------------------------------------------------

    @property
    def capture_target(self) -> int:
        reference = self.config.reference
        return reference.capture_events if isinstance(reference, CaptureReference) else 0

    @property
    def reference_ready(self) -> bool:
        return self.profile is not None

    @property
    def captured(self) -> int:
        """Rows taken into the reference capture so far."""
        return self._captured

    @property
    def numeric_columns(self) -> list[str]:
        return self._numeric_columns

    @property
    def categorical_columns(self) -> list[str]:
        return self._categorical_columns

    def _install_profile(self, profile: ReferenceProfile) -> None:
        missing = [f for f in self.kinds if f not in profile.features]
        if missing:
            from monitor.errors import ProfileError

            raise ProfileError(
                f"reference profile of model {self.name!r} has no feature(s) "
                f"{', '.join(missing)}; rebuild it with `driftmon baseline` for this config"
            )
        self.profile = restrict_profile(profile, list(self.kinds))
        self.window = SlotWindow(self.profile, window_spec(self.config))
        self._num_index = np.array(
            [self._numeric_columns.index(n) for n in self.profile.numeric_names], dtype=np.int64
        )
        self._cat_index = [
            self._categorical_columns.index(n) for n in self.profile.categorical_names
        ]
        # Decoded columns already in profile order need no per-batch reordering copy.
        self._num_identity = len(self._num_index) == len(self._numeric_columns) and bool(
            np.array_equal(self._num_index, np.arange(len(self._num_index)))
        )
        self._cat_identity = self._cat_index == list(range(len(self._categorical_columns)))
        # With the reference known, decode can hand over category codes instead of strings
        # (the columnar scanner). The performance join still needs ids and raw labels.
        if self.config.performance is None:
            features = [self.profile.features[n] for n in self._categorical_columns]
            self.category_codes = tuple(
                CategoryCodes(f.category_codes, f.unseen_code)  # type: ignore[union-attr]
                for f in features
            )
        self._reference_missing = {
            name: f.missing / (f.n + f.missing) if f.n + f.missing else 0.0
            for name, f in self.profile.features.items()
        }
        if budget_for(self.config) is not None:
            self.calibration = None
            self._calibration_digest = calibration_digest(self.config, self.profile)
            self._threshold_lines = {}  # no line until the calibration is in place
            self._calibration_report = self._pending_report()
            self._adopt_calibration(self._stored_calibration)

    # -- false-alarm budget ------------------------------------------------------------

    @property
    def calibration_pending(self) -> bool:
        """True while a budget is configured and its calibration is not in place yet."""
        return self._calibration_digest is not None and self.calibration is None

    def ensure_calibrated(self) -> None:
        """Compute the calibration if it is still pending (a no-op otherwise)."""
        if not self.calibration_pending or self.profile is None:
            return
        self._use_calibration(calibrate_model(self.config, self.profile))

    def _adopt_calibration(self, candidate: ModelCalibration | None) -> bool:
        """Use a stored calibration when it was made for this profile and budget."""
        if candidate is None or not self.calibration_pending:
            return False
        if candidate.digest != self._calibration_digest:
            logger.info(
                "stored calibration does not match the profile and budget; recalibrating",
                extra={"model": self.name, "source": candidate.source},
            )
            return False
        self._use_calibration(candidate)
        return True

    def _use_calibration(self, found: ModelCalibration) -> None:
        cal = found.calibration
        self.calibration = found
        self.thresholds, self._overridden = effective_thresholds(self.config, cal)
        self.alerting.thresholds = {
            feature: {k: float(v) for k, v in asdict(limits).items() if v is not None}
            for feature, limits in self.thresholds.items()
        }
        self._threshold_lines = _threshold_lines(self.tests, self.thresholds)
        self._bh = (
            without_overridden(cal, self._overridden) if cal.budget.correction == "bh" else None
        )
        self._calibration_report = self._report(found)
        budget = cal.budget
        logger.info(
            "false-alarm budget calibrated",
            extra={
                "model": self.name,
                "source": found.source,
                "duration_seconds": round(found.seconds, 3),
                "false_alarms_per_month": budget.false_alarms_per_month,
                "correction": budget.correction,
                "dependence": budget.dependence,
                "window_events": cal.window_events,
                "evaluations_per_month": round(budget.evaluations_per_month_value, 1),
                "alpha_evaluation": cal.alpha_evaluation,
                "alpha_test": cal.alpha_test,
                "checks": cal.checks_per_evaluation,
                "overridden": sum(len(v) for v in self._overridden.values()),
            },
        )

    def _pending_report(self) -> CalibrationReport:
        budget = budget_for(self.config)
        assert budget is not None  # noqa: S101 - only called with a budget
        alert = self.config.alert
        return CalibrationReport(
            source="pending",
            false_alarms_per_month=budget.false_alarms_per_month,
            correction=budget.correction,
            dependence=budget.dependence,
            events_per_second=alert.events_per_second,
            window_events=budget.window_events,
            slide_events=budget.slide_events,
            evaluations_per_month=budget.evaluations_per_month_value,
            looks_per_month=budget.looks,
            consecutive=budget.consecutive,
            min_features=alert.min_features,
            draws=alert.calibration_draws,
            seed=alert.calibration_seed,
        )

    def _report(self, found: ModelCalibration) -> CalibrationReport:
        cal = found.calibration
        return replace(
            self._pending_report(),
            source=found.source,
            seconds=found.seconds,
            alpha_evaluation=cal.alpha_evaluation,
            alpha_test=cal.alpha_test,
            checks_per_evaluation=cal.checks_per_evaluation,
            created_at=cal.created_at,
            critical_values=cal.threshold_values(),
            overridden=self._overridden,
        )

    def _capture_rows(self, columns: ModelColumns) -> ModelColumns | None:
        """Take rows into the reference capture; return what is left for the window."""
        need = self.capture_target - self._captured
        rows = len(columns.ts)
        take = min(need, rows)
        self._capture.append(columns.slice_rows(0, take))
        self._captured += take
        if self._captured >= self.capture_target:
            self._finish_capture()
        return columns.slice_rows(take, rows) if take < rows else None

    def _finish_capture(self) -> None:
        numeric = np.concatenate([c.numeric for c in self._capture], axis=0)
        data: dict[str, object] = {}
        for i, name in enumerate(self._numeric_columns):
            data[name] = numeric[:, i]
        for j, name in enumerate(self._categorical_columns):
            values: list[str | None] = []
            for chunk in self._capture:
                values.extend(chunk.categorical[j])
            data[name] = values
        profile = build_profile(
            self.name,
            data,  # type: ignore[arg-type]
            self.kinds,
            bins=self.config.bins,
            max_categories=self.config.max_categories,
            psi_buckets=self.config.psi_buckets,
            source=f"stream:{self._captured} events",
        )
        self._capture = []
        logger.info(
            "reference captured from the stream",
            extra={"model": self.name, "events": self._captured},
        )
        self._install_profile(profile)

    # -- windows -----------------------------------------------------------------------

    def _encode(
        self, profile: ReferenceProfile, columns: ModelColumns
    ) -> tuple[np.ndarray, np.ndarray]:
        numeric = columns.numeric
        if not self._num_identity:
            numeric = numeric[:, self._num_index]
        rows = len(columns.ts)
        if columns.codes is not None:
            codes = columns.codes if self._cat_identity else columns.codes[:, self._cat_index]
        elif self._cat_index:
            codes = np.empty((rows, len(self._cat_index)), dtype=np.int64)
            for out, (name, source) in enumerate(
                zip(profile.categorical_names, self._cat_index, strict=True)
            ):
                feature = profile.features[name]
                codes[:, out] = feature.encode(columns.categorical[source])  # type: ignore[union-attr]
        else:
            codes = np.empty((rows, 0), dtype=np.int64)
        return np.ascontiguousarray(numeric, dtype=np.float64), codes

    def split_labels(self, columns: ModelColumns) -> tuple[ModelColumns, np.ndarray | None]:
        """The rows for the drift windows, and the mask of label-only rows in ``columns``."""
        mask = label_only_rows(columns, self._prediction_index)
        if mask is None:
            return columns, None
        keep = np.flatnonzero(~mask)
        if keep.size == 0 or keep[-1] == keep.size - 1:  # label events only at the end
            return columns.slice_rows(0, keep.size), mask
        return columns.take(keep), mask

    def ingest_performance(
        self, columns: ModelColumns, label_only: np.ndarray | None = None
    ) -> list[PerformanceEvaluation]:
        """Feed a batch's predictions and labels to the join (models with ``performance``)."""
        if self.performance is None:
            return []
        found = self.performance.ingest(columns, label_only)
        self.retrain_triggers += sum(e.alert.event is not None for e in found)
        return found

    def ingest(self, columns: ModelColumns) -> list[Evaluation]:
        """Feed one batch of this model's rows; evaluate at every slide of a full window."""
        rows = len(columns.ts)
        if rows == 0:
            return []
        remaining: ModelColumns | None = columns
        if self.profile is None:
            remaining = self._capture_rows(columns)
        self.events_seen += rows
        window, profile = self.window, self.profile
        if remaining is None or window is None or profile is None:
            return []
        if self.calibration_pending:
            self.ensure_calibrated()
        # Events of this model before the window's first event (the reference capture).
        offset = self.events_seen - window.events_seen - len(remaining.ts)
        numeric, codes = self._encode(profile, remaining)
        evaluations: list[Evaluation] = []
        late_before = window.late_dropped
        for slide in window.feed(numeric, codes, remaining.ts):
            if window.is_full:
                evaluations.append(self._evaluate(profile, window, slide, offset))
        self.late_events += window.late_dropped - late_before
        return evaluations

    def _evaluate(
        self, profile: ReferenceProfile, window: SlotWindow, slide: SlideInfo, offset: int
    ) -> Evaluation:
        started = time.perf_counter()
        result = evaluate(profile, window, tests=self.tests, thresholds=self.thresholds)
        result = decide(result, self._bh, self._overridden)
        if self.min_effects:
            result = apply_min_effects(result, self.min_effects, self._reference_missing)
        last = offset + window.events_seen
        at = slide.end if slide.end is not None else time.time()
        outcome = self.alerting.observe(
            result,
            at=at,
            slide_index=slide.slide_index,
            window_start=slide.start,
            window_end=slide.end,
        )
        self.evaluations += 1
        if outcome.event is not None:
            self.retrain_triggers += 1
        self.last_evaluation_time = time.time()
        self.last_result = result
        return Evaluation(
            model=self.name,
            slide=slide,
            first_event=last - result.window_events + 1,
            last_event=last,
            result=result,
            alert=outcome,
            duration_seconds=time.perf_counter() - started,
        )

    # -- checkpoints -------------------------------------------------------------------

    def fresh(self) -> ModelMonitor:
        """A new monitor of the same model with empty state."""
        # A calibration of the file profile stays valid: the new monitor reuses it.
        keep = self.calibration if self._file_profile is not None else None
        return ModelMonitor(
            self.name,
            self.config,
            self._file_profile,
            numeric_columns=self._numeric_columns,
            categorical_columns=self._categorical_columns,
            reference_performance=self._reference_performance,
            version=self.version,
            calibration=keep or self._stored_calibration,
        )

    def state(self, partitions: Sequence[str]) -> ModelState:
        """Everything needed to resume this model exactly (see :mod:`monitor.state.checkpoint`)."""
        alert = self.alerting.status
        scalars: dict[str, object] = {
            "events_seen": self.events_seen,
            "evaluations": self.evaluations,
            "late_events": self.late_events,
            "retrain_triggers": self.retrain_triggers,
            "last_evaluation_time": self.last_evaluation_time,
            "alert": {
                "state": int(alert.state),
                "consecutive": alert.consecutive,
                "last_trigger_time": alert.last_trigger_time,
                "episodes": alert.episodes,
            },
            "captured": self._captured,
            "grace": {"until": self.grace.until, "suppressed": self.grace.suppressed},
        }
        if self.calibration is not None:
            scalars["calibration"] = self.calibration.to_json()
        arrays: dict[str, np.ndarray] = {}
        if self.profile is not None and self._file_profile is None:
            scalars["profile"] = profile_to_json(self.profile)
        if self.window is not None:
            for key, value in self.window.state_dict().items():
                if isinstance(value, np.ndarray):
                    arrays[f"window.{key}"] = value
                else:
                    scalars[f"window.{key}"] = value
        if self._capture:
            arrays["capture.numeric"] = np.concatenate([c.numeric for c in self._capture])
            scalars["capture.categorical"] = [
                [v for chunk in self._capture for v in chunk.categorical[j]]
                for j in range(len(self._categorical_columns))
            ]
            arrays["capture.ts"] = np.concatenate([c.ts for c in self._capture])
        if self.performance is not None:
            perf_scalars, perf_arrays = self.performance.state()
            scalars.update(perf_scalars)
            arrays.update(perf_arrays)
        return ModelState(
            model=self.name,
            fingerprint=self.fingerprint,
            partitions=sorted(partitions),
            scalars=scalars,
            arrays=arrays,
        )

    def restore(self, state: ModelState) -> None:
        """Resume from a checkpointed state; raises ``CheckpointError`` if it does not fit."""
        if state.fingerprint != self.fingerprint:
            raise CheckpointError(
                f"checkpoint of model {self.name!r} was taken with another configuration "
                "or reference profile"
            )
        s = state.scalars
        if "profile" in s:
            self._install_profile(profile_from_json(s["profile"], f"checkpoint of {self.name}"))
        if self.calibration_pending and "calibration" in s:
            try:
                stored = ModelCalibration.from_json(s["calibration"], source="checkpoint")
            except ValueError as exc:
                logger.warning(
                    "checkpointed calibration unusable; recalibrating",
                    extra={"model": self.name, "error": str(exc)},
                )
            else:
                self._adopt_calibration(stored)
        window_state: dict[str, object] = {
            key.removeprefix("window."): value
            for key, value in [*s.items(), *state.arrays.items()]
            if key.startswith("window.")
        }
        if self.profile is not None and window_state:
            self.window = SlotWindow.from_state_dict(
                self.profile, window_spec(self.config), window_state
            )
        self._capture = []
        self._captured = int(s.get("captured", 0))
        if "capture.numeric" in state.arrays:
            numeric = state.arrays["capture.numeric"]
            ts = state.arrays["capture.ts"]
            categorical = [list(values) for values in s.get("capture.categorical", [])]
            rows = len(ts)
            self._capture.append(
                ModelColumns(
                    numeric=numeric,
                    categorical=categorical,
                    ts=ts,
                    ids=[None] * rows,
                    msg_index=np.zeros(rows, dtype=np.int64),
                    versions=[None] * rows,
                )
            )
        self.events_seen = int(s["events_seen"])
        self.evaluations = int(s["evaluations"])
        self.late_events = int(s["late_events"])
        self.retrain_triggers = int(s["retrain_triggers"])
        self.last_evaluation_time = s.get("last_evaluation_time")
        alert = s["alert"]
        self.alerting.status = AlertStatus(
            state=AlertState(int(alert["state"])),
            consecutive=int(alert["consecutive"]),
            last_trigger_time=alert["last_trigger_time"],
            episodes=int(alert["episodes"]),
        )
        grace = s.get("grace") or {}
        until = grace.get("until")
        self.grace.until = None if until is None else float(until)
        self.grace.suppressed = int(grace.get("suppressed", 0))
        if self.performance is not None:
            self.performance.restore(s, state.arrays)

    def status(self) -> ModelStatus:
        """An immutable snapshot for metrics and ``/status``."""
        window = self.window
        capacity = (
            self.config.window.events if isinstance(self.config.window, CountWindowConfig) else None
        )
        window_events = window.events if window is not None else 0
        if window is None:
            fill = 0.0
        elif capacity:
            fill = min(1.0, window_events / capacity)
        else:
            fill = window.fill_ratio
        alert: AlertStatus = self.alerting.status
        return ModelStatus(
            model=self.name,
            reference_state="loaded" if self.profile is not None else "capturing",
            reference_events=(
                sum(int(f.n + f.missing) for f in self.profile.features.values())
                // max(1, len(self.profile.features))
                if self.profile is not None
                else self._captured
            ),
            window_events=window_events,
            window_capacity=capacity,
            window_fill_ratio=fill,
            evaluations=self.evaluations,
            last_evaluation_time=self.last_evaluation_time,
            last_result=self.last_result,
            drifted=alert.drifted,
            consecutive=alert.consecutive,
            alert_state=AlertState(alert.state).name.lower(),
            last_trigger_time=alert.last_trigger_time,
            threshold_values=self._threshold_lines,
            events_total=self.events_seen,
            late_events=self.late_events,
            retrain_triggers=self.retrain_triggers,
            performance=self.performance.report() if self.performance is not None else None,
            calibration=self._calibration_report,
            retrain_suppressed=self.grace.suppressed,
            retrain_grace_seconds=self.grace.seconds,
            retrain_grace_until=self.grace.until,
            min_effect=self.min_effects,
        )


@dataclass
class _Retired:
    """Counters of versions evicted from a model, so the model's counters never go back."""

    events: int = 0
    evaluations: int = 0
    late: int = 0
    retrain_triggers: int = 0

    def add(self, monitor: ModelMonitor) -> None:
        self.events += monitor.events_seen
        self.evaluations += monitor.evaluations
        self.late += monitor.late_events
        self.retrain_triggers += monitor.retrain_triggers


class VersionedModel:
    """The per-version monitors of one model with a ``versions`` section.

    ``default`` (the pipeline's monitor of the model) holds the model's top-level
    reference: rows without a version and, with ``on_new_version: fallback``, rows of
    unlisted versions. Every other version kept by the :class:`~monitor.model.versions.
    VersionRouter` has its own :class:`ModelMonitor` (window, alerting), against its
    configured profile or one captured from its own first ``capture_events`` rows. The
    performance join stays on ``default``: labels carry no version.
    """

    def __init__(
        self,
        default: ModelMonitor,
        profiles: Mapping[str, ReferenceProfile],
    ) -> None:
        versions = default.config.versions
        if versions is None:
            raise ValueError(f"model {default.name!r} has no versions section")
        missing = sorted(set(versions.references) - set(profiles))
        if missing:
            raise ProfileError(
                f"no reference profile loaded for version(s) {', '.join(missing)} of model "
                f"{default.name!r}"
            )
        self.name = default.name
        self.settings = versions
        self.default = default
        self._profiles = {v: profiles[v] for v in versions.references}
        self.router = VersionRouter(
            versions.references,
            on_new_version=versions.on_new_version,
            capture_events=versions.capture_events,
            max_versions=versions.max_versions,
        )
        self.monitors: dict[str, ModelMonitor] = {DEFAULT_VERSION: default}
        for version in versions.references:
            self.monitors[version] = self._new_monitor(version)
        self.active: str | None = None
        self.ignored = 0
        self.retired = _Retired()

    # -- monitors ----------------------------------------------------------------------

    def _new_monitor(self, version: str) -> ModelMonitor:
        """An empty monitor of a version: its configured profile, or a capture."""
        base = self.default
        profile = self._profiles.get(version)
        reference: str | CaptureReference = (
            self.settings.references[version]
            if profile is not None
            else CaptureReference(capture_events=self.settings.capture_events)
        )
        config = base.config.model_copy(
            update={"reference": reference, "performance": None, "versions": None}
        )
        return ModelMonitor(
            self.name,
            config,
            profile,
            numeric_columns=base.numeric_columns,
            categorical_columns=base.categorical_columns,
            version=version,
        )

    def _drop(self, version: str) -> None:
        monitor = self.monitors.pop(version, None)
        if monitor is not None:
            self.retired.add(monitor)
            logger.info(
                "model version forgotten (max_versions reached)",
                extra={"model": self.name, "version": version},
            )

    @property
    def active_monitor(self) -> ModelMonitor:
        """The monitor of the active version (the default one for fallback versions)."""
        active = self.active
        return self.monitors.get(active, self.default) if active else self.default

    def _activate(self, version: str) -> None:
        previous, self.active = self.active, version
        if previous is None or previous == version:
            return
        # A new version is deployed: a retrain grace period ends with it.
        for monitor in self.monitors.values():
            monitor.alerting.clear_grace()
        logger.info(
            "active model version changed",
            extra={"model": self.name, "from_version": previous, "to_version": version},
        )

    # -- rows --------------------------------------------------------------------------

    def ingest(self, columns: ModelColumns, versions: Sequence[str | None]) -> list[Evaluation]:
        """Route one batch of drift rows by version and feed each version's monitor."""
        if not versions:
            return []
        route = self.router.route(versions)
        for version in route.evicted:
            self._drop(version)
        whole = len(route.slices) == 1
        evaluations: list[Evaluation] = []
        for part in route.slices:
            if part.action is Action.SKIP:
                self.ignored += len(part.rows)
                continue
            key = DEFAULT_VERSION if part.action is Action.FALLBACK else part.version
            monitor = self.monitors.get(key)
            if monitor is None:
                monitor = self.monitors[key] = self._new_monitor(key)
                if part.action is Action.CAPTURE:
                    logger.info(
                        "new model version: capturing its reference from the stream",
                        extra={
                            "model": self.name,
                            "version": key,
                            "events": self.settings.capture_events,
                        },
                    )
            rows = columns if whole else columns.take(part.rows)
            label = None if part.version == DEFAULT_VERSION else part.version
            if monitor is self.default:
                # Rows of fallback versions are evaluated against the default reference.
                monitor.alerting.version = label
            found = monitor.ingest(rows)
            evaluations.extend(replace(e, version=label) for e in found)
            if part.action is Action.CAPTURE and monitor.reference_ready:
                self.router.mark_ready(key)
        if self.router.active_version is not None:
            self._activate(self.router.active_version)
        return evaluations

    # -- reporting ---------------------------------------------------------------------

    def _version_status(self, version: str, monitor: ModelMonitor) -> VersionStatus:
        if version == DEFAULT_VERSION:
            reference = "default"
        elif version in self._profiles:
            reference = "configured"
        else:
            reference = "captured"
        window = monitor.window
        return VersionStatus(
            version=version,
            reference=reference,
            ready=monitor.reference_ready,
            captured=monitor.captured,
            capture_target=monitor.capture_target,
            events_total=monitor.events_seen,
            window_events=window.events if window is not None else 0,
            evaluations=monitor.evaluations,
            alert_state=AlertState(monitor.alerting.status.state).name.lower(),
            last_evaluation_time=monitor.last_evaluation_time,
            last_result=monitor.last_result,
        )

    @property
    def events_seen(self) -> int:
        return self.retired.events + sum(m.events_seen for m in self.monitors.values())

    def status(self) -> ModelStatus:
        """The active version's status; counters summed over every version."""
        monitors = self.monitors.values()
        retired = self.retired
        active = self.active_monitor.status()
        return replace(
            active,
            events_total=self.events_seen,
            evaluations=retired.evaluations + sum(m.evaluations for m in monitors),
            late_events=retired.late + sum(m.late_events for m in monitors),
            retrain_triggers=retired.retrain_triggers + sum(m.retrain_triggers for m in monitors),
            performance=(
                self.default.performance.report() if self.default.performance is not None else None
            ),
            version=self.active,
            versions=tuple(self._version_status(v, m) for v, m in self.monitors.items()),
            ignored_version_events=self.ignored,
        )

    # -- checkpoints -------------------------------------------------------------------

    def state(self, partitions: Sequence[str]) -> ModelState:
        """The default monitor's state with the router and every other version's state.

        Version ``i``'s arrays are stored under ``version.<i>/<key>``; everything else
        under the ``versions`` scalar, so a checkpoint without it (taken before the model
        had versions) restores the default reference alone.
        """
        state = self.default.state(partitions)
        entries: list[dict[str, Any]] = []
        for i, (version, monitor) in enumerate(self.monitors.items()):
            if version == DEFAULT_VERSION:
                continue
            sub = monitor.state(partitions)
            prefix = f"version.{i}/"
            for key, array in sub.arrays.items():
                state.arrays[prefix + key] = array
            entries.append(
                {
                    "version": version,
                    "fingerprint": sub.fingerprint,
                    "prefix": prefix,
                    "scalars": sub.scalars,
                }
            )
        state.scalars["versions"] = {
            "router": self.router.state_dict(),
            "active": self.active,
            "ignored": self.ignored,
            "retired": [
                self.retired.events,
                self.retired.evaluations,
                self.retired.late,
                self.retired.retrain_triggers,
            ],
            "monitors": entries,
        }
        return state

    def restore(self, state: ModelState) -> None:
        """Resume every version; raises ``CheckpointError`` when the default does not fit.

        A version whose own state does not fit the running config (its profile changed)
        is dropped with a warning: a listed version starts again with an empty window, an
        unlisted one is captured again when it shows up.
        """
        self.default.restore(state)
        self.monitors = {DEFAULT_VERSION: self.default}
        self.router = VersionRouter(
            self.settings.references,
            on_new_version=self.settings.on_new_version,
            capture_events=self.settings.capture_events,
            max_versions=self.settings.max_versions,
        )
        self.active, self.ignored, self.retired = None, 0, _Retired()
        saved = state.scalars.get("versions")
        if saved is not None:
            try:
                self._restore_versions(state, saved)
            except (KeyError, TypeError, ValueError) as exc:
                raise CheckpointError(
                    f"checkpoint of model {self.name!r} has malformed version state ({exc!r})"
                ) from None
        for version in self.router.versions:
            if version in self.monitors:
                continue
            if version in self._profiles:
                self.monitors[version] = self._new_monitor(version)
            else:
                self.router.forget(version)
        for version in self._profiles:
            self.monitors.setdefault(version, self._new_monitor(version))

    def _restore_versions(self, state: ModelState, saved: Mapping[str, Any]) -> None:
        self.router.load_state_dict(saved["router"])
        self.active = None if saved["active"] is None else str(saved["active"])
        self.ignored = int(saved["ignored"])
        self.retired = _Retired(*(int(n) for n in saved["retired"]))
        for entry in saved["monitors"]:
            version, prefix = str(entry["version"]), str(entry["prefix"])
            monitor = self._new_monitor(version)
            sub = ModelState(
                model=self.name,
                fingerprint=str(entry["fingerprint"]),
                partitions=state.partitions,
                scalars=dict(entry["scalars"]),
                arrays={
                    key.removeprefix(prefix): array
                    for key, array in state.arrays.items()
                    if key.startswith(prefix)
                },
            )
            try:
                monitor.restore(sub)
            except CheckpointError as exc:
                logger.warning(
                    "checkpointed state of a model version does not fit the config; "
                    "the version starts again",
                    extra={"model": self.name, "version": version, "error": str(exc)},
                )
                self.router.forget(version)
                continue
            self.monitors[version] = monitor
            if monitor.reference_ready and not self.router.is_ready(version):
                self.router.mark_ready(version)


class Pipeline:
    """All monitored models of one configuration; feeds batches of raw payloads.

    ``monitors`` holds one :class:`ModelMonitor` per model: its top-level reference. Models
    with a ``versions`` section also have a :class:`VersionedModel` in ``versioned``
    (its ``default`` is the same monitor), which owns the other versions' monitors.
    """

    def __init__(
        self,
        config: Config,
        profiles: Mapping[str, ReferenceProfile],
        results: ResultsStore | None = None,
        performance: Mapping[str, ReferencePerformance] | None = None,
        version_profiles: Mapping[str, Mapping[str, ReferenceProfile]] | None = None,
        calibrations: Mapping[str, ModelCalibration] | None = None,
    ) -> None:
        """``performance``: reference performance per model (from the profile files);
        ``version_profiles``: per model, the profiles of its listed versions;
        ``calibrations``: calibrations stored in the profile files."""
        self.config = config
        self.results = results or ResultsStore()
        self._schemas: dict[str, tuple[tuple[object, ...], DecodeSchema]] = {}
        self._header_versions: dict[str, bool] = {}
        self._version_profiles = version_profiles or {}
        self.monitors: dict[str, ModelMonitor] = {}
        self.versioned: dict[str, VersionedModel] = {}
        base = schema_for(config, None)
        for name, model_config in config.models.items():
            columns = base.models[name]
            self.monitors[name] = ModelMonitor(
                name,
                model_config,
                profiles.get(name),
                numeric_columns=columns.numeric_names,
                categorical_columns=columns.categorical_names,
                reference_performance=(performance or {}).get(name),
                calibration=(calibrations or {}).get(name),
            )
            if model_config.versions is not None:
                self.versioned[name] = VersionedModel(
                    self.monitors[name], self._version_profiles.get(name, {})
                )
        self.publish()

    def reset(self, model: str) -> None:
        """Forget a model's live state (its partitions went to another replica)."""
        self.monitors[model] = self.monitors[model].fresh()
        if model in self.versioned:
            self.versioned[model] = VersionedModel(
                self.monitors[model], self._version_profiles.get(model, {})
            )
        self.results.publish(self.status(model))

    def _category_codes(self, model: str) -> tuple[CategoryCodes, ...] | None:
        """The codes decode may hand over for ``model`` instead of category strings.

        None for models with versions: each version encodes against its own profile, and
        the columnar scanner does not read the version field.
        """
        return None if model in self.versioned else self.monitors[model].category_codes

    def schema(self, topic: str | None) -> DecodeSchema:
        """The decode schema of ``topic``, with category codes for every model whose
        reference is known (rebuilt when a reference is captured or a model reset)."""
        key = topic or ""
        codes = tuple(self._category_codes(name) for name in self.monitors)
        cached = self._schemas.get(key)
        if cached is None or cached[0] != codes:
            base = schema_for(self.config, topic)
            models = {
                name: replace(ms, codes=self._category_codes(name))
                for name, ms in base.models.items()
            }
            self._schemas[key] = (codes, replace(base, models=models))
        return self._schemas[key][1]

    def wants_header_versions(self, topic: str | None) -> bool:
        """Whether a model of ``topic`` has versions, so the ``version`` header is read.

        A topic bound to a model asks that model; an unbound topic may carry any model.
        """
        if topic is None or not self.versioned:
            return False
        if topic not in self._header_versions:
            known = {t.name: t for t in self.config.kafka.topics}
            bound = known[topic].model if topic in known else None
            self._header_versions[topic] = (
                bound in self.versioned if bound is not None else bool(self.versioned)
            )
        return self._header_versions[topic]

    @property
    def references_ready(self) -> bool:
        return all(m.reference_ready for m in self.monitors.values())

    # -- per-model state (checkpoints and recovery) --------------------------------------

    def status(self, model: str) -> ModelStatus:
        versioned = self.versioned.get(model)
        return versioned.status() if versioned is not None else self.monitors[model].status()

    def events_seen(self, model: str) -> int:
        """Events of the model fed to its windows and captures, over every version."""
        versioned = self.versioned.get(model)
        return versioned.events_seen if versioned is not None else self.monitors[model].events_seen

    def _late_events(self, model: str) -> int:
        versioned = self.versioned.get(model)
        if versioned is None:
            return self.monitors[model].late_events
        return versioned.retired.late + sum(m.late_events for m in versioned.monitors.values())

    def model_state(self, model: str, partitions: Sequence[str]) -> ModelState:
        """Everything needed to resume a model exactly, every version included."""
        versioned = self.versioned.get(model)
        if versioned is not None:
            return versioned.state(partitions)
        return self.monitors[model].state(partitions)

    def restore_model(self, model: str, state: ModelState) -> None:
        """Resume a model from :meth:`model_state`; ``CheckpointError`` if it does not fit."""
        versioned = self.versioned.get(model)
        if versioned is not None:
            versioned.restore(state)
        else:
            self.monitors[model].restore(state)

    # -- batches -----------------------------------------------------------------------

    def process(
        self,
        payloads: Sequence[bytes | None],
        kafka_ts: KafkaTimes,
        topic: str | None = None,
        header_versions: Sequence[str | None] | None = None,
    ) -> BatchOutcome:
        """Decode and account for one batch of messages from one topic.

        ``header_versions``: per message, the value of its ``version`` header; an event
        without a version field takes its message's (see :meth:`wants_header_versions`).
        """
        schema = self.schema(topic)
        decoded: DecodedBatch = decode_batch(payloads, kafka_ts, schema)
        outcome = BatchOutcome(rejected=list(decoded.rejected))
        for model, columns in decoded.models.items():
            monitor = self.monitors[model]
            rows = len(columns.ts)
            if rows == 0:
                continue
            outcome.accepted[model] = outcome.accepted.get(model, 0) + rows
            outcome.model_messages[model] = np.unique(columns.msg_index)
            if columns.unknown_features:
                outcome.unknown_features[model] = columns.unknown_features
            outcome.last_event_time[model] = float(np.max(columns.ts))
            versioned = self.versioned.get(model)
            if versioned is not None:
                columns = _with_versions(columns, header_versions)
            drift_rows, label_only = monitor.split_labels(columns)
            if label_only is not None:
                outcome.labels[model] = int(label_only.sum())
            outcome.performance.extend(monitor.ingest_performance(columns, label_only))
            late_before = self._late_events(model)
            if versioned is None:
                outcome.evaluations.extend(monitor.ingest(drift_rows))
            else:
                ignored_before = versioned.ignored
                outcome.evaluations.extend(versioned.ingest(drift_rows, drift_rows.versions))
                if versioned.ignored > ignored_before:
                    outcome.ignored_versions[model] = versioned.ignored - ignored_before
            late = self._late_events(model) - late_before
            if late > 0:
                outcome.late[model] = late
        for model in outcome.accepted:
            self.results.publish(self.status(model))
        return outcome

    def publish(self) -> None:
        for model in self.monitors:
            self.results.publish(self.status(model))


def _with_versions(
    columns: ModelColumns, header_versions: Sequence[str | None] | None
) -> ModelColumns:
    """Columns whose ``versions`` has one entry per row: the event's version field, else
    the message's ``version`` header, else ``None``."""
    versions = columns.versions
    rows = len(columns.ts)
    if len(versions) != rows:
        versions = [None] * rows
    if header_versions is not None and None in versions:
        from_header = [header_versions[i] for i in columns.msg_index.tolist()]
        versions = [v if v is not None else h for v, h in zip(versions, from_header, strict=True)]
    if versions is columns.versions:
        return columns
    return replace(columns, versions=versions)
