"""The YAML configuration contract as frozen pydantic models.

``load_config(path)`` reads the YAML file, overlays ``DRIFTMON_`` environment variables
(``__`` separates nesting levels, values are parsed as YAML scalars or flow collections),
validates everything and raises one :class:`~monitor.errors.ConfigError` that lists every
problem as ``key.path: message (hint: ...)``. It never lets a pydantic or YAML traceback
through.

Model names, feature names and prediction classes become Prometheus label values, so they
are restricted to a safe character set and length. The number of drift series a config
creates (models x features x tests) is checked against ``limits.max_series`` at load.

Example::

    >>> cfg = Config.model_validate({
    ...     "kafka": {"bootstrap_servers": "127.0.0.1:9092", "topics": ["ml.inference"]},
    ...     "models": {"fraud": {
    ...         "reference": {"capture_events": 5000},
    ...         "window": {"events": 2000, "slide": 500},
    ...         "features": {"amount": {"type": "numeric"}, "country": {"type": "categorical"}},
    ...         "prediction": {"type": "numeric"},
    ...     }},
    ... })
    >>> cfg.models["fraud"].feature_kinds()
    {'amount': 'numeric', 'country': 'categorical', 'prediction': 'numeric'}
    >>> cfg.models["fraud"].tests_for("country")
    ('psi', 'js', 'chi2')
    >>> cfg.series_count
    12
"""

from __future__ import annotations

import difflib
import math
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from monitor.errors import ConfigError, ConfigProblem
from monitor.webhooks.config import WebhookConfig

__all__ = [
    "ENV_PREFIX",
    "ESTIMATED_METRICS",
    "PERFORMANCE_METRICS",
    "TESTS",
    "AlertConfig",
    "CaptureReference",
    "Config",
    "CountWindowConfig",
    "EstimationConfig",
    "FeatureConfig",
    "FeatureKindName",
    "FieldNames",
    "HttpConfig",
    "JoinConfig",
    "KafkaConfig",
    "LimitsConfig",
    "LogConfig",
    "MetricThresholdConfig",
    "MinEffectConfig",
    "ModelConfig",
    "PartialThresholds",
    "PerformanceConfig",
    "PerformanceWindowConfig",
    "PredictionConfig",
    "StateConfig",
    "TaskName",
    "ThresholdsConfig",
    "TimeWindowConfig",
    "TopicConfig",
    "load_config",
    "render_problems",
    "validate_config",
]

ENV_PREFIX = "DRIFTMON_"

FeatureKindName = Literal["numeric", "categorical"]

#: Every drift test driftmon knows, in canonical order.
TESTS: tuple[str, ...] = ("psi", "ks", "kl", "js", "wasserstein", "chi2")
#: Which tests apply to which feature kind (see docs/ARCHITECTURE.md).
_APPLICABLE: dict[str, frozenset[str]] = {
    "numeric": frozenset({"psi", "ks", "kl", "js", "wasserstein"}),
    "categorical": frozenset({"psi", "kl", "js", "chi2"}),
}
#: Tests that export a p-value series next to the score series.
_P_VALUE_TESTS = frozenset({"ks", "chi2"})

# Label values: letters, digits and a few separators; a letter or underscore first so names
# never look like numbers in PromQL, and short enough to keep dashboards readable.
_LABEL_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$"
_LABEL_HINT = (
    "use 1 to 64 characters from letters, digits and _ . : - starting with a letter or _ "
    "(names become Prometheus label values)"
)
LabelName = Annotated[str, Field(pattern=_LABEL_PATTERN)]
# Kafka's own topic rules.
_TOPIC_PATTERN = r"^[A-Za-z0-9._-]{1,249}$"

# Keys of later issues: an unknown-key error for them says they are planned, not misspelt.
# Keys a later version will support: named as planned instead of guessed at as typos.
_PLANNED_KEYS: dict[str, str] = {}


def _problem(message: str, hint: str = "", field: str = "") -> PydanticCustomError:
    """A validation error that carries driftmon's hint (and a sub-key for model checks)."""
    return PydanticCustomError("driftmon", message, {"hint": hint, "field": field})


class _Strict(BaseModel):
    """Frozen, no unknown keys; numbers are accepted where a string is expected (env values)."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


# --------------------------------------------------------------------------------- kafka


class FieldNames(_Strict):
    """Names of the event fields, configurable per topic for producers with another shape."""

    model: str = Field(default="model", min_length=1)
    ts: str = Field(default="ts", min_length=1)
    id: str = Field(default="id", min_length=1)
    features: str = Field(default="features", min_length=1)
    prediction: str = Field(default="prediction", min_length=1)
    version: str = Field(default="version", min_length=1)
    label: str = Field(default="label", min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> FieldNames:
        names = list(self.model_dump().values())
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise _problem(
                f"field names must be distinct; {', '.join(map(repr, dupes))} is used twice",
                "give every event field its own name",
            )
        return self


class TopicConfig(_Strict):
    """One consumed topic; ``model`` binds every event on it to one model."""

    name: str = Field(pattern=_TOPIC_PATTERN)
    model: str | None = None
    fields: FieldNames = FieldNames()


LibrdkafkaValue = str | int | float | bool

# librdkafka keys that driftmon sets itself: passing them through would break its guarantees.
_MANAGED_KAFKA_KEYS = {
    "bootstrap.servers": "set kafka.bootstrap_servers instead",
    "group.id": "set kafka.group_id instead",
    "enable.auto.commit": "driftmon commits offsets itself, after the batch is accounted for",
    "enable.auto.offset.store": "driftmon stores offsets itself, after the batch is accounted for",
}
_SECRET_KEY_RE = re.compile(r"password|secret|token|(^|\.)key$|credentials", re.IGNORECASE)


def _check_librdkafka(value: Any) -> Any:
    """One clear problem per bad option instead of one per member of the value union."""
    if not isinstance(value, dict):
        return value
    for key, option in value.items():
        if key in _MANAGED_KAFKA_KEYS:
            raise _problem(f"'{key}' cannot be passed through", _MANAGED_KAFKA_KEYS[key])
        if not isinstance(option, str | int | float | bool):
            raise _problem(
                f"librdkafka option {key!r} must be a string, number or boolean",
                "librdkafka options are flat: write `session.timeout.ms: 6000`, not nested keys",
                str(key),
            )
    return value


def _masked(options: Mapping[str, LibrdkafkaValue]) -> dict[str, LibrdkafkaValue]:
    return {k: ("**********" if _SECRET_KEY_RE.search(k) else v) for k, v in options.items()}


class KafkaConfig(_Strict):
    """The consumer side: brokers, topics and librdkafka pass-through options."""

    bootstrap_servers: str = Field(min_length=1)
    group_id: str = Field(default="driftmon", min_length=1)
    topics: list[TopicConfig] = Field(min_length=1)
    consumer: dict[str, LibrdkafkaValue] = Field(default_factory=dict)
    producer: dict[str, LibrdkafkaValue] = Field(default_factory=dict)
    dead_letter_topic: str | None = Field(default=None, pattern=_TOPIC_PATTERN)
    batch_max_messages: int = Field(default=5000, ge=1, le=1_000_000)
    poll_timeout_seconds: float = Field(default=0.5, gt=0, le=60)
    max_message_bytes: int = Field(default=1_048_576, ge=64, le=1 << 30)

    @field_validator("topics", mode="before")
    @classmethod
    def _plain_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]  # `topics: ml.inference` is a common shorthand
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("topics")
    @classmethod
    def _unique_topics(cls, value: list[TopicConfig]) -> list[TopicConfig]:
        names = [t.name for t in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise _problem(
                f"topic {dupes[0]!r} is listed twice", "list each topic once; bind it to one model"
            )
        return value

    _consumer_keys = field_validator("consumer", "producer", mode="before")(_check_librdkafka)

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        # librdkafka security options (sasl.password, ...) may arrive through env overrides.
        for name, value in super().__repr_args__():
            if name in ("consumer", "producer"):
                value = _masked(value)
            yield name, value

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Values of secret-looking librdkafka options, for log redaction."""
        found = []
        for options in (self.consumer, self.producer):
            found += [str(v) for k, v in options.items() if _SECRET_KEY_RE.search(k) and v]
        return tuple(found)


