"""One model's false-alarm budget and effect sizes: what decides drift beyond raw thresholds.

With ``alert.false_alarms_per_month`` the model's thresholds are not the raw ``thresholds``
but critical values calibrated by :func:`monitor.stats.calibration.calibrate` for its
window (size, slide, evaluations a month, tests, ``consecutive``):

* :func:`budget_for` turns the ``alert:`` and ``window:`` sections into a
  :class:`~monitor.stats.calibration.Budget`. A count window needs ``events_per_second``
  (config validation asks for it). A time window evaluates every ``slide_seconds``; with
  ``events_per_second`` the calibration assumes windows of ``rate x seconds`` events, and
  without it windows of ``min_events`` events, the smallest window that is evaluated. Null
  statistics shrink as windows grow, so that is conservative: the budget holds for every
  window, at the price of later detection in windows much larger than ``min_events``.
  ``min_features`` above 1 gets no credit (the bound assumes one feature is enough).
* :func:`calibrate_model` runs the calibration, window checks and sequential tests sharing
  the budget by ``alert.budget_weights`` (:mod:`monitor.stats.budget_split`: each check
  gets its family's weight over all checks' weights); :class:`ModelCalibration` carries it with a
  digest of everything it depends on (the profile and every budget parameter) and where it
  came from (``computed``, ``checkpoint``, ``profile``), so a restart or a profile file
  that stored one reuses it only when the digest matches.
* :func:`effective_thresholds` overlays the thresholds the config sets *explicitly* (the
  model's ``thresholds`` keys that were written, then the feature's) on the calibrated
  ones: raw thresholds win where given.
* :func:`decide` re-decides an evaluation with Benjamini-Hochberg when ``correction: bh``
  (Bonferroni needs nothing: ``evaluate`` with the effective thresholds already is it);
  checks with an explicit raw threshold keep the raw decision and stay out of the BH set.
* :func:`apply_min_effects` then drops drifted features whose effect is below
  ``min_effect`` (``alert.min_effect`` with per-feature overrides).

``driftmon baseline`` stores the calibration in the profile file under ``calibration``
(:mod:`monitor.model.reference_file` reads it back); checkpoints store it in the model's
state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from monitor.config import (
    CountWindowConfig,
    ModelConfig,
)
from monitor.stats import SEQUENTIAL_TESTS, DriftResult, DriftThresholds, ReferenceProfile
from monitor.stats.calibration import (
    CALIBRATION_SCHEMA_VERSION,
    SECONDS_PER_MONTH,
    Budget,
    Calibration,
    calibrate,
)
from monitor.stats.effect import apply_min_effect
from monitor.stats.profile import profile_to_json
from monitor.stats.sequential_calibration import (
    PARAMETERS,
    SequentialThreshold,
    calibrate_sequential,
)

__all__ = [
    "ModelCalibration",
    "events_per_month",
    "apply_min_effects",
    "budget_for",
    "calibrate_model",
    "calibration_digest",
    "decide",
    "effective_thresholds",
    "without_overridden",
]

logger = logging.getLogger(__name__)


def budget_for(config: ModelConfig) -> Budget | None:
    """The model's budget, or ``None`` without ``alert.false_alarms_per_month``."""
    alert = config.alert
    if alert.false_alarms_per_month is None:
        return None
    common: dict[str, Any] = {
        "consecutive": alert.consecutive,
        "correction": alert.correction,
        "dependence": alert.dependence,
    }
    window = config.window
    if isinstance(window, CountWindowConfig):
        if alert.events_per_second is None:  # config validation refuses this
            raise ValueError("a count window budget needs alert.events_per_second")
        return Budget(
            alert.false_alarms_per_month,
            window_events=window.events,
            slide_events=window.slide,
            events_per_second=alert.events_per_second,
            **common,
        )
    if alert.events_per_second is not None:
        return Budget.for_time_window(
            alert.false_alarms_per_month,
            seconds=window.seconds,
            slide_seconds=window.slide_seconds,
            events_per_second=alert.events_per_second,
            **common,
        )
    # No rate: the smallest evaluated window (conservative, see the module docstring).
    events = window.min_events
    return Budget(
        alert.false_alarms_per_month,
        window_events=events,
        slide_events=max(1, round(events * window.slide_seconds / window.seconds)),
        evaluations_per_month=SECONDS_PER_MONTH / window.slide_seconds,
        **common,
    )


