"""A model's ``alert`` section: when drift is confirmed, how often it may fire, and the
optional false-alarm budget and minimum effects that decide drift beyond raw thresholds.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from monitor.config.base import Strict, problem
from monitor.config.thresholds import MinEffectConfig
from monitor.stats.budget_split import DEFAULT_WEIGHTS, BudgetSplit

_Weight = Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)]


class BudgetWeightsConfig(Strict):
    """Relative share of the budget of one check of each test family (``alert.budget_weights``;
    unset families keep the product's default weights, :mod:`monitor.stats.budget_split`)."""

    window: _Weight = DEFAULT_WEIGHTS.window
    cusum: _Weight = DEFAULT_WEIGHTS.cusum
    bin_cusum: _Weight = DEFAULT_WEIGHTS.bin_cusum

    def split(self) -> BudgetSplit:
        return BudgetSplit(window=self.window, cusum=self.cusum, bin_cusum=self.bin_cusum)


#: Alert keys that only mean something with ``false_alarms_per_month``.
_BUDGET_KEYS = ("events_per_second", "correction", "dependence", "calibration_draws",
                "calibration_seed", "budget_weights")  # fmt: skip


class AlertConfig(Strict):
    """When drift is confirmed and how often it may trigger the webhooks.

    ``false_alarms_per_month`` replaces the raw thresholds by critical values calibrated
    for the window (``monitor.model.budget``); thresholds set explicitly still win.
    ``min_effect`` requires an effect size next to significance. ``retrain_grace_seconds``
    suppresses further retrain triggers of the model after one was sent.
    ``retrain_on_absent_feature`` lets a feature absent from a whole window count as drift.
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
    #: How the budget is split between window checks and each sequential test.
    budget_weights: BudgetWeightsConfig | None = None
    min_effect: MinEffectConfig | None = None
    retrain_grace_seconds: float = Field(default=0.0, ge=0, le=366 * 86400)
    #: A feature missing from every event of a window is a schema problem, reported on
    #: its own (``driftmon_feature_absent``); True also counts it as drift.
    retrain_on_absent_feature: bool = False

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
                raise problem(
                    f"{stray[0]} only applies to a false-alarm budget",
                    "add `false_alarms_per_month: N` (e.g. 1) to calibrate thresholds, or "
                    f"remove `{stray[0]}`",
                    stray[0],
                )
        return self

    def budget_split(self) -> BudgetSplit:
        """The split of the budget between test families (the defaults when not set)."""
        return DEFAULT_WEIGHTS if self.budget_weights is None else self.budget_weights.split()

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
        if self.budget_weights is not None:
            weights = ", ".join(f"{k} {v:g}" for k, v in self.budget_split().to_json().items())
            parts.append(f"budget weights {weights}")
        if self.min_effect is not None and self.min_effect.measures():
            measures = ", ".join(f"{k}={v:g}" for k, v in self.min_effect.measures().items())
            parts.append(f"min_effect {measures}")
        if self.retrain_grace_seconds > 0:
            parts.append(f"retrain grace {self.retrain_grace_seconds:g} s")
        return "; ".join(parts)