# ------------------------------------------------------------------------- http, log, state


class HttpConfig(_Strict):
    """The one HTTP port serving /metrics, /healthz, /readyz and /status."""

    host: str = Field(default="0.0.0.0", min_length=1)  # noqa: S104 - a daemon serves its pod IP
    port: int = Field(default=9108, ge=0, le=65535)


class LogConfig(_Strict):
    """Log level and line format."""

    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    format: Literal["text", "json"] = "text"

    @field_validator("level", "format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class StateConfig(_Strict):
    """Checkpointed state; without this section the daemon runs stateless."""

    dir: str = Field(min_length=1)
    checkpoint_interval_seconds: float = Field(default=10.0, gt=0, le=86400)
    on_corrupt: Literal["fresh", "refuse"] = "fresh"


class LimitsConfig(_Strict):
    """Budgets that keep the exported metrics bounded."""

    #: Drift score and p-value series over all models, features and tests.
    max_series: int = Field(default=10_000, ge=1)


# ---------------------------------------------------------------------------------- models


class CaptureReference(_Strict):
    """Capture the reference from the first ``capture_events`` events of the stream."""

    capture_events: int = Field(ge=100, le=100_000_000)


def _reference_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "profile"
    if isinstance(value, dict):
        return "capture"
    return None


Reference = Annotated[
    Union[Annotated[str, Tag("profile")], Annotated[CaptureReference, Tag("capture")]],  # noqa: UP007 - tagged union members need Annotated
    Discriminator(
        _reference_kind,
        custom_error_type="reference_kind",
        custom_error_message="reference must be a profile file path or {capture_events: N}",
    ),
]

_MAX_SLOTS = 1000


class CountWindowConfig(_Strict):
    """A window of the last ``events`` events, evaluated every ``slide`` events."""

    events: int = Field(ge=1, le=100_000_000)
    slide: int = Field(ge=1)

    @model_validator(mode="after")
    def _slots(self) -> CountWindowConfig:
        if self.slide > self.events:
            raise _problem(
                f"slide ({self.slide}) is larger than the window ({self.events} events)",
                "use a slide of at most `events`, e.g. events/10",
                "slide",
            )
        if self.events % self.slide:
            lower = _divisor_below(self.events, self.slide)
            raise _problem(
                f"slide {self.slide} does not divide events {self.events}",
                f"pick a slide that divides the window exactly, e.g. {lower}",
                "slide",
            )
        if self.events // self.slide > _MAX_SLOTS:
            raise _problem(
                f"window has {self.events // self.slide} slides (events/slide); "
                f"at most {_MAX_SLOTS} are allowed",
                f"use a slide of at least {math.ceil(self.events / _MAX_SLOTS)}",
                "slide",
            )
        return self

    @property
    def slots(self) -> int:
        """Number of slot histograms in the ring."""
        return self.events // self.slide


def _divisor_below(n: int, d: int) -> int:
    """The largest divisor of ``n`` not above ``d`` (for a concrete hint)."""
    for cand in range(min(d, n), 0, -1):
        if n % cand == 0:
            return cand
    return 1


class TimeWindowConfig(_Strict):
    """A window of the last ``seconds`` of event time, evaluated every ``slide_seconds``."""

    seconds: float = Field(gt=0, le=366 * 86400)
    slide_seconds: float = Field(gt=0)
    min_events: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _slots(self) -> TimeWindowConfig:
        ratio = self.seconds / self.slide_seconds
        if self.slide_seconds > self.seconds:
            raise _problem(
                f"slide_seconds ({self.slide_seconds:g}) is longer than the window "
                f"({self.seconds:g} s)",
                "use slide_seconds of at most `seconds`, e.g. seconds/12",
                "slide_seconds",
            )
        if abs(ratio - round(ratio)) > 1e-9 * ratio:
            raise _problem(
                f"slide_seconds {self.slide_seconds:g} does not divide seconds {self.seconds:g}",
                "pick slide_seconds so that seconds/slide_seconds is a whole number",
                "slide_seconds",
            )
        if round(ratio) > _MAX_SLOTS:
            raise _problem(
                f"window has {round(ratio)} slides; at most {_MAX_SLOTS} are allowed",
                f"use slide_seconds of at least {self.seconds / _MAX_SLOTS:g}",
                "slide_seconds",
            )
        return self

    @property
    def slots(self) -> int:
        """Number of slot histograms in the ring."""
        return round(self.seconds / self.slide_seconds)


def _window_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        if "events" in value or "slide" in value:
            return "count"
        if "seconds" in value or "slide_seconds" in value:
            return "time"
    return None


Window = Annotated[
    Union[Annotated[CountWindowConfig, Tag("count")], Annotated[TimeWindowConfig, Tag("time")]],  # noqa: UP007 - tagged union members need Annotated
    Discriminator(
        _window_kind,
        custom_error_type="window_kind",
        custom_error_message="window needs {events, slide} or {seconds, slide_seconds}",
    ),
]
_UNION_TAGS = frozenset({"profile", "capture", "count", "time"})
_TAGGED = frozenset({"reference", "window"})


def _check_test_names(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    unknown = [t for t in value if t not in TESTS]
    if unknown:
        near = [difflib.get_close_matches(t, TESTS, n=1) for t in unknown]
        guess = "; ".join(
            f"{t!r} -> did you mean {n[0]!r}?" for t, n in zip(unknown, near, strict=True) if n
        )
        raise _problem(
            f"unknown test{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
            f"valid tests: {', '.join(TESTS)}" + (f" ({guess})" if guess else ""),
        )
    if len(set(value)) != len(value):
        raise _problem("a test is listed twice", "list each test once")
    return value


_PValue = Annotated[float, Field(gt=0, lt=1)]
_Score = Annotated[float, Field(ge=0)]


class ThresholdsConfig(_Strict):
    """Thresholds per test; ``null`` means the test is computed and exported but not alerted on.

    Scores (psi, ks, kl, js, wasserstein) drift when above; p-values when below. The
    missing-ratio check compares the window's missing ratio with the reference's.
    """

    psi: _Score | None = 0.2
    ks: _Score | None = None
    ks_p_value: _PValue | None = 0.001
    kl: _Score | None = None
    js: _Score | None = 0.1
    wasserstein: _Score | None = None
    chi2_p_value: _PValue | None = 0.001
    missing_ratio: Annotated[float, Field(ge=0, le=1)] | None = 0.1


class PartialThresholds(_Strict):
    """Per-feature threshold overrides: keys given here replace the model's values."""

    psi: _Score | None = None
    ks: _Score | None = None
    ks_p_value: _PValue | None = None
    kl: _Score | None = None
    js: _Score | None = None
    wasserstein: _Score | None = None
    chi2_p_value: _PValue | None = None
    missing_ratio: Annotated[float, Field(ge=0, le=1)] | None = None


class MinEffectConfig(_Strict):
    """Smallest effect worth an alarm, per effect measure (see ``monitor.stats.effect``).

    A drifted feature stays drifted only when one of the named measures it computes reaches
    its minimum; ``missing_ratio`` also requires the missing-ratio difference to reach its
    value. In a feature's ``min_effect`` the keys given replace the model's (``null``
    removes a measure for that feature).
    """

    psi: _Score | None = None
    kl: _Score | None = None
    js: _Score | None = None
    ks: _Score | None = None
    wasserstein: _Score | None = None
    missing_ratio: Annotated[float, Field(ge=0, le=1)] | None = None

    def measures(self) -> dict[str, float]:
        """The measures that are set, e.g. ``{"psi": 0.1}``."""
        return {k: float(v) for k, v in self.model_dump().items() if v is not None}


class FeatureConfig(_Strict):
    """One monitored feature: its kind, and optional per-feature tests, thresholds and
    minimum effects."""

    type: FeatureKindName
    tests: list[str] | None = None
    thresholds: PartialThresholds | None = None
    min_effect: MinEffectConfig | None = None

    _test_names = field_validator("tests")(_check_test_names)

    @model_validator(mode="after")
    def _applicable(self) -> FeatureConfig:
        if self.tests:
            wrong = [t for t in self.tests if t not in _APPLICABLE[self.type]]
            if wrong:
                ok = [t for t in TESTS if t in _APPLICABLE[self.type]]
                raise _problem(
                    f"{', '.join(wrong)} cannot run on a {self.type} feature",
                    f"{self.type} features support: {', '.join(ok)}",
                    "tests",
                )
        return self


class PredictionConfig(_Strict):
    """The model's prediction: a number, a label, or a class -> probability object."""

    type: Literal["numeric", "categorical", "probabilities"]
    classes: list[LabelName] | None = None

    @model_validator(mode="after")
    def _classes(self) -> PredictionConfig:
        if self.type == "probabilities":
            if not self.classes:
                raise _problem(
                    "probabilities need the list of classes",
                    "add `classes: [a, b, ...]` naming the keys of the probability object",
                    "classes",
                )
            if len(set(self.classes)) != len(self.classes):
                raise _problem("a class is listed twice", "list each class once", "classes")
        elif self.classes is not None:
            raise _problem(
                f"classes only apply to type probabilities, not {self.type}",
                "remove `classes` or use `type: probabilities`",
                "classes",
            )
        return self


# ----------------------------------------------------------------------------- performance

TaskName = Literal["binary_classification", "multiclass_classification", "regression"]

#: Realised metrics per task, in export order (the same table as monitor.performance.METRICS,
#: kept here so loading a config never imports the Numba kernels; a unit test pins both).
PERFORMANCE_METRICS: dict[str, tuple[str, ...]] = {
    "binary_classification": ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"),
    "multiclass_classification": ("accuracy", "precision", "recall", "f1", "log_loss"),
    "regression": ("mae", "rmse", "mape", "r2"),
}
#: Metrics confidence-based estimation produces (monitor.performance.ESTIMATED_METRICS).
ESTIMATED_METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "roc_auc")
#: Scores (higher is better); the other metrics are losses and errors.
_HIGHER_IS_BETTER = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "r2"})


