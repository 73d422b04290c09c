"""evaluate(): end to end against scipy on raw data, thresholds, and edge cases."""

from __future__ import annotations

import dataclasses
import math
import pickle

import numpy as np
import pytest
from scipy import stats

from monitor.stats import (
    CountWindowSpec,
    DriftThresholds,
    FeatureKind,
    FeatureResult,
    SlotWindow,
    build_profile,
    evaluate,
)
from monitor.stats.drift import REGISTRY, TESTS
from monitor.stats.layout import layout_of

N, C = FeatureKind.NUMERIC, FeatureKind.CATEGORICAL


def naive_ks_raw(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.ks_2samp(x, y).statistic)


def fill(profile, numeric: np.ndarray, categorical: np.ndarray | None = None) -> SlotWindow:
    rows = numeric.shape[0]
    cat = np.zeros((rows, 0), np.int64) if categorical is None else categorical
    win = SlotWindow(profile, CountWindowSpec(events=rows, slide=rows))
    assert len(list(win.feed(numeric, cat))) == 1
    return win


@pytest.mark.parametrize("seed", range(4))
def test_ks_on_continuous_data_is_within_documented_bound(seed: int):
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=20_000)
    cur = rng.normal(0.05 * seed, 1 + 0.1 * seed, size=5_000)
    profile = build_profile("m", {"x": ref}, {"x": N})
    res = evaluate(profile, fill(profile, cur[:, None]), tests=["ks"])
    raw = naive_ks_raw(ref, cur)
    binned = res.features[0].scores["ks"]
    max_p = profile.features["x"].counts.max() / ref.size
    assert 0.0 <= raw - binned <= max_p + 1e-12
    assert raw - binned <= 0.01 + 1 / ref.size


def test_identical_distribution_scores_zero_and_p_one():
    x = np.random.default_rng(0).normal(size=4000)
    c = ["a", "b", "c", "d"] * 1000
    profile = build_profile("m", {"x": x, "c": c}, {"x": N, "c": C})
    codes = profile.features["c"].encode(c)[:, None]
    res = evaluate(profile, fill(profile, x[:, None], codes))
    num, cat = res.features
    assert num.scores["psi"] == 0 and num.scores["kl"] == 0 and num.scores["js"] == 0
    assert num.scores["ks"] == 0 and num.p_values["ks"] == 1.0
    assert num.scores["wasserstein"] == 0
    assert cat.scores["chi2"] == 0 and cat.p_values["chi2"] == pytest.approx(1.0)
    assert res.drifted_features == ()


def test_far_shift_scores_the_binned_maximum_and_flags():
    x = np.random.default_rng(0).normal(size=4000)
    profile = build_profile("m", {"x": x}, {"x": N})
    res = evaluate(profile, fill(profile, (x + 100)[:2000, None]))
    f = res.features[0]
    # every window value lands in the upper outer bin, which holds 1% of the reference:
    # the binned D is 1 - 0.01, the largest value binning can show
    top = profile.features["x"].counts[-1] / x.size
    assert f.scores["ks"] == pytest.approx(1 - top) and f.p_values["ks"] < 1e-100
    # the whole window sits in the outer bin, placed at the observed maximum
    lay = layout_of(profile)
    ref_pts, ref_counts = lay.ref_points[0], lay.ref_num[0]
    w1 = stats.wasserstein_distance(ref_pts, [(x + 100)[:2000].max()], ref_counts, [1.0])
    assert f.scores["wasserstein"] == pytest.approx(w1 / x.std(), rel=1e-9)
    assert f.scores["wasserstein"] > 0.98 * 100 / x.std()
    assert set(f.crossed) == {"psi", "ks_p_value", "js"} and f.drifted


