"""What a model monitors: its features, its prediction, and which drift tests run on each.

Owns the validation of test lists and the ``features`` and ``prediction`` sections. What
the tests are (names, the feature kinds each applies to, which export a p-value, which run
by default) is ``monitor.stats.REGISTRY``'s to say; this module only asks it.
"""

from __future__ import annotations

import difflib
from typing import Literal

from pydantic import field_validator, model_validator

from monitor.config.base import LabelName, Strict, problem
from monitor.config.thresholds import MinEffectConfig, PartialThresholds
from monitor.stats import REGISTRY, TESTS, FeatureKind

FeatureKindName = Literal["numeric", "categorical"]


def applies_to(test: str, kind: str) -> bool:
    """Whether ``test`` can run on a feature of ``kind``."""
    return FeatureKind(kind) in REGISTRY[test].kinds


def has_p_value(test: str) -> bool:
    """Whether ``test`` exports a p-value series next to its score series."""
    return REGISTRY[test].has_p_value


def check_test_names(value: list[str] | None) -> list[str] | None:
    """Every name a known test, each once; unknown names get a did-you-mean."""
    if value is None:
        return None
    unknown = [t for t in value if t not in TESTS]
    if unknown:
        near = [difflib.get_close_matches(t, TESTS, n=1) for t in unknown]
        guess = "; ".join(
            f"{t!r} -> did you mean {n[0]!r}?" for t, n in zip(unknown, near, strict=True) if n
        )
        raise problem(
            f"unknown test{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
            f"valid tests: {', '.join(TESTS)}" + (f" ({guess})" if guess else ""),
        )
    if len(set(value)) != len(value):
        raise problem("a test is listed twice", "list each test once")
    return value


class FeatureConfig(Strict):
    """One monitored feature: its kind, and optional per-feature tests, thresholds and
    minimum effects."""

    type: FeatureKindName
    tests: list[str] | None = None
    thresholds: PartialThresholds | None = None
    min_effect: MinEffectConfig | None = None

    _test_names = field_validator("tests")(check_test_names)

    @model_validator(mode="after")
    def _applicable(self) -> FeatureConfig:
        if self.tests:
            wrong = [t for t in self.tests if not applies_to(t, self.type)]
            if wrong:
                ok = [t for t in TESTS if applies_to(t, self.type)]
                raise problem(
                    f"{', '.join(wrong)} cannot run on a {self.type} feature",
                    f"{self.type} features support: {', '.join(ok)}",
                    "tests",
                )
        return self


class PredictionConfig(Strict):
    """The model's prediction: a number, a label, or a class -> probability object."""

    type: Literal["numeric", "categorical", "probabilities"]
    classes: list[LabelName] | None = None

    @model_validator(mode="after")
    def _classes(self) -> PredictionConfig:
        if self.type == "probabilities":
            if not self.classes:
                raise problem(
                    "probabilities need the list of classes",
                    "add `classes: [a, b, ...]` naming the keys of the probability object",
                    "classes",
                )
            if len(set(self.classes)) != len(self.classes):
                raise problem("a class is listed twice", "list each class once", "classes")
        elif self.classes is not None:
            raise problem(
                f"classes only apply to type probabilities, not {self.type}",
                "remove `classes` or use `type: probabilities`",
                "classes",
            )
        return self