class PerformanceWindowConfig(_Strict):
    """The last ``events`` rows, evaluated every ``slide`` rows (joined rows for realised
    metrics, predictions for estimated ones)."""

    events: int = Field(default=5000, ge=1, le=10_000_000)
    slide: int = Field(default=500, ge=1)

    @model_validator(mode="after")
    def _divides(self) -> PerformanceWindowConfig:
        if self.slide > self.events:
            raise _problem(
                f"slide ({self.slide}) is larger than the window ({self.events} events)",
                "use a slide of at most `events`, e.g. events/10",
                "slide",
            )
        if self.events % self.slide:
            raise _problem(
                f"slide {self.slide} does not divide events {self.events}",
                f"pick a slide that divides the window exactly, e.g. "
                f"{_divisor_below(self.events, self.slide)}",
                "slide",
            )
        return self


class MetricThresholdConfig(_Strict):
    """Limits on one metric: ``min``/``max_drop`` for scores, ``max``/``max_rise`` for
    losses and errors; drops and rises are measured from the reference performance."""

    min: float | None = None
    max: float | None = None
    max_drop: Annotated[float, Field(ge=0)] | None = None
    max_rise: Annotated[float, Field(ge=0)] | None = None

    def limits(self) -> dict[str, float]:
        """The rules that are set, e.g. ``{"min": 0.8}``."""
        return {k: float(v) for k, v in self.model_dump().items() if v is not None}