def test_disjoint_categories_score_the_maximum():
    profile = build_profile("m", {"c": ["a", "b"] * 100}, {"c": C})
    codes = profile.features["c"].encode(["x", "y"] * 100)[:, None]
    f = evaluate(profile, fill(profile, np.zeros((200, 0)), codes)).features[0]
    assert f.scores["js"] == pytest.approx(1.0)
    assert f.scores["chi2"] == pytest.approx(
        stats.chi2_contingency([[100, 100, 0], [0, 0, 200]]).statistic
    )
    assert f.p_values["chi2"] < 1e-80


def test_categorical_unseen_values_show_up_as_drift():
    ref = ["a", "b"] * 500
    profile = build_profile("m", {"c": ref}, {"c": C})
    cur = ["a", "b", "new", "new"] * 250
    codes = profile.features["c"].encode(cur)[:, None]
    f = evaluate(profile, fill(profile, np.zeros((1000, 0)), codes)).features[0]
    table = np.array([[500, 500, 0], [250, 250, 500]])
    assert f.scores["chi2"] == pytest.approx(stats.chi2_contingency(table).statistic)
    assert "chi2_p_value" in f.crossed and "psi" in f.crossed


def test_single_bin_and_discrete_features():
    profile = build_profile(
        "m", {"k": np.full(100, 5.0), "d": np.repeat([1.0, 2.0], 50)}, {"k": N, "d": N}
    )
    cur = np.column_stack([np.full(40, 5.0), np.repeat([1.0, 2.0], [10, 30])])
    k, d = evaluate(profile, fill(profile, cur)).features
    assert k.enough_data and k.scores["psi"] == 0 and k.scores["ks"] == 0
    assert k.scores["wasserstein"] == 0  # std 0: raw distance
    r = stats.ks_2samp(np.repeat([1.0, 2.0], 50), cur[:, 1])
    assert d.scores["ks"] == pytest.approx(r.statistic) and d.p_values["ks"] == pytest.approx(
        r.pvalue
    )
    assert all(math.isfinite(v) for v in d.scores.values())


def test_heavy_tails_stay_finite():
    rng = np.random.default_rng(1)
    ref = rng.standard_cauchy(10_000)
    profile = build_profile("m", {"x": ref}, {"x": N})
    cur = rng.standard_cauchy(3000) * 10
    cur[:3] = [np.inf, -np.inf, 1e300]
    f = evaluate(profile, fill(profile, cur[:, None])).features[0]
    assert all(math.isfinite(v) for v in f.scores.values())
    assert f.p_values["ks"] < 1e-10


def test_all_missing_window_reports_missing_ratio_without_crashing():
    profile = build_profile("m", {"x": np.arange(100.0), "c": ["a"] * 100}, {"x": N, "c": C})
    codes = np.full((50, 1), -1, np.int64)
    res = evaluate(profile, fill(profile, np.full((50, 1), np.nan), codes))
    for f in res.features:
        assert not f.enough_data and f.n == 0 and f.missing_ratio == 1.0
        assert all(math.isnan(v) for v in f.scores.values())
        assert f.crossed == ("missing_ratio",) and f.drifted


def test_test_selection_and_thresholds_per_feature():
    x = np.random.default_rng(0).normal(size=2000)
    profile = build_profile("m", {"x": x, "y": x}, {"x": N, "y": N})
    win = fill(profile, np.column_stack([x + 0.3, x + 0.3]))
    res = evaluate(
        profile,
        win,
        tests={"x": ["ks"], "y": ["psi", "wasserstein"]},
        thresholds={"x": DriftThresholds(ks_p_value=None, ks=0.05), "y": DriftThresholds(psi=None)},
    )
    fx, fy = res.features
    assert set(fx.scores) == {"ks"} and fx.crossed == ("ks",)
    assert set(fy.scores) == {"psi", "wasserstein"} and fy.crossed == ()
    with pytest.raises(ValueError, match="valid: psi"):
        evaluate(profile, win, tests=["nope"])
    with pytest.raises(ValueError, match="do not apply"):
        evaluate(profile, win, tests={"x": ["chi2"]})
    assert (
        set(TESTS)
        == set(REGISTRY)
        == {"psi", "ks", "kl", "js", "wasserstein", "chi2", "cusum", "bin_cusum"}
    )


