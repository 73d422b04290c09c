"""Performance thresholds of one metric, and which of them a window's values crossed.

Per metric (``reference`` is the metric on the reference data):

* ``min: x`` / ``max: x``: an absolute floor (for scores) or ceiling (for losses/errors);
* ``max_drop: x``: crossed when ``reference - value > x`` (scores: accuracy, precision,
  recall, f1, roc_auc, r2);
* ``max_rise: x``: crossed when ``value - reference > x`` (log_loss, mae, rmse, mape).

A NaN value (undefined metric, e.g. ROC AUC with one class in the window) never crosses,
and a relative rule without a reference value is skipped. Estimated metrics have their
own thresholds, compared with the same reference values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from monitor.performance.metrics import HIGHER_IS_BETTER

__all__ = ["RULES", "Crossing", "Rule", "Threshold", "crossings"]

Rule = Literal["min", "max", "max_drop", "max_rise"]
RULES: tuple[Rule, ...] = ("min", "max", "max_drop", "max_rise")


@dataclass(frozen=True)
class Threshold:
    """Limits on one metric; ``None`` means not set. See the module docstring."""

    min: float | None = None
    max: float | None = None
    max_drop: float | None = None
    max_rise: float | None = None

    @classmethod
    def from_mapping(cls, metric: str, limits: Mapping[str, float]) -> Threshold:
        """``{min: 0.8}`` and friends, checked against the metric's direction."""
        higher = metric in HIGHER_IS_BETTER
        allowed = ("min", "max_drop") if higher else ("max", "max_rise")
        unknown = sorted(set(limits) - set(allowed))
        if unknown or not limits:
            raise ValueError(
                f"thresholds.{metric}: use {' or '.join(allowed)} "
                f"({'higher' if higher else 'lower'} is better for {metric})"
            )
        return cls(**{key: float(value) for key, value in limits.items()})

    def items(self) -> list[tuple[Rule, float]]:
        return [(rule, v) for rule in RULES if (v := getattr(self, rule)) is not None]

    @property
    def relative(self) -> bool:
        return self.max_drop is not None or self.max_rise is not None


@dataclass(frozen=True)
class Crossing:
    """One threshold crossed: ``metric`` went to ``value`` against ``limit``.

    ``reference`` is the reference value (relative rules, and absolute ones when a
    reference exists); ``previous`` the value at the previous evaluation.
    """

    metric: str
    rule: Rule
    value: float
    limit: float
    reference: float | None
    previous: float | None

    @property
    def from_value(self) -> float | None:
        """What the metric fell (or rose) from: the reference, else the previous window."""
        return self.reference if self.reference is not None else self.previous


def crossings(
    values: Mapping[str, float],
    thresholds: Mapping[str, Threshold],
    reference: Mapping[str, float],
    previous: Mapping[str, float],
) -> tuple[Crossing, ...]:
    """Every (metric, rule) of ``thresholds`` that ``values`` crossed, in threshold order."""
    out: list[Crossing] = []
    for metric, threshold in thresholds.items():
        value = values.get(metric, math.nan)
        if math.isnan(value):
            continue
        ref = reference.get(metric)
        ref = None if ref is None or math.isnan(ref) else ref
        prev = previous.get(metric)
        prev = None if prev is None or math.isnan(prev) else prev
        for rule, limit in threshold.items():
            if rule == "min":
                hit = value < limit
            elif rule == "max":
                hit = value > limit
            elif ref is None:
                continue
            elif rule == "max_drop":
                hit = ref - value > limit
            else:
                hit = value - ref > limit
            if hit:
                out.append(Crossing(metric, rule, value, limit, ref, prev))
    return tuple(out)