def _tests(config: ModelConfig, profile: ReferenceProfile) -> dict[str, list[str]]:
    return {name: list(config.tests_for(name)) for name in profile.features}


def _sequential_checks(tests: Mapping[str, list[str]]) -> int:
    return sum(t in SEQUENTIAL_TESTS for names in tests.values() for t in names)


def _sequential_counts(tests: Mapping[str, list[str]]) -> dict[str, int]:
    """Sequential test -> the features running it (tests run by none left out)."""
    counts = {t: sum(t in names for names in tests.values()) for t in SEQUENTIAL_TESTS}
    return {t: n for t, n in counts.items() if n}


def events_per_month(budget: Budget) -> float:
    """The model's events a month: the configured rate, or (a time window without one)
    ``min_events`` per window, the assumption the window tests' budget makes too."""
    if budget.events_per_second is not None:
        return budget.events_per_second * SECONDS_PER_MONTH
    return budget.evaluations_per_month_value * budget.slide_events


def _missing_ratio_checked(config: ModelConfig) -> bool:
    # Only an explicit model-level `missing_ratio: null` switches the check off everywhere.
    return not (
        "missing_ratio" in config.thresholds.model_fields_set
        and config.thresholds.missing_ratio is None
    )


def calibration_digest(config: ModelConfig, profile: ReferenceProfile) -> str:
    """A digest of everything a model's calibration depends on (profile and budget)."""
    budget = budget_for(config)
    if budget is None:
        raise ValueError("the model has no false-alarm budget")
    tests = _tests(config, profile)
    document: dict[str, Any] = {
        "schema_version": CALIBRATION_SCHEMA_VERSION,
        "profile": profile_to_json(profile),
        "budget": budget.to_json(),
        "tests": tests,
        "missing_ratio": _missing_ratio_checked(config),
        "draws": config.alert.calibration_draws,
        "seed": config.alert.calibration_seed,
    }
    if _sequential_checks(tests):
        document["sequential"] = PARAMETERS
        document["budget_weights"] = config.alert.budget_split().to_json()
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class ModelCalibration:
    """A model's calibration with its digest, where it came from and what it cost."""

    calibration: Calibration
    digest: str
    source: str  # "computed" | "checkpoint" | "profile"
    seconds: float  # spent computing it (when and wherever that was)
    #: feature -> sequential test -> its threshold (empty without sequential tests).
    sequential: Mapping[str, Mapping[str, SequentialThreshold]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """For the checkpoint and the profile file (read back by :meth:`from_json`)."""
        out: dict[str, Any] = {
            "digest": self.digest,
            "seconds": self.seconds,
            "calibration": self.calibration.to_json(),
        }
        if self.sequential:
            out["sequential"] = {
                name: {test: t.to_json() for test, t in tests.items()}
                for name, tests in self.sequential.items()
            }
        return out

    @classmethod
    def from_json(cls, data: Any, source: str) -> ModelCalibration:
        """Read :meth:`to_json`'s document; ``ValueError`` when it is not one."""
        if not isinstance(data, Mapping):
            raise ValueError("a stored calibration must be a JSON object")
        try:
            return cls(
                calibration=Calibration.from_json(data["calibration"]),
                digest=str(data["digest"]),
                source=source,
                seconds=float(data.get("seconds", 0.0)),
                sequential={
                    str(name): {
                        str(test): SequentialThreshold.from_json(t) for test, t in tests.items()
                    }
                    for name, tests in data.get("sequential", {}).items()
                },
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"incomplete stored calibration ({exc!r})") from None


def calibrate_model(config: ModelConfig, profile: ReferenceProfile) -> ModelCalibration:
    """Calibrate the critical values of ``profile``'s features for the model's budget."""
    budget = budget_for(config)
    if budget is None:
        raise ValueError("the model has no false-alarm budget")
    started = time.perf_counter()
    tests = _tests(config, profile)
    counts = _sequential_counts(tests)
    split = config.alert.budget_split()
    calibration = calibrate(
        profile,
        budget,
        tests=tests,
        missing_ratio=_missing_ratio_checked(config),
        draws=config.alert.calibration_draws,
        seed=config.alert.calibration_seed,
        sequential_checks=split.window_equivalents(counts),
    )
    sequential: dict[str, dict[str, SequentialThreshold]] = {}
    if counts:
        # Each check's share is its family's weight over all checks' weights (budget_split).
        shares = split.sequential_shares(
            budget.false_alarms_per_month, calibration.checks_per_evaluation, counts
        )
        sequential = calibrate_sequential(
            profile,
            tests,
            alarms_per_month=shares,
            events_per_month=events_per_month(budget),
            seed=config.alert.calibration_seed,
        )
    return ModelCalibration(
        calibration=calibration,
        digest=calibration_digest(config, profile),
        source="computed",
        seconds=time.perf_counter() - started,
        sequential=sequential,
    )


def effective_thresholds(
    config: ModelConfig, found: ModelCalibration
) -> tuple[dict[str, DriftThresholds], dict[str, dict[str, float | None]]]:
    """Per feature, the calibrated thresholds (window and sequential) with the explicit raw
    ones laid over them; and the explicit raw thresholds that won (feature -> key -> value)."""
    thresholds: dict[str, DriftThresholds] = {}
    overridden: dict[str, dict[str, float | None]] = {}
    for name, calibrated in found.calibration.thresholds().items():
        sequential = {test: t.h for test, t in found.sequential.get(name, {}).items()}
        calibrated = replace(calibrated, **sequential)
        explicit = config.explicit_thresholds_for(name)
        thresholds[name] = replace(calibrated, **explicit)
        if explicit:
            overridden[name] = explicit
    return thresholds, overridden


def without_overridden(
    calibration: Calibration, overridden: Mapping[str, Mapping[str, object]]
) -> Calibration:
    """The calibration less the checks whose raw threshold wins (the BH set)."""
    features = {
        name: {key: cv for key, cv in checks.items() if key not in overridden.get(name, {})}
        for name, checks in calibration.features.items()
    }
    return replace(calibration, features=features)


def decide(
    result: DriftResult,
    bh: Calibration | None,
    overridden: Mapping[str, Mapping[str, object]],
) -> DriftResult:
    """Re-decide an evaluation with Benjamini-Hochberg over the calibrated checks.

    ``bh``: the calibration less the overridden checks (:func:`without_overridden`), or
    ``None`` for Bonferroni (the result is returned as is). Overridden checks keep the
    decision ``evaluate`` made with their raw threshold.
    """
    if bh is None:
        return result
    applied = bh.apply(result)
    if not overridden:
        return applied
    features = []
    for before, after in zip(result.features, applied.features, strict=True):
        raw = overridden.get(before.name, {})
        kept = tuple(k for k in before.crossed if k in raw and k not in after.crossed)
        if kept:
            crossed = after.crossed + kept
            after = replace(after, crossed=crossed, drifted=True)
        features.append(after)
    return replace(applied, features=tuple(features))


def apply_min_effects(
    result: DriftResult,
    min_effects: Mapping[str, Mapping[str, float]],
    reference_missing_ratio: Mapping[str, float],
) -> DriftResult:
    """:func:`~monitor.stats.effect.apply_min_effect` with each feature's own minimums.

    Features sharing the same minimums are decided together; features with none keep
    their decision.
    """
    if not min_effects or not result.drifted_features:
        return result
    groups: dict[tuple[tuple[str, float], ...], list[int]] = {}
    for i, f in enumerate(result.features):
        measures = min_effects.get(f.name)
        if measures and f.drifted:
            groups.setdefault(tuple(sorted(measures.items())), []).append(i)
    if not groups:
        return result
    features = list(result.features)
    for key, indices in groups.items():
        part = replace(result, features=tuple(features[i] for i in indices))
        decided = apply_min_effect(part, dict(key), reference_missing_ratio)
        for i, f in zip(indices, decided.features, strict=True):
            features[i] = f
    return replace(result, features=tuple(features))
