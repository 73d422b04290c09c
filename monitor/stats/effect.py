"""Effect size next to significance: drifted = significant AND large enough to matter.

On a window of a million events every test is significant for a shift nobody cares about
(a KS p-value of 1e-12 for a 0.01 sd move). ``min_effect`` names the smallest effect worth an
alarm, per effect measure, and :func:`apply_min_effect` keeps a feature drifted only when one
of its significant checks comes with at least one measure at or above its minimum::

    min_effect: {psi: 0.1, wasserstein: 0.1}

Measures are the statistics ``evaluate`` reports as scores: ``psi``, ``kl``, ``js``
(distance), ``ks`` (the KS distance D), ``wasserstein`` (in reference standard deviations).
A measure that a feature does not compute (``wasserstein`` on a categorical feature) does not
count for it; a feature none of whose measures is computed keeps its significance decision.
The missing-ratio check is already an effect size (a difference of shares), so a crossed
``missing_ratio`` stands on its own unless ``min_effect`` names ``missing_ratio`` too, in
which case the difference must also reach that value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from monitor.stats.drift import DriftResult, FeatureResult

__all__ = ["EFFECT_MEASURES", "apply_min_effect", "effect_met"]

#: Measures ``min_effect`` may name.
EFFECT_MEASURES: tuple[str, ...] = ("psi", "kl", "js", "ks", "wasserstein", "missing_ratio")


def _check(min_effect: Mapping[str, float]) -> None:
    unknown = [k for k in min_effect if k not in EFFECT_MEASURES]
    if unknown:
        raise ValueError(
            f"unknown effect measure(s) {unknown}; valid: {', '.join(EFFECT_MEASURES)}"
        )
    bad = [k for k, v in min_effect.items() if not (math.isfinite(v) and v >= 0)]
    if bad:
        raise ValueError(f"min_effect values must be finite and >= 0: {bad}")


def effect_met(feature: FeatureResult, min_effect: Mapping[str, float]) -> bool | None:
    """Whether any computed measure reaches its minimum; ``None`` if none is computed."""
    seen = False
    for measure, minimum in min_effect.items():
        if measure == "missing_ratio":
            continue
        value = feature.scores.get(measure)
        if value is None or not math.isfinite(value):
            continue
        seen = True
        if value >= minimum:
            return True
    return False if seen else None


def apply_min_effect(
    result: DriftResult,
    min_effect: Mapping[str, float],
    reference_missing_ratio: Mapping[str, float] | None = None,
) -> DriftResult:
    """The evaluation with features whose effect is below ``min_effect`` no longer drifted.

    ``reference_missing_ratio`` (feature -> reference share) is needed only when
    ``min_effect`` names ``missing_ratio``. Suppressed checks are removed from ``crossed``.

    >>> from monitor.stats import FeatureKind
    >>> f = FeatureResult("x", FeatureKind.NUMERIC, 10**6, 0.0, {"psi": 0.004, "ks": 0.01},
    ...                   {"ks": 1e-12}, ("ks_p_value",), True, True)
    >>> r = DriftResult("m", 10**6, (f,))
    >>> apply_min_effect(r, {"psi": 0.1}).drifted_features
    ()
    """
    _check(min_effect)
    if not min_effect:
        return result
    ref_missing = reference_missing_ratio or {}
    features: list[FeatureResult] = []
    changed = False
    for f in result.features:
        if not f.drifted:
            features.append(f)
            continue
        met = effect_met(f, min_effect)
        keep: list[str] = []
        for key in f.crossed:
            if key == "missing_ratio":
                if "missing_ratio" in min_effect:
                    diff = f.missing_ratio - ref_missing.get(f.name, 0.0)
                    if not diff >= min_effect["missing_ratio"]:
                        continue
                keep.append(key)
            elif met is not False:
                keep.append(key)
        crossed = tuple(keep)
        if crossed != f.crossed:
            changed = True
            f = replace(f, crossed=crossed, drifted=bool(crossed))
        features.append(f)
    return replace(result, features=tuple(features)) if changed else result