class JoinConfig(_Strict):
    """Bounds of the store where predictions wait for labels (and labels for predictions)."""

    max_delay_seconds: float = Field(default=604_800.0, gt=0, le=366 * 86400)
    max_pending: int = Field(default=2_000_000, ge=1, le=100_000_000)


class EstimationConfig(_Strict):
    """Confidence-based estimation of classifier performance before labels arrive."""

    metrics: list[str] | None = None
    window: PerformanceWindowConfig = PerformanceWindowConfig()
    thresholds: dict[str, MetricThresholdConfig] = Field(default_factory=dict)


class PerformanceConfig(_Strict):
    """Realised performance over joined (labelled) predictions, and optional estimation."""

    metrics: list[str] | None = None
    window: PerformanceWindowConfig = PerformanceWindowConfig()
    thresholds: dict[str, MetricThresholdConfig] = Field(default_factory=dict)
    join: JoinConfig = JoinConfig()
    estimation: EstimationConfig | None = None
    decision_threshold: float = Field(default=0.5, gt=0, lt=1)

    def metric_names(self, task: str) -> tuple[str, ...]:
        """The configured metrics, or every metric of ``task``."""
        return tuple(self.metrics) if self.metrics else PERFORMANCE_METRICS[task]

    def estimated_names(self) -> tuple[str, ...]:
        """The estimated metrics (``()`` without an ``estimation`` section)."""
        est = self.estimation
        if est is None:
            return ()
        return tuple(est.metrics) if est.metrics else ESTIMATED_METRICS

    @property
    def relative_thresholds(self) -> list[str]:
        """Key paths of the thresholds that compare with the reference performance."""
        est = self.estimation.thresholds if self.estimation is not None else {}
        return [
            f"{prefix}thresholds.{metric}"
            for prefix, table in (("", self.thresholds), ("estimation.", est))
            for metric, t in table.items()
            if t.max_drop is not None or t.max_rise is not None
        ]


def _check_metric_list(
    names: list[str] | None, valid: tuple[str, ...], what: str, field: str
) -> None:
    if names is None:
        return
    if not names:
        raise _problem("must not be empty", f"{what}: {', '.join(valid)}", field)
    bad = [m for m in names if m not in valid]
    if bad:
        listed = ", ".join(map(repr, bad))
        raise _problem(
            f"{listed} {'is' if len(bad) == 1 else 'are'} not among the {what}",
            _nearest(bad[0], valid, what),
            field,
        )
    if len(set(names)) != len(names):
        raise _problem("a metric is listed twice", "list each metric once", field)


def _check_thresholds(
    thresholds: Mapping[str, MetricThresholdConfig], metrics: tuple[str, ...], field: str
) -> None:
    for metric, limits in thresholds.items():
        where = f"{field}.{metric}"
        if metric not in metrics:
            raise _problem(
                f"threshold on {metric!r}, which is not monitored",
                _nearest(metric, metrics, "monitored metrics"),
                where,
            )
        higher = metric in _HIGHER_IS_BETTER
        allowed = ("min", "max_drop") if higher else ("max", "max_rise")
        rules = limits.limits()
        wrong = [r for r in rules if r not in allowed]
        if wrong or not rules:
            direction = "higher" if higher else "lower"
            raise _problem(
                f"{', '.join(wrong) or 'no limit'} cannot apply to {metric} "
                f"({direction} is better)",
                f"use {' or '.join(f'`{a}`' for a in allowed)}, e.g. "
                f"`{metric}: {{{allowed[0]}: ...}}`",
                where,
            )


#: Alert keys that only mean something with ``false_alarms_per_month``.
_BUDGET_KEYS = ("events_per_second", "correction", "dependence", "calibration_draws",
                "calibration_seed")  # fmt: skip


