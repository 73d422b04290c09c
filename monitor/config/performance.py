"""A model's ``performance`` section: realised metrics over labelled predictions, optional
confidence-based estimation, and the checks that tie them to the model's task.

The metric tables repeat ``monitor.performance``'s so that loading a config never imports
the Numba kernels; a unit test pins both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Literal

from pydantic import Field, model_validator

from monitor.config.base import Strict, nearest, problem
from monitor.config.features import PredictionConfig
from monitor.config.windows import check_slide_divides

TaskName = Literal["binary_classification", "multiclass_classification", "regression"]

#: Realised metrics per task, in export order (the same table as monitor.performance.METRICS,
#: kept here so loading a config never imports the Numba kernels; a unit test pins both).
PERFORMANCE_METRICS: dict[str, tuple[str, ...]] = {
    "binary_classification": ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"),
    "multiclass_classification": ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"),
    "regression": ("mae", "rmse", "mape", "r2"),
}
#: Metrics confidence-based estimation produces (monitor.performance.ESTIMATED_METRICS).
ESTIMATED_METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "roc_auc")
#: Scores (higher is better); the other metrics are losses and errors.
_HIGHER_IS_BETTER = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "r2"})


class PerformanceWindowConfig(Strict):
    """The last ``events`` rows, evaluated every ``slide`` rows (joined rows for realised
    metrics, predictions for estimated ones)."""

    events: int = Field(default=5000, ge=1, le=10_000_000)
    slide: int = Field(default=500, ge=1)

    @model_validator(mode="after")
    def _divides(self) -> PerformanceWindowConfig:
        check_slide_divides(self.events, self.slide)
        return self


class MetricThresholdConfig(Strict):
    """Limits on one metric: ``min``/``max_drop`` for scores, ``max``/``max_rise`` for
    losses and errors; drops and rises are measured from the reference performance."""

    min: float | None = None
    max: float | None = None
    max_drop: Annotated[float, Field(ge=0)] | None = None
    max_rise: Annotated[float, Field(ge=0)] | None = None

    def limits(self) -> dict[str, float]:
        """The rules that are set, e.g. ``{"min": 0.8}``."""
        return {k: float(v) for k, v in self.model_dump().items() if v is not None}


class JoinConfig(Strict):
    """Bounds of the store where predictions wait for labels (and labels for predictions)."""

    max_delay_seconds: float = Field(default=604_800.0, gt=0, le=366 * 86400)
    max_pending: int = Field(default=2_000_000, ge=1, le=100_000_000)
    #: The same bound in memory; ids are at most 256 characters (longer ones are rejected
    #: at decode), so the count bound alone could still hold gigabytes.
    max_pending_bytes: int = Field(default=512 * 1024 * 1024, ge=1024 * 1024, le=1 << 40)


class EstimationConfig(Strict):
    """Confidence-based estimation of classifier performance before labels arrive."""

    metrics: list[str] | None = None
    window: PerformanceWindowConfig = PerformanceWindowConfig()
    thresholds: dict[str, MetricThresholdConfig] = Field(default_factory=dict)


class PerformanceConfig(Strict):
    """Realised performance over joined (labelled) predictions, and optional estimation."""

    metrics: list[str] | None = None
    window: PerformanceWindowConfig = PerformanceWindowConfig()
    thresholds: dict[str, MetricThresholdConfig] = Field(default_factory=dict)
    join: JoinConfig = JoinConfig()
    estimation: EstimationConfig | None = None
    decision_threshold: float = Field(default=0.5, gt=0, lt=1)
    #: A feature carrying the model's own predicted class: it replaces
    #: ``score >= decision_threshold`` (binary) or the arg-max (multiclass).
    predicted_label: str | None = None

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
        raise problem("must not be empty", f"{what}: {', '.join(valid)}", field)
    bad = [m for m in names if m not in valid]
    if bad:
        listed = ", ".join(map(repr, bad))
        raise problem(
            f"{listed} {'is' if len(bad) == 1 else 'are'} not among the {what}",
            nearest(bad[0], valid, what),
            field,
        )
    if len(set(names)) != len(names):
        raise problem("a metric is listed twice", "list each metric once", field)


def _check_thresholds(
    thresholds: Mapping[str, MetricThresholdConfig], metrics: tuple[str, ...], field: str
) -> None:
    for metric, limits in thresholds.items():
        where = f"{field}.{metric}"
        if metric not in metrics:
            raise problem(
                f"threshold on {metric!r}, which is not monitored",
                nearest(metric, metrics, "monitored metrics"),
                where,
            )
        higher = metric in _HIGHER_IS_BETTER
        allowed = ("min", "max_drop") if higher else ("max", "max_rise")
        rules = limits.limits()
        wrong = [r for r in rules if r not in allowed]
        if wrong or not rules:
            direction = "higher" if higher else "lower"
            raise problem(
                f"{', '.join(wrong) or 'no limit'} cannot apply to {metric} "
                f"({direction} is better)",
                f"use {' or '.join(f'`{a}`' for a in allowed)}, e.g. "
                f"`{metric}: {{{allowed[0]}: ...}}`",
                where,
            )


def check_performance(
    perf: PerformanceConfig,
    task: TaskName | None,
    pred: PredictionConfig | None,
    *,
    captured_reference: bool,
    features: Sequence[str] = (),
) -> None:
    """That ``perf`` fits the model's task, prediction and reference (``models.*`` keys)."""
    if task is None:
        raise problem(
            "performance monitoring needs the model's task",
            "add `task: binary_classification`, `multiclass_classification` or `regression`",
            "task",
        )
    if pred is None:
        raise problem(
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
        raise problem(f"a {pred.type} prediction does not fit task {task}", hint, "prediction")
    _check_predicted_label(perf, task, features)
    metrics = perf.metric_names(task)
    _check_metric_list(perf.metrics, PERFORMANCE_METRICS[task], f"{task} metrics",
                       "performance.metrics")  # fmt: skip
    _check_thresholds(perf.thresholds, metrics, "performance.thresholds")
    est = perf.estimation
    if est is not None:
        if task == "regression":
            raise problem(
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
    if relative and captured_reference:
        raise problem(
            "max_drop and max_rise compare with the reference performance, which a "
            "captured reference does not have",
            "use `min`/`max`, or point `reference` at a profile built by `driftmon "
            "baseline` from events that carry predictions and labels",
            f"performance.{relative[0]}",
        )


def _check_predicted_label(
    perf: PerformanceConfig, task: TaskName, features: Sequence[str]
) -> None:
    """``predicted_label`` names a configured feature of a classifier, and replaces the
    decision threshold rather than sitting beside it."""
    name = perf.predicted_label
    if name is None:
        return
    where = "performance.predicted_label"
    if task == "regression":
        raise problem(
            "a regression model has no predicted class",
            "remove `predicted_label`; it is for binary and multiclass classifiers",
            where,
        )
    if name not in features:
        listed = ", ".join(f"`{f}`" for f in features) or "none"
        raise problem(
            f"predicted_label names {name!r}, which is not a feature of the model",
            f"list the field holding the model's predicted class under `features:` "
            f"(numeric 0/1 or a categorical class name) and name it here; features: {listed}",
            where,
        )
    if "decision_threshold" in perf.model_fields_set:
        raise problem(
            "decision_threshold and predicted_label both say how the predicted class is made",
            "keep `predicted_label` (the model's own class) or `decision_threshold` "
            "(score >= threshold), not both",
            where,
        )
