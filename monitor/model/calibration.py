"""The thresholds one model decides drift with, and the false-alarm calibration behind them.

Without a budget the thresholds are the config's. With ``alert.false_alarms_per_month``
they are calibrated for the installed reference (:mod:`monitor.model.budget`): from a
stored calibration (the profile file's, or the previous monitor's after a handover) or a
checkpoint's when its digest matches the profile and budget, else computed by
:meth:`ModelThresholds.ensure_calibrated` (the first batch, or the daemon once checkpoints
had their chance). Until then no threshold line is exported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, replace

from monitor.config import ModelConfig
from monitor.model.alerting import Alerting
from monitor.model.budget import (
    ModelCalibration,
    budget_for,
    calibrate_model,
    calibration_digest,
    decide,
    effective_thresholds,
    without_overridden,
)
from monitor.model.status import CalibrationReport
from monitor.stats import REGISTRY, DriftResult, DriftThresholds, ReferenceProfile
from monitor.stats.calibration import Calibration

logger = logging.getLogger(__name__)


def threshold_lines(
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


def configured_thresholds(
    config: ModelConfig, features: Iterable[str]
) -> tuple[dict[str, DriftThresholds], dict[str, list[str]], dict[str, dict[str, float]]]:
    """Per feature, the config's thresholds, its tests, and the thresholds as the alert
    quotes them in drift events (the ones set)."""
    thresholds: dict[str, DriftThresholds] = {}
    tests: dict[str, list[str]] = {}
    values: dict[str, dict[str, float]] = {}
    for feature in features:
        limits = config.thresholds_for(feature).model_dump()
        thresholds[feature] = DriftThresholds(**limits)
        tests[feature] = list(config.tests_for(feature))
        values[feature] = {k: float(v) for k, v in limits.items() if v is not None}
    return thresholds, tests, values


class ModelThresholds:
    """Thresholds, calibration lifecycle and what ``/status`` reports of them.

    ``alerting``: the model's alert, whose drift events quote the thresholds in use; it
    is told whenever a calibration replaces them.
    """

    def __init__(
        self,
        name: str,
        config: ModelConfig,
        alerting: Alerting,
        thresholds: dict[str, DriftThresholds],
        tests: dict[str, list[str]],
        stored: ModelCalibration | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.alerting = alerting
        self.thresholds = thresholds
        self.tests = tests
        #: Offered by the profile file or a handover; used when its digest fits.
        self.stored = stored
        self.calibration: ModelCalibration | None = None
        self.report: CalibrationReport | None = None
        # Fixed by the config or the calibration: built here, not per status snapshot.
        self.lines = threshold_lines(tests, thresholds)
        self._digest: str | None = None  # a usable calibration's; None: no budget or no profile
        self._bh: Calibration | None = None
        self._overridden: dict[str, dict[str, float | None]] = {}

    @property
    def pending(self) -> bool:
        """True while a budget is configured and its calibration is not in place yet."""
        return self._digest is not None and self.calibration is None

    def install(self, profile: ReferenceProfile) -> None:
        """A reference is installed: with a budget, its calibration is now pending."""
        if budget_for(self.config) is None:
            return
        self.calibration = None
        self._digest = calibration_digest(self.config, profile)
        self.lines = {}  # no line until the calibration is in place
        self.report = self._pending_report()
        self.adopt(self.stored)

    def ensure_calibrated(self, profile: ReferenceProfile | None) -> None:
        """Compute the calibration if it is still pending (a no-op otherwise)."""
        if not self.pending or profile is None:
            return
        self._use(calibrate_model(self.config, profile))

    def adopt(self, candidate: ModelCalibration | None) -> bool:
        """Use a stored calibration when it was made for this profile and budget."""
        if candidate is None or not self.pending:
            return False
        if candidate.digest != self._digest:
            logger.info(
                "stored calibration does not match the profile and budget; recalibrating",
                extra={"model": self.name, "source": candidate.source},
            )
            return False
        self._use(candidate)
        return True

    def decide(self, result: DriftResult) -> DriftResult:
        """Re-decide an evaluation under the calibration (Benjamini-Hochberg when set)."""
        return decide(result, self._bh, self._overridden)

    def _use(self, found: ModelCalibration) -> None:
        cal = found.calibration
        self.calibration = found
        self.thresholds, self._overridden = effective_thresholds(self.config, found)
        self.alerting.set_thresholds(
            {
                feature: {k: float(v) for k, v in asdict(limits).items() if v is not None}
                for feature, limits in self.thresholds.items()
            }
        )
        self.lines = threshold_lines(self.tests, self.thresholds)
        self._bh = (
            without_overridden(cal, self._overridden) if cal.budget.correction == "bh" else None
        )
        self.report = self._report(found)
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
            budget_weights=alert.budget_split().to_json(),
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
            critical_values={
                name: {**values, **{t: s.h for t, s in found.sequential.get(name, {}).items()}}
                for name, values in cal.threshold_values().items()
            },
            overridden=self._overridden,
        )