class AlertConfig(_Strict):
    """When drift is confirmed and how often it may trigger the webhooks.

    ``false_alarms_per_month`` replaces the raw thresholds by critical values calibrated
    for the window (``monitor.model.budget``); thresholds set explicitly still win.
    ``min_effect`` requires an effect size next to significance. ``retrain_grace_seconds``
    suppresses further retrain triggers of the model after one was sent.
    """

    min_features: int = Field(default=1, ge=1)
    consecutive: int = Field(default=2, ge=1, le=1000)
    cooldown_seconds: float = Field(default=3600.0, ge=0)
    false_alarms_per_month: Annotated[float, Field(gt=0, le=1e9)] | None = None
    events_per_second: Annotated[float, Field(gt=0, le=1e9)] | None = None
    correction: Literal["bonferroni", "bh"] = "bonferroni"
    dependence: Literal["union", "effective"] = "union"
    calibration_draws: int = Field(default=1000, ge=50, le=100_000)
    calibration_seed: int = Field(default=0, ge=0, le=2**32 - 1)
    min_effect: MinEffectConfig | None = None
    retrain_grace_seconds: float = Field(default=0.0, ge=0, le=366 * 86400)

    @field_validator("correction", "dependence", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _budget_keys(self) -> AlertConfig:
        if self.false_alarms_per_month is None:
            # Values other than the defaults: a config written back out with its defaults
            # (model_dump) still validates.
            fields = type(self).model_fields
            stray = [k for k in _BUDGET_KEYS if getattr(self, k) != fields[k].default]
            if stray:
                raise _problem(
                    f"{stray[0]} only applies to a false-alarm budget",
                    "add `false_alarms_per_month: N` (e.g. 1) to calibrate thresholds, or "
                    f"remove `{stray[0]}`",
                    stray[0],
                )
        return self

    @property
    def has_budget(self) -> bool:
        """True when thresholds are calibrated from ``false_alarms_per_month``."""
        return self.false_alarms_per_month is not None

    def describe(self) -> str:
        """One line on the budget, minimum effects and retrain grace (``""`` if none is set).

        >>> AlertConfig(false_alarms_per_month=1, events_per_second=250,
        ...             retrain_grace_seconds=3600).describe()
        'false-alarm budget 1/month (bonferroni, union, 250 events/s); retrain grace 3600 s'
        """
        parts: list[str] = []
        if self.false_alarms_per_month is not None:
            rate = (
                f", {self.events_per_second:g} events/s"
                if self.events_per_second is not None
                else ""
            )
            parts.append(
                f"false-alarm budget {self.false_alarms_per_month:g}/month "
                f"({self.correction}, {self.dependence}{rate})"
            )
        if self.min_effect is not None and self.min_effect.measures():
            measures = ", ".join(f"{k}={v:g}" for k, v in self.min_effect.measures().items())
            parts.append(f"min_effect {measures}")
        if self.retrain_grace_seconds > 0:
            parts.append(f"retrain grace {self.retrain_grace_seconds:g} s")
        return "; ".join(parts)


VersionName = Annotated[str, Field(min_length=1, max_length=128)]


class VersionsConfig(_Strict):
    """Per-model-version references (see "Model versions" in the README).

    Rows carry their model version in the event's ``version`` field (or a Kafka header
    ``version``). The model's ``reference`` stays the default: rows without a version use
    it, and so do new versions with ``on_new_version: fallback``. A version listed under
    ``references`` uses its own profile. A new unlisted version is captured from its first
    ``capture_events`` rows (``capture``), compared with the default reference
    (``fallback``), or dropped and counted (``ignore``).
    """

    references: dict[VersionName, str] = Field(default_factory=dict)
    on_new_version: Literal["capture", "fallback", "ignore"] = "capture"
    capture_events: int = Field(default=10_000, ge=100, le=100_000_000)
    max_versions: int = Field(default=16, ge=2, le=1000)

    @model_validator(mode="after")
    def _fits(self) -> VersionsConfig:
        if len(self.references) + 1 > self.max_versions:
            raise _problem(
                f"{len(self.references)} listed versions and the default reference do not "
                f"fit in max_versions {self.max_versions}",
                f"raise max_versions to at least {len(self.references) + 1}",
                "max_versions",
            )
        return self


class ModelConfig(_Strict):
    """One monitored model: reference, window, features, prediction, tests and alerting."""

    reference: Reference
    window: Window
    features: dict[LabelName, FeatureConfig] = Field(default_factory=dict)
    prediction: PredictionConfig | None = None
    tests: list[str] = Field(default_factory=lambda: ["psi", "ks", "js", "chi2"], min_length=1)
    thresholds: ThresholdsConfig = ThresholdsConfig()
    bins: int = Field(default=100, ge=2, le=10_000)
    psi_buckets: int = Field(default=10, ge=2, le=1000)
    max_categories: int = Field(default=50, ge=1, le=10_000)
    alert: AlertConfig = AlertConfig()
    task: TaskName | None = None
    performance: PerformanceConfig | None = None
    versions: VersionsConfig | None = None

    _test_names = field_validator("tests")(_check_test_names)

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if not self.features and isinstance(self.reference, CaptureReference):
            raise _problem(
                "a captured reference needs the features listed",
                "list the features to monitor under `features:`, or point `reference` at a "
                "profile file built with `driftmon baseline` (its features are used then)",
                "features",
            )
        if self.prediction is not None:
            clash = [f for f in self.features if f == "prediction" or f.startswith("prediction.")]
            if clash:
                raise _problem(
                    f"feature name {clash[0]!r} collides with the monitored prediction",
                    "rename the feature; `prediction` and `prediction.<class>` are reserved",
                    "features",
                )
        monitored = len(self.feature_kinds())
        if self.alert.min_features > monitored and self.features:
            raise _problem(
                f"min_features is {self.alert.min_features} but only {monitored} features "
                "are monitored",
                f"use a value between 1 and {monitored}",
                "alert.min_features",
            )
        if self.performance is not None:
            self._check_performance(self.performance)
        versions = self.versions
        if versions is not None and versions.on_new_version == "capture" and not self.features:
            raise _problem(
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
            raise _problem(
                "a false-alarm budget on a count window needs the model's event rate",
                "add `events_per_second: R` (the model's average events per second) under "
                f"`alert`: evaluations per month are R x 2,592,000 / slide "
                f"({self.window.slide}); a time window needs no rate",
                "alert.events_per_second",
            )
        return self

    def _check_performance(self, perf: PerformanceConfig) -> None:
        task, pred = self.task, self.prediction
        if task is None:
            raise _problem(
                "performance monitoring needs the model's task",
                "add `task: binary_classification`, `multiclass_classification` or `regression`",
                "task",
            )
        if pred is None:
            raise _problem(
                "performance monitoring needs the model's prediction",
                "add `prediction: {type: numeric}` (a score or value) or "
                "`prediction: {type: probabilities, classes: [...]}`",
                "prediction",
            )
        classes = len(pred.classes or ())
        fits = {
            "binary_classification": pred.type == "numeric"
            or (pred.type == "probabilities" and classes == 2),
            "multiclass_classification": pred.type == "probabilities",
            "regression": pred.type == "numeric",
        }[task]
        if not fits:
            hint = {
                "binary_classification": "a binary classifier's prediction is the positive "
                "class score (`type: numeric`) or `type: probabilities` with two classes, the "
                "positive one second",
                "multiclass_classification": "a multiclass prediction is `type: probabilities` "
                "with the class list",
                "regression": "a regression prediction is `type: numeric`",
            }[task]
            raise _problem(f"a {pred.type} prediction does not fit task {task}", hint, "prediction")
        metrics = perf.metric_names(task)
        _check_metric_list(perf.metrics, PERFORMANCE_METRICS[task], f"{task} metrics",
                           "performance.metrics")  # fmt: skip
        _check_thresholds(perf.thresholds, metrics, "performance.thresholds")
        est = perf.estimation
        if est is not None:
            if task == "regression":
                raise _problem(
                    "performance estimation is not offered for regression",
                    "a regression prediction carries no confidence to estimate errors from "
                    "(see docs/PERFORMANCE.md); remove `estimation`",
                    "performance.estimation",
                )
            _check_metric_list(est.metrics, ESTIMATED_METRICS, "estimated metrics",
                               "performance.estimation.metrics")  # fmt: skip
            _check_thresholds(
                est.thresholds, perf.estimated_names(), "performance.estimation.thresholds"
            )
        relative = perf.relative_thresholds
        if relative and isinstance(self.reference, CaptureReference):
            raise _problem(
                "max_drop and max_rise compare with the reference performance, which a "
                "captured reference does not have",
                "use `min`/`max`, or point `reference` at a profile built by `driftmon "
                "baseline` from events that carry predictions and labels",
                f"performance.{relative[0]}",
            )

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
        chosen = conf.tests if conf is not None and conf.tests is not None else self.tests
        return tuple(t for t in chosen if t in _APPLICABLE[kind])

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
            total += len(tests) + sum(t in _P_VALUE_TESTS for t in tests)
        return total


# ---------------------------------------------------------------------------------- config


class Config(_Strict):
    """The whole configuration file."""

    kafka: KafkaConfig
    http: HttpConfig = HttpConfig()
    log: LogConfig = LogConfig()
    models: dict[LabelName, ModelConfig] = Field(min_length=1)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    state: StateConfig | None = None
    limits: LimitsConfig = LimitsConfig()

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        # Every cross-section problem is collected; ConfigError passes through pydantic.
        problems: list[ConfigProblem] = []
        names = ", ".join(self.models)
        for i, topic in enumerate(self.kafka.topics):
            if topic.model is not None and topic.model not in self.models:
                problems.append(
                    ConfigProblem(
                        f"kafka.topics.{i}.model",
                        f"topic {topic.name!r} is bound to unknown model {topic.model!r}",
                        _nearest(topic.model, self.models, "configured models"),
                    )
                )
        if self.kafka.dead_letter_topic in {t.name for t in self.kafka.topics}:
            problems.append(
                ConfigProblem(
                    "kafka.dead_letter_topic",
                    "the dead-letter topic is also consumed",
                    "use a topic driftmon does not read, e.g. driftmon.dlq",
                )
            )
        seen: set[str] = set()
        for i, hook in enumerate(self.webhooks):
            if hook.name in seen:
                problems.append(
                    ConfigProblem(
                        f"webhooks.{i}.name",
                        f"webhook name {hook.name!r} is used twice",
                        "give every webhook its own name (it is a metric label)",
                    )
                )
            seen.add(hook.name)
            for model in hook.models or ():
                if model not in self.models:
                    problems.append(
                        ConfigProblem(
                            f"webhooks.{i}.models",
                            f"unknown model {model!r}",
                            _nearest(model, self.models, "configured models") or f"use {names}",
                        )
                    )
        series = self.series_count
        if series > self.limits.max_series:
            per_model = ", ".join(f"{m}={c.series_count()}" for m, c in self.models.items())
            problems.append(
                ConfigProblem(
                    "limits.max_series",
                    f"this config creates {series} drift score/p-value series "
                    f"(models x features x tests: {per_model}), "
                    f"above the limit of {self.limits.max_series}",
                    "monitor fewer features or tests, or raise limits.max_series if your "
                    "Prometheus can take it",
                )
            )
        if problems:
            raise ConfigError(problems)
        return self

    @property
    def series_count(self) -> int:
        """Drift score and p-value series over every model (configured features only)."""
        return sum(m.series_count() for m in self.models.values())

    def topic(self, name: str) -> TopicConfig:
        """The configuration of one consumed topic."""
        for topic in self.kafka.topics:
            if topic.name == name:
                return topic
        raise KeyError(name)


# ------------------------------------------------------------------------- loading & errors


def reference_path(reference: str | os.PathLike[str], base_dir: Path | None) -> Path:
    """A reference file's path: relative paths are relative to the config's directory."""
    path = Path(reference)
    return base_dir / path if base_dir is not None and not path.is_absolute() else path


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read, overlay ``DRIFTMON_*`` variables from ``env`` and validate a config file.

    ``env`` defaults to ``os.environ``. Relative reference paths are resolved against the
    config file's directory. Raises :class:`ConfigError` listing every problem.
    """
    env = os.environ if env is None else env
    source = str(path)
    data = _read_yaml(Path(path))
    env_keys: dict[str, str] = {}
    if isinstance(data, dict):
        try:
            env_keys = _apply_env(data, env)
        except ConfigError as exc:
            raise ConfigError(exc.problems, source) from None
        _resolve_references(data, Path(path).parent)
    config = validate_config(data, source, env_keys)
    missing = [
        ConfigProblem(
            f"models.{name}.reference",
            f"reference profile not found: {model.reference}",
            "build one with `driftmon baseline ...` or use {capture_events: N}",
        )
        for name, model in config.models.items()
        if isinstance(model.reference, str) and not Path(model.reference).is_file()
    ]
    missing += [
        ConfigProblem(
            f"models.{name}.versions.references.{version}",
            f"reference profile not found: {path}",
            "build one with `driftmon baseline ...` from events of that version, or leave "
            "the version out to capture its reference from the stream",
        )
        for name, model in config.models.items()
        if model.versions is not None
        for version, path in model.versions.references.items()
        if not Path(path).is_file()
    ]
    if missing:
        raise ConfigError(missing, source)
    return config


def validate_config(
    data: Any, source: str = "", env_keys: Mapping[str, str] | None = None
) -> Config:
    """Validate an already parsed config, turning every failure into one ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(
            [ConfigProblem("(config)", "the file must hold a mapping", "start with `kafka:`")],
            source,
        )
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = [_translate(err, env_keys or {}) for err in exc.errors()]
        raise ConfigError(problems, source) from None
    except ConfigError as exc:
        raise ConfigError(exc.problems, source) from None


def render_problems(err: ConfigError) -> str:
    """Human-readable report for ``driftmon check-config`` (one block per problem)."""
    where = f" {err.source}" if err.source else ""
    count = len(err.problems)
    lines = [f"config{where}: {count} problem{'s' if count != 1 else ''}"]
    for problem in err.problems:
        lines.append(f"  {problem.path}: {problem.message}")
        if problem.hint:
            lines.append(f"      hint: {problem.hint}")
    return "\n".join(lines)


def _read_yaml(path: Path) -> Any:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [
                ConfigProblem(
                    "(file)",
                    f"config file not found: {path}",
                    "check the path given to --config (relative paths start at the working "
                    "directory); examples/config.yaml is a documented starting point",
                )
            ],
            source,
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            [
                ConfigProblem(
                    "(file)",
                    f"cannot read {path}: {reason}",
                    "the config must be a readable UTF-8 text file",
                )
            ],
            source,
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_yaml_problem(exc, text)], source) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem("(yaml)", f"invalid YAML: {exc}")], source) from None
    if data is None:
        raise ConfigError(
            [ConfigProblem("(config)", "the file is empty", "start from examples/config.yaml")],
            source,
        )
    return data


