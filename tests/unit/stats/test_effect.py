"""min_effect: significance alone no longer makes a feature drifted."""

from __future__ import annotations

import math

import pytest

from monitor.stats import DriftResult, FeatureKind, FeatureResult
from monitor.stats.effect import apply_min_effect, effect_met


def feat(name: str, kind: FeatureKind = FeatureKind.NUMERIC, *, crossed=("ks_p_value",),
         missing: float = 0.0, **scores: float) -> FeatureResult:  # fmt: skip
    return FeatureResult(
        name, kind, 1_000_000, missing, scores, {"ks": 1e-12}, tuple(crossed), bool(crossed), True
    )


def test_large_window_negligible_shift_is_suppressed():
    r = DriftResult("m", 10**6, (feat("a", psi=0.004, wasserstein=0.02),))
    out = apply_min_effect(r, {"psi": 0.1, "wasserstein": 0.1})
    assert out.drifted_features == ()
    assert out.features[0].crossed == ()


def test_any_measure_reaching_its_minimum_keeps_the_feature():
    r = DriftResult("m", 10**6, (feat("a", psi=0.004, wasserstein=0.3),))
    out = apply_min_effect(r, {"psi": 0.1, "wasserstein": 0.1})
    assert out.drifted_features == ("a",)
    assert out is r  # nothing changed: the same object


def test_minimum_is_inclusive_and_nan_does_not_count():
    r = DriftResult("m", 10, (feat("a", psi=0.1, js=math.nan),))
    assert apply_min_effect(r, {"psi": 0.1}).drifted_features == ("a",)
    assert effect_met(r.features[0], {"js": 0.0}) is None


def test_measure_not_computed_for_a_kind_keeps_significance():
    cat = feat("c", FeatureKind.CATEGORICAL, crossed=("chi2_p_value",), psi=0.3)
    r = DriftResult("m", 10, (cat,))
    assert apply_min_effect(r, {"wasserstein": 0.1}).drifted_features == ("c",)
    assert apply_min_effect(r, {"wasserstein": 0.1, "psi": 0.5}).drifted_features == ()


def test_missing_ratio_is_its_own_effect_size():
    f = feat("a", crossed=("ks_p_value", "missing_ratio"), missing=0.12, psi=0.001)
    r = DriftResult("m", 10, (f,))
    out = apply_min_effect(r, {"psi": 0.1})
    assert out.features[0].crossed == ("missing_ratio",)
    assert out.drifted_features == ("a",)
    strict = apply_min_effect(r, {"psi": 0.1, "missing_ratio": 0.2}, {"a": 0.01})
    assert strict.drifted_features == ()
    kept = apply_min_effect(r, {"psi": 0.1, "missing_ratio": 0.1}, {"a": 0.01})
    assert kept.features[0].crossed == ("missing_ratio",)


def test_undrifted_features_and_empty_minimum_pass_through():
    r = DriftResult("m", 10, (feat("a", crossed=(), psi=0.9),))
    assert apply_min_effect(r, {"psi": 0.1}) is r
    assert apply_min_effect(r, {}) is r


@pytest.mark.parametrize("bad", [{"chi2": 0.1}, {"psi": -1.0}, {"psi": math.inf}])
def test_bad_minimums_are_rejected(bad):
    with pytest.raises(ValueError):
        apply_min_effect(DriftResult("m", 0, ()), bad)
