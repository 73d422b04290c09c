"""One entry of ``models``: :class:`ModelConfig`, its cross-key checks, and the lookups the
pipeline needs (monitored features, tests, thresholds and minimum effects per feature,
series counts).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field, field_validator, model_validator

from monitor.config.alert import AlertConfig
from monitor.config.base import LabelName, Strict, problem
from monitor.config.features import (
    FeatureConfig,
    FeatureKindName,
    PredictionConfig,
    applies_to,
    check_test_names,
    has_p_value,
)
from monitor.config.performance import PerformanceConfig, TaskName, check_performance
from monitor.config.thresholds import ThresholdsConfig
from monitor.config.versions import VersionsConfig
from monitor.config.windows import CaptureReference, CountWindowConfig, Reference, Window
from monitor.stats import DEFAULT_TESTS, SEQUENTIAL_TESTS


class ModelConfig(Strict):
    """One monitored model: reference, window, features, prediction, tests and alerting."""

    reference: Reference
    window: Window
    features: dict[LabelName, FeatureConfig] = Field(default_factory=dict)
    prediction: PredictionConfig | None = None
    tests: list[str] = Field(default_factory=lambda: list(DEFAULT_TESTS), min_length=1)
    thresholds: ThresholdsConfig = ThresholdsConfig()
    bins: int = Field(default=100, ge=2, le=10_000)
    psi_buckets: int = Field(default=10, ge=2, le=1000)
    max_categories: int = Field(default=50, ge=1, le=10_000)
    alert: AlertConfig = AlertConfig()
    task: TaskName | None = None
    performance: PerformanceConfig | None = None
    versions: VersionsConfig | None = None

    _test_names = field_validator("tests")(check_test_names)

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if not self.features and isinstance(self.reference, CaptureReference):
            raise problem(
                "a captured reference needs the features listed",
                "list the features to monitor under `features:`, or point `reference` at a "
                "profile file built with `driftmon baseline` (its features are used then)",
                "features",
            )
        if self.prediction is not None:
            clash = [f for f in self.features if f == "prediction" or f.startswith("prediction.")]
            if clash:
                raise problem(
                    f"feature name {clash[0]!r} collides with the monitored prediction",
                    "rename the feature; `prediction` and `prediction.<class>` are reserved",
                    "features",
                )
        monitored = len(self.feature_kinds())
        if self.alert.min_features > monitored and self.features:
            raise problem(
                f"min_features is {self.alert.min_features} but only {monitored} features "
                "are monitored",
                f"use a value between 1 and {monitored}",
                "alert.min_features",
            )
        if self.performance is not None:
            check_performance(
                self.performance,
                self.task,
                self.prediction,
                captured_reference=isinstance(self.reference, CaptureReference),
                features=tuple(self.features),
            )
        versions = self.versions
        if versions is not None and versions.on_new_version == "capture" and not self.features:
            raise problem(
                "capturing the reference of a new version needs the features listed",
                "list the features to monitor under `features:`, or set "
                "`on_new_version: fallback` or `ignore`",
                "versions.on_new_version",
            )
        alert = self.alert
        if (
            alert.has_budget
            and alert.events_per_second is None
            and isinstance(self.window, CountWindowConfig)
        ):
            raise problem(
                "a false-alarm budget on a count window needs the model's event rate",
                "add `events_per_second: R` (the model's average events per second) under "
                f"`alert`: evaluations per month are R x 2,592,000 / slide "
                f"({self.window.slide}); a time window needs no rate",
                "alert.events_per_second",
            )
        return self

    def feature_kinds(self) -> dict[str, FeatureKindName]:
        """Monitored features in order: configured features, then the prediction."""
        kinds: dict[str, FeatureKindName] = {n: f.type for n, f in self.features.items()}
        pred = self.prediction
        if pred is not None:
            if pred.type == "probabilities":
                kinds.update({f"prediction.{c}": "numeric" for c in pred.classes or ()})
            else:
                kinds["prediction"] = pred.type
        return kinds

    def _kind_of(self, feature: str) -> FeatureKindName:
        kinds = self.feature_kinds()
        if feature not in kinds:
            raise KeyError(f"{feature!r} is not a monitored feature")
        return kinds[feature]

    def tests_for(self, feature: str, kind: FeatureKindName | None = None) -> tuple[str, ...]:
        """Tests computed for ``feature``: its override or the model's, filtered by kind.

        ``kind`` is needed only for features known from a profile file but not configured.
        """
        conf = self.features.get(feature)
        kind = kind or (conf.type if conf else self._kind_of(feature))
        chosen = conf.tests if conf is not None and conf.tests is not None else self.model_tests
        return tuple(t for t in chosen if applies_to(t, kind))

    @property
    def model_tests(self) -> list[str]:
        """The model's tests: as written, else the defaults, with the sequential detectors
        when a false-alarm budget is configured (it sets their thresholds too)."""
        if "tests" not in self.model_fields_set and self.alert.has_budget:
            return [*self.tests, *SEQUENTIAL_TESTS]
        return self.tests

    def thresholds_for(self, feature: str) -> ThresholdsConfig:
        """The model's thresholds with the feature's overrides applied."""
        conf = self.features.get(feature)
        if conf is None or conf.thresholds is None:
            return self.thresholds
        return self.thresholds.model_copy(update=conf.thresholds.model_dump(exclude_unset=True))

    def explicit_thresholds_for(self, feature: str) -> dict[str, float | None]:
        """The threshold keys set explicitly in the config for ``feature`` (the model's
        ``thresholds`` keys that were written, then the feature's): with a false-alarm
        budget these overlay the calibrated critical values and win."""
        out: dict[str, float | None] = self.thresholds.model_dump(
            include=self.thresholds.model_fields_set
        )
        conf = self.features.get(feature)
        if conf is not None and conf.thresholds is not None:
            out.update(conf.thresholds.model_dump(exclude_unset=True))
        return out

    def min_effect_for(self, feature: str) -> dict[str, float]:
        """Minimum effects of ``feature``: ``alert.min_effect`` with the feature's
        ``min_effect`` keys applied (``{}`` when none is required)."""
        base = self.alert.min_effect
        measures = base.model_dump() if base is not None else {}
        conf = self.features.get(feature)
        if conf is not None and conf.min_effect is not None:
            measures.update(conf.min_effect.model_dump(exclude_unset=True))
        return {k: float(v) for k, v in measures.items() if v is not None}

    def series_count(self, kinds: Mapping[str, FeatureKindName] | None = None) -> int:
        """Drift score plus p-value series this model exports.

        ``kinds`` defaults to :meth:`feature_kinds`; pass the profile's features when the
        reference file defines them.
        """
        total = 0
        for name, kind in (kinds if kinds is not None else self.feature_kinds()).items():
            tests = self.tests_for(name, kind)
            total += len(tests) + sum(has_p_value(t) for t in tests)
        return total