def _yaml_problem(exc: yaml.MarkedYAMLError, text: str) -> ConfigProblem:
    mark = exc.problem_mark or exc.context_mark
    what = exc.problem or "syntax error"
    if mark is None:
        return ConfigProblem("(yaml)", f"syntax error: {what}")
    line, column = mark.line + 1, mark.column + 1
    lines = text.splitlines()
    snippet = lines[mark.line] if mark.line < len(lines) else ""
    if "\t" in snippet or "tab" in what:
        hint = "YAML does not allow tabs for indentation; indent with spaces"
    elif "mapping values are not allowed" in what:
        hint = "quote values that contain ': ' and check the indentation of this line"
    elif "could not find expected ':'" in what or "simple key" in what:
        hint = "each `key: value` needs a space after the colon; check the previous line too"
    elif "found undefined alias" in what:
        hint = "define the anchor (&name) before using the alias (*name)"
    elif "flow" in what or "expected ',' or" in what:
        hint = "check the brackets and commas of the [list] or {mapping} on this line"
    else:
        hint = "check indentation and quoting around this line"
    return ConfigProblem(
        "(yaml)", f"syntax error at line {line}, column {column}: {what}: {snippet.strip()!r}", hint
    )


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Overlay ``DRIFTMON_A__B__C=value`` onto ``data``; returns key path -> variable name."""
    applied: dict[str, str] = {}
    # Shorter paths first so DRIFTMON_KAFKA={...} then DRIFTMON_KAFKA__GROUP_ID both apply.
    names = sorted(
        (n for n in env if n.upper().startswith(ENV_PREFIX)), key=lambda n: n.count("__")
    )
    for name in names:
        parts = name[len(ENV_PREFIX) :].split("__")
        # Only top-level sections: other DRIFTMON_* variables may be secrets that webhooks
        # read through *_env keys, and must never be pulled into (or printed from) config.
        if not all(parts) or parts[0].lower() not in Config.model_fields:
            continue
        value = _parse_env_value(env[name])
        node: Any = data
        path: list[str] = []
        for depth, raw in enumerate(parts):
            last = depth == len(parts) - 1
            key: str | int
            if isinstance(node, list):
                if not raw.isdigit() or int(raw) >= len(node):
                    raise ConfigError(
                        [
                            ConfigProblem(
                                ".".join(path) or "(env)",
                                f"{name}: {raw!r} is not an index of this list",
                                f"use an index from 0 to {len(node) - 1}, or set the whole "
                                "list as [a, b]",
                            )
                        ]
                    )
                key = int(raw)
            elif isinstance(node, dict):
                key = _match_key(node, raw, path)
            else:
                raise ConfigError(
                    [
                        ConfigProblem(
                            ".".join(path),
                            f"{name} sets a key below a value that is not a mapping",
                            "set the parent key to a mapping first, or set the whole value",
                        )
                    ]
                )
            path.append(str(key))
            if last:
                node[key] = value
                continue
            child = node[key] if isinstance(key, int) else node.get(key)
            if child is None:
                child = {}
                node[key] = child
            node = child
        applied[".".join(path)] = name
    return applied


def _match_key(node: dict[str, Any], raw: str, path: list[str]) -> str:
    """Environment names are upper case: match existing keys case-insensitively."""
    for existing in node:
        if isinstance(existing, str) and existing.lower() == raw.lower():
            return existing
    if path and path[-1] in ("consumer", "producer") and path[:1] == ["kafka"]:
        # librdkafka keys use dots, which environment variable names cannot hold.
        return raw.lower().replace("_", ".")
    return raw.lower()


def _parse_env_value(text: str) -> Any:
    """Values are YAML scalars or flow collections (`[a, b]`, `{k: v}`); else plain text."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _resolve_references(data: dict[str, Any], base: Path) -> None:
    models = data.get("models")
    if not isinstance(models, dict):
        return
    for model in models.values():
        if isinstance(model, dict) and isinstance(model.get("reference"), str):
            ref = Path(model["reference"])
            if not ref.is_absolute():
                model["reference"] = str(base / ref)
        versions = model.get("versions") if isinstance(model, dict) else None
        references = versions.get("references") if isinstance(versions, dict) else None
        if isinstance(references, dict):
            for version, path in references.items():
                if isinstance(path, str) and not Path(path).is_absolute():
                    references[version] = str(base / path)


