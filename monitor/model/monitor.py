"""One model (or model version) against one reference: ingest rows, evaluate windows.

:class:`ModelMonitor` composes parts that each own their state: the reference capture
(:mod:`~monitor.model.capture`), the thresholds and their false-alarm calibration
(:mod:`~monitor.model.calibration`), the window once a reference is installed
(:mod:`~monitor.model.evaluation`), the alert (:mod:`~monitor.model.alerting`) with the
model's retrain grace, and the performance join (:mod:`~monitor.model.performance`). Its
checkpoint layout is in :mod:`monitor.model.state`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

from monitor.config import CaptureReference, ModelConfig
from monitor.errors import CheckpointError, ProfileError
from monitor.ingest.decode import CategoryCodes, ModelColumns
from monitor.model.absent import AbsentFeatures
from monitor.model.alerting import (
    Alerting,
    AlertRule,
    RetrainGrace,
)
from monitor.model.budget import ModelCalibration
from monitor.model.calibration import ModelThresholds, configured_thresholds
from monitor.model.capture import ReferenceCapture
from monitor.model.evaluation import (
    Evaluation,
    ModelStep,
    WindowEvaluator,
    restrict_profile,
)
from monitor.model.performance import (
    ModelPerformance,
    PerformanceEvaluation,
    predicted_column,
    prediction_names,
    split_label_rows,
)
from monitor.model.snapshot import monitor_hot_counts, monitor_status
from monitor.model.state import (
    SEQUENTIAL,
    WINDOW,
    ModelState,
    alert_from_json,
    alert_to_json,
    put_state_dict,
)
from monitor.model.state import take_prefixed as take_state
from monitor.model.status import ModelStatus
from monitor.performance import ReferencePerformance
from monitor.stats import (
    DriftResult,
    DriftThresholds,
    FeatureKind,
    ReferenceProfile,
    SlotWindow,
)
from monitor.stats.profile import profile_from_json, profile_to_json

logger = logging.getLogger(__name__)


def model_fingerprint(
    config: ModelConfig,
    performance: ModelPerformance | None,
    profile: ReferenceProfile | None,
) -> str:
    """What a checkpointed state must have been built with to be restored."""
    # `versions` is left out: the per-version monitors check their own fingerprints, so
    # adding a versions section keeps the checkpointed state of the default reference.
    # `alert.retrain_on_absent_feature` changes decisions, not state: left out too, so
    # checkpoints taken before the key existed still restore.
    exclude: dict[str, Any] = {"versions": True, "alert": {"retrain_on_absent_feature"}}
    config_json = json.dumps(
        config.model_dump(mode="json", warnings=False, exclude=exclude), sort_keys=True
    )
    digest = hashlib.sha256(config_json.encode())
    if performance is not None:
        digest.update(performance.fingerprint_data)
    if profile is not None:
        digest.update(json.dumps(profile_to_json(profile), sort_keys=True).encode())
    return digest.hexdigest()


class ModelMonitor:
    """Reference, window and alert of one model (see the module docstring)."""

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
        """``version``: the model version this monitor watches (carried by drift events);
        ``calibration``: a stored one, used when it fits the profile and budget."""
        self.name = name
        self.config = config
        self.version = version
        self.kinds = {
            feature: FeatureKind(kind) for feature, kind in config.feature_kinds().items()
        }
        self.numeric_columns = list(numeric_columns)
        self.categorical_columns = list(categorical_columns)
        self.events_seen = 0
        self.late_events = 0
        self.evaluations = 0
        self.last_evaluation_time: float | None = None
        self.last_result: DriftResult | None = None
        self.retrain_triggers = 0
        thresholds, tests, threshold_values = configured_thresholds(config, self.kinds)
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
        self.limits = ModelThresholds(name, config, self.alerting, thresholds, tests, calibration)
        self.absent = AbsentFeatures(
            name, retrain=config.alert.retrain_on_absent_feature, version=version
        )
        self.min_effects = {
            feature: measures
            for feature in self.kinds
            if (measures := config.min_effect_for(feature))
        }
        reference = config.reference
        self.capture = ReferenceCapture(
            name,
            config,
            self.kinds,
            self.numeric_columns,
            self.categorical_columns,
            reference.capture_events if isinstance(reference, CaptureReference) else 0,
        )
        self.category_codes: tuple[CategoryCodes, ...] | None = None
        self.evaluator: WindowEvaluator | None = None  # once a reference is installed
        self._file_profile = profile
        self._reference_performance = reference_performance
        self._prediction_index = [self.numeric_columns.index(n) for n in prediction_names(config)]
        self.performance: ModelPerformance | None = None
        if config.performance is not None:
            self.performance = ModelPerformance(
                name,
                config,
                reference_performance,
                prediction_index=self._prediction_index,
                grace=self.grace,
                predicted_column=predicted_column(
                    config, self.numeric_columns, self.categorical_columns
                ),
            )
        if profile is not None:
            self._install_profile(profile)

    @cached_property
    def fingerprint(self) -> str:  # on first use: hashing the profile is slow at 1,000 models
        return model_fingerprint(self.config, self.performance, self._file_profile)

    # -- the model interface (see monitor.model.model) -----------------------------------

    @property
    def default(self) -> ModelMonitor:
        """A model without versions is its own top-level reference's monitor."""
        return self

    reads_versions = False

    # -- reference ---------------------------------------------------------------------

    @property
    def capture_target(self) -> int:
        return self.capture.target

    @property
    def reference_ready(self) -> bool:
        return self.evaluator is not None

    @property
    def profile(self) -> ReferenceProfile | None:
        """The installed reference, in configuration order (``None`` while capturing)."""
        return self.evaluator.profile if self.evaluator is not None else None

    @property
    def window(self) -> SlotWindow | None:
        return self.evaluator.window if self.evaluator is not None else None

    @property
    def captured(self) -> int:
        """Rows taken into the reference capture so far."""
        return self.capture.captured

    @property
    def thresholds(self) -> dict[str, DriftThresholds]:
        """The thresholds in use (calibrated ones once a budget's calibration is in place)."""
        return self.limits.thresholds

    def _install_profile(self, profile: ReferenceProfile) -> None:
        missing = [f for f in self.kinds if f not in profile.features]
        if missing:
            raise ProfileError(
                f"reference profile of model {self.name!r} has no feature(s) "
                f"{', '.join(missing)}; rebuild it with `driftmon baseline` for this config"
            )
        self.evaluator = WindowEvaluator(
            self.name,
            self.config,
            restrict_profile(profile, list(self.kinds)),
            numeric_columns=self.numeric_columns,
            categorical_columns=self.categorical_columns,
            limits=self.limits,
            alerting=self.alerting,
            min_effects=self.min_effects,
            absent=self.absent,
        )
        # With the reference known, decode can hand over category codes instead of strings
        # (the columnar scanner). The performance join still needs ids and raw labels.
        if self.config.performance is None:
            self.category_codes = self.evaluator.encoder.category_codes()
        self.limits.install(self.evaluator.profile)

    # -- false-alarm budget ------------------------------------------------------------

    @property
    def calibration(self) -> ModelCalibration | None:
        return self.limits.calibration

    @property
    def calibration_pending(self) -> bool:
        """True while a budget is configured and its calibration is not in place yet."""
        return self.limits.pending

    def ensure_calibrated(self) -> None:
        """Compute the calibration if it is still pending (a no-op otherwise)."""
        self.limits.ensure_calibrated(self.profile)

    # -- rows --------------------------------------------------------------------------

    def split_labels(self, columns: ModelColumns) -> tuple[ModelColumns, np.ndarray | None]:
        """The rows for the drift windows, and the mask of label-only rows in ``columns``."""
        return split_label_rows(columns, self._prediction_index)

    def ingest_performance(
        self, columns: ModelColumns, label_only: np.ndarray | None = None
    ) -> list[PerformanceEvaluation]:
        """Feed a batch's predictions and labels to the join (models with ``performance``)."""
        if self.performance is None:
            return []
        found = self.performance.ingest(columns, label_only)
        self.retrain_triggers += sum(e.alert.event is not None for e in found)
        return found

    def feed(
        self, columns: ModelColumns, header_versions: Sequence[str | None] | None = None
    ) -> ModelStep:
        """One batch of the model's rows: labels to the join, the rest to the window.

        ``header_versions`` is for models with versions; a monitor has one reference.
        """
        drift_rows, label_only = self.split_labels(columns)
        performance = self.ingest_performance(columns, label_only)
        return ModelStep(self.ingest(drift_rows), performance)

    def ingest(self, columns: ModelColumns) -> list[Evaluation]:
        """Feed one batch of this model's rows; evaluate at every slide of a full window."""
        rows = len(columns.ts)
        if rows == 0:
            return []
        remaining: ModelColumns | None = columns
        if self.profile is None:
            remaining, captured = self.capture.take(columns)
            if captured is not None:
                self._install_profile(captured)
        self.events_seen += rows
        evaluator = self.evaluator
        if remaining is None or evaluator is None:
            return []
        if self.calibration_pending:
            self.ensure_calibrated()
        window = evaluator.window
        # Events of this model before the window's first event (the reference capture).
        offset = self.events_seen - window.events_seen - len(remaining.ts)
        late_before = window.late_dropped
        evaluations = [self._counted(e) for e in evaluator.run(remaining, offset)]
        self.late_events += window.late_dropped - late_before
        return evaluations

    def _counted(self, evaluation: Evaluation) -> Evaluation:
        self.evaluations += 1
        if evaluation.alert.event is not None:
            self.retrain_triggers += 1
        self.last_evaluation_time = time.time()
        if evaluation.trigger == "slide":  # an alarm's result holds no window statistics
            self.last_result = evaluation.result
        return evaluation

    # -- checkpoints -------------------------------------------------------------------

    def fresh(self) -> ModelMonitor:
        """A new monitor of the same model with empty state."""
        # A calibration of the file profile stays valid: the new monitor reuses it.
        keep = self.calibration if self._file_profile is not None else None
        return ModelMonitor(
            self.name,
            self.config,
            self._file_profile,
            numeric_columns=self.numeric_columns,
            categorical_columns=self.categorical_columns,
            reference_performance=self._reference_performance,
            version=self.version,
            calibration=keep or self.limits.stored,
        )

    def state(self, partitions: Sequence[str]) -> ModelState:
        """Everything needed to resume this model exactly (see :mod:`monitor.model.state`)."""
        scalars: dict[str, Any] = {
            "events_seen": self.events_seen,
            "evaluations": self.evaluations,
            "late_events": self.late_events,
            "retrain_triggers": self.retrain_triggers,
            "last_evaluation_time": self.last_evaluation_time,
            "alert": alert_to_json(self.alerting.status),
            "captured": self.capture.captured,
            "grace": self.grace.state(),
        }
        if self.calibration is not None:
            scalars["calibration"] = self.calibration.to_json()
        arrays: dict[str, np.ndarray] = {}
        if self.profile is not None and self._file_profile is None:
            scalars["profile"] = profile_to_json(self.profile)
        if self.evaluator is not None:
            put_state_dict(scalars, arrays, WINDOW, self.evaluator.window.state_dict())
            put_state_dict(scalars, arrays, SEQUENTIAL, self.evaluator.sequential_state())
        capture_scalars, capture_arrays = self.capture.state()
        scalars.update(capture_scalars)
        arrays.update(capture_arrays)
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
                self.limits.adopt(stored)
        window_state = take_state(s, state.arrays, WINDOW)
        if self.evaluator is not None:
            sequential = take_state(s, state.arrays, SEQUENTIAL)
            self.evaluator.resume(self.config, window_state, sequential)
        self.capture.restore(s, state.arrays)
        self.events_seen = int(s["events_seen"])
        self.evaluations = int(s["evaluations"])
        self.late_events = int(s["late_events"])
        self.retrain_triggers = int(s["retrain_triggers"])
        self.last_evaluation_time = s.get("last_evaluation_time")
        self.alerting.restore(alert_from_json(s["alert"]))
        self.grace.restore(s.get("grace"))
        if self.performance is not None:
            self.performance.restore(s, state.arrays)

    def status(self) -> ModelStatus:
        """An immutable snapshot for metrics and ``/status``."""
        return monitor_status(self)

    @property
    def steady(self) -> bool:
        """A batch without an evaluation moves only :meth:`hot_counts` (see ``Model``)."""
        return self.evaluator is not None and self.performance is None and not self.limits.pending

    hot_counts = monitor_hot_counts  # the status fields every batch moves