def test_same_features_flagged_as_scipy_ks_loop():
    rng = np.random.default_rng(7)
    ref = rng.normal(size=(20_000, 6))
    cur = rng.normal(size=(20_000, 6))
    cur[:, [1, 4]] += 0.1
    names = [f"f{i}" for i in range(6)]
    profile = build_profile("m", dict(zip(names, ref.T, strict=True)), dict.fromkeys(names, N))
    res = evaluate(profile, fill(profile, cur), tests=["ks"])
    mine = {f.name for f in res.features if "ks_p_value" in f.crossed}
    theirs = {n for i, n in enumerate(names) if stats.ks_2samp(ref[:, i], cur[:, i]).pvalue < 0.001}
    assert mine == theirs == {"f1", "f4"}


def test_sketch_and_counts_give_equal_results():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 2))
    c = rng.choice(["a", "b", "c"], size=3000).tolist()
    profile = build_profile("m", {"x": x[:, 0], "c": c, "y": x[:, 1]}, {"x": N, "c": C, "y": N})
    codes = profile.features["c"].encode(rng.choice(["a", "b", "z"], size=2000).tolist())
    win = SlotWindow(profile, CountWindowSpec(events=2000, slide=500))
    for _ in win.feed(rng.normal(0.2, size=(2000, 2)), codes[:, None]):
        pass
    a, b = evaluate(profile, win), evaluate(profile, win.counts())
    assert a == b and a.features[1].kind is C and a.features[1].p_values["chi2"] < 1e-10
    assert [f.name for f in a.features] == ["x", "c", "y"]


def test_results_are_ordinary_frozen_dataclasses():
    x = np.random.default_rng(0).normal(size=2000)
    profile = build_profile("m", {"x": x}, {"x": N})
    result = evaluate(profile, fill(profile, (x + 1.0)[:, None]))
    f = result.features[0]
    same = FeatureResult(
        f.name, f.kind, f.n, f.missing_ratio, dict(f.scores), dict(f.p_values), f.crossed,
        f.drifted, f.enough_data,
    )  # fmt: skip
    assert f == same and repr(f) == repr(same)
    assert dataclasses.astuple(f) == dataclasses.astuple(same) and not hasattr(f, "__dict__")
    assert pickle.loads(pickle.dumps(result)) == result and dataclasses.replace(f, n=3).n == 3  # noqa: S301 - own bytes
    assert type(f.n) is int and type(f.drifted) is bool and type(f.enough_data) is bool
    assert type(f.scores) is dict and f.crossed == ("psi", "ks_p_value", "js")
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.n = 3  # type: ignore[misc]


def test_cached_plan_follows_arguments_changed_in_place():
    x = np.random.default_rng(0).normal(size=2000)
    profile = build_profile("m", {"x": x, "y": x}, {"x": N, "y": N})
    win = fill(profile, np.column_stack([x + 0.3, x]))
    tests: dict[str, list[str]] = {"x": ["ks"]}
    thresholds = {"x": DriftThresholds(ks_p_value=None, ks=0.05)}
    first = evaluate(profile, win, tests=tests, thresholds=thresholds)
    assert set(first.features[0].scores) == {"ks"} and first.features[0].crossed == ("ks",)
    tests["x"].append("psi")
    thresholds["x"] = DriftThresholds(ks_p_value=None, ks=None, psi=0.01)
    second = evaluate(profile, win, tests=tests, thresholds=thresholds)
    assert set(second.features[0].scores) == {"ks", "psi"}
    assert second.features[0].crossed == ("psi",)
    assert evaluate(profile, win, tests=["js"]).features[0].crossed == ("js",)