def _nearest(word: str, choices: Iterable[str], what: str) -> str:
    options = [str(c) for c in choices]
    near = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    listed = ", ".join(options)
    if near:
        return f"did you mean {near[0]!r}? {what}: {listed}"
    return f"{what}: {listed}" if options else ""


def _translate(err: Any, env_keys: Mapping[str, str]) -> ConfigProblem:
    """One pydantic error -> key path, message and hint."""
    raw = err["loc"]
    # Drop the tags pydantic inserts after a tagged-union field (reference, window).
    loc = [p for i, p in enumerate(raw) if not (p in _UNION_TAGS and i and raw[i - 1] in _TAGGED)]
    ctx = err.get("ctx") or {}
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
        message, hint = f"name {loc[-1]!r} is not allowed", _LABEL_HINT
        if len(loc) > 1 and loc[-2] == "references":
            message = f"version {loc[-1]!r} is not allowed"
            hint = "a version is 1 to 128 characters, as it appears in the events' version field"
    elif err["type"] == "driftmon":
        message, hint = err["msg"], ctx.get("hint", "")
        if ctx.get("field"):
            loc = [*loc, *str(ctx["field"]).split(".")]
    else:
        message, hint = _explain(err, loc)
    if not hint:
        hint = _key_hint(loc)
    path = ".".join(str(p) for p in loc) or "(config)"
    for key_path, var in env_keys.items():
        if path == key_path or path.startswith(key_path + "."):
            message += f" (set by {var})"
            break
    return ConfigProblem(path, message, hint)


def _explain(err: Any, loc: list[Any]) -> tuple[str, str]:
    """Message and hint for pydantic's built-in error types."""
    kind: str = err["type"]
    message: str = err["msg"]
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(loc[-1])
        if key in _PLANNED_KEYS:
            hint = f"{_PLANNED_KEYS[key]} is planned but not supported by this version yet"
        else:
            hint = _nearest(key, _valid_keys(err["loc"][:-1]), "valid keys here")
        return f"unknown key {key!r}", hint
    if kind == "missing":
        return "required key is missing", _MISSING_HINTS.get(
            _generic_path(loc), f"add `{loc[-1]}: ...`"
        )
    if kind in _KIND_HINTS:
        return message, _KIND_HINTS[kind]
    if kind == "literal_error":
        return f"invalid value {_short(err.get('input'))}: {message.lower()}", ""
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must not be empty", _MISSING_HINTS.get(_generic_path(loc), "")
    if kind == "string_pattern_mismatch":
        topic = loc and loc[-1] in ("name", "dead_letter_topic")
        hint = "Kafka topic names use letters, digits, '.', '_' and '-'" if topic else _LABEL_HINT
        return f"{_short(err.get('input'))} is not allowed here", hint
    if kind.endswith(("_type", "_parsing")):
        return f"{message.lower()}, got {_type_name(err.get('input'))}", ""
    return message, ""


_KIND_HINTS = {
    "reference_kind": "e.g. `reference: baselines/fraud.json` or "
    "`reference: {capture_events: 50000}`",
    "window_kind": "e.g. `window: {events: 20000, slide: 2000}` or "
    "`window: {seconds: 3600, slide_seconds: 300}`",
}

_MISSING_HINTS = {
    "kafka": "add a `kafka:` section with bootstrap_servers and topics",
    "kafka.bootstrap_servers": "e.g. `bootstrap_servers: 127.0.0.1:9092`, or set "
    "DRIFTMON_KAFKA__BOOTSTRAP_SERVERS",
    "kafka.topics": "list the topics to consume, e.g. `topics: [ml.inference]`",
    "models": "add at least one model under `models:` (see examples/config.yaml)",
    "models.*.reference": "a profile file built with `driftmon baseline ...`, or "
    "{capture_events: N} to capture one from the stream",
    "models.*.window": "e.g. `window: {events: 20000, slide: 2000}`",
    "models.*.features.*.type": "`type: numeric` or `type: categorical`",
    "models.*.prediction.type": "`type: numeric`, `categorical` or `probabilities`",
    "state.dir": "a writable directory, e.g. `dir: /var/lib/driftmon`",
    "models.*.tests": "list tests, e.g. `tests: [psi, ks, js, chi2]`",
}


_MIN_EFFECT_HINT = (
    "a minimum effect >= 0 on the measure's own scale, e.g. `psi: 0.1` or `wasserstein: 0.1` "
    "(reference standard deviations); missing_ratio is a share difference from 0 to 1"
)
#: Fallback hints for any bad value of these keys (generic key paths).
_KEY_HINTS = {
    "models.*.alert.false_alarms_per_month": "false alarms a month you accept, above 0, "
    "e.g. 1 or 0.1 (one in ten months); remove the key to alert on raw thresholds",
    "models.*.alert.events_per_second": "the model's average events per second, above 0, e.g. 250",
    "models.*.alert.correction": "`bonferroni` (default; holds for any dependence) or `bh` "
    "(Benjamini-Hochberg; flags more features when several drift together)",
    "models.*.alert.dependence": "`union` (default; the bound holds however windows overlap) "
    "or `effective` (counts disjoint windows: shorter delays, weaker guarantee)",
    "models.*.alert.calibration_draws": "a whole number from 50 to 100000; 1000 is enough "
    "for the fitted tail",
    "models.*.alert.calibration_seed": "a whole number from 0 to 4294967295",
    "models.*.alert.retrain_grace_seconds": "seconds of event time >= 0 during which "
    "further retrain triggers of the model are suppressed; 0 turns it off",
    "models.*.alert.min_effect": "a mapping such as `min_effect: {psi: 0.1}`",
    "models.*.features.*.min_effect": "a mapping such as `min_effect: {psi: 0.1}`",
}


def _key_hint(loc: list[Any]) -> str:
    generic = _generic_path(loc)
    if generic in _KEY_HINTS:
        return _KEY_HINTS[generic]
    if generic.startswith(("models.*.alert.min_effect.", "models.*.features.*.min_effect.")):
        return _MIN_EFFECT_HINT
    return ""


def _generic_path(loc: list[Any]) -> str:
    """Key path with user-chosen names replaced by '*' (for hint lookup)."""
    out: list[str] = []
    prev: Any = None
    for part in loc:
        named = prev in ("models", "features", "references") or isinstance(part, int)
        out.append("*" if named else str(part))
        prev = None if named else part
    return ".".join(out)


def _valid_keys(loc: Iterable[Any]) -> list[str]:
    """Keys accepted by the model found at ``loc`` (walking the annotations)."""
    tp: Any = Config
    for part in loc:
        tp = _unwrap(tp, part)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            tp = tp.model_fields[str(part)].annotation
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) is list:
            tp = typing.get_args(tp)[0]
        elif part not in _UNION_TAGS:
            return []
    tp = _unwrap(tp, None)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []


def _unwrap(tp: Any, tag: Any) -> Any:
    """Strip Annotated/Optional; pick the union member named by a tag (or the first model)."""
    while True:
        if typing.get_origin(tp) is Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if typing.get_origin(tp) in (Union, types.UnionType):
            members = [
                typing.get_args(m)[0] if typing.get_origin(m) is Annotated else m
                for m in typing.get_args(tp)
            ]
            tagged = {
                tag_meta.tag: typing.get_args(m)[0]
                for m in typing.get_args(tp)
                if typing.get_origin(m) is Annotated
                for tag_meta in typing.get_args(m)[1:]
                if isinstance(tag_meta, Tag)
            }
            if tag in tagged:
                return tagged[tag]
            models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
            tp = models[0] if models else members[0]
            continue
        return tp


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )
