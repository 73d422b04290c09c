"""False-alarm budgets: arithmetic, null laws, validity on simulated streams, JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from monitor.stats import (
    CountWindowSpec,
    DriftThresholds,
    FeatureKind,
    SlotWindow,
    build_profile,
    evaluate,
)
from monitor.stats.calibration import SECONDS_PER_MONTH, Budget, Calibration, calibrate

N, C = FeatureKind.NUMERIC, FeatureKind.CATEGORICAL
RARE_P = np.r_[np.full(4, 0.24), np.full(8, 0.04 / 8)]  # 8 categories at 0.5 %


def sample(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, object]:
    cats = np.array([f"v{i}" for i in range(RARE_P.size)])
    miss = rng.normal(size=n)
    miss[rng.random(n) < 0.01] = np.nan
    return {
        "normal": rng.normal(shift, 1.0, n),
        "heavy": rng.standard_t(2.5, n),
        "discrete": rng.poisson(2.0, n).astype(float),
        "missing": miss,
        "cat": list(cats[rng.choice(RARE_P.size, n, p=RARE_P)]),
    }


KINDS = {"normal": N, "heavy": N, "discrete": N, "missing": N, "cat": C}


@pytest.fixture(scope="module")
def profile():  # type: ignore[no-untyped-def]
    return build_profile("m", sample(np.random.default_rng(1), 20_000), KINDS)


def test_budget_arithmetic():
    b = Budget(1.0, window_events=10_000, slide_events=2_000, events_per_second=1_000)
    assert b.evaluations_per_month_value == 1_000 * SECONDS_PER_MONTH / 2_000
    assert b.looks == b.evaluations_per_month_value
    assert b.alpha_evaluation == pytest.approx(1 / b.looks)
    eff = Budget(
        1.0, window_events=10_000, slide_events=2_000, events_per_second=1_000,
        dependence="effective", consecutive=2,
    )  # fmt: skip
    assert eff.looks == pytest.approx(b.looks / 5)
    assert eff.independent_in_a_row == 1  # two overlapping windows: no credit
    disjoint = Budget(
        1.0, window_events=1_000, slide_events=1_000, evaluations_per_month=10_000,
        dependence="effective", consecutive=3,
    )  # fmt: skip
    assert disjoint.independent_in_a_row == 3
    assert disjoint.alpha_evaluation == pytest.approx((1 / 10_000) ** (1 / 3))
    t = Budget.for_time_window(2.0, seconds=60, slide_seconds=10, events_per_second=50)
    assert (t.window_events, t.slide_events) == (3_000, 500)
    assert t.evaluations_per_month_value == SECONDS_PER_MONTH / 10


@pytest.mark.parametrize(
    "kwargs",
    [
        {"false_alarms_per_month": 0.0},
        {"events_per_second": None},
        {"evaluations_per_month": 5.0},
        {"consecutive": 0},
        {"correction": "holm"},
        {"dependence": "none"},
    ],
)
def test_budget_rejects_bad_values(kwargs):
    base = {
        "false_alarms_per_month": 1.0, "window_events": 100, "slide_events": 10,
        "events_per_second": 10.0,
    }  # fmt: skip
    with pytest.raises(ValueError):
        Budget(**{**base, **kwargs})


@pytest.mark.slow
def test_psi_null_mean_matches_the_documented_formula(profile):
    b = Budget(1.0, window_events=5_000, slide_events=500, events_per_second=100)
    cal = calibrate(profile, b, tests=["psi"], draws=400, seed=3)
    psi = cal.features["normal"]["psi"]
    assert psi.expected == pytest.approx(9 * (1 / 5_000 + 1 / 20_000))
    assert psi.null_mean == pytest.approx(psi.expected, rel=0.15)
    assert psi.critical > 3 * psi.expected


def test_critical_values_shrink_with_the_window(profile):
    small = Budget(1.0, window_events=1_000, slide_events=1_000, events_per_second=10)
    large = Budget(1.0, window_events=50_000, slide_events=1_000, events_per_second=10)
    a = calibrate(profile, small, draws=200).thresholds()["normal"]
    b = calibrate(profile, large, draws=200).thresholds()["normal"]
    assert a.psi is not None and b.psi is not None and a.psi > 2 * b.psi
    assert a.js is not None and b.js is not None and a.js > b.js


def test_seeded_and_json_round_trip(profile):
    b = Budget(3.0, window_events=2_000, slide_events=500, events_per_second=20, correction="bh")
    one = calibrate(profile, b, draws=200, seed=7)
    two = calibrate(profile, b, draws=200, seed=7)
    assert one.to_json()["features"] == two.to_json()["features"]
    text = json.dumps(one.to_json(), allow_nan=False)
    back = Calibration.from_json(json.loads(text))
    assert back.thresholds() == one.thresholds()
    assert back.budget == b
    assert back.to_json() == one.to_json()
    with pytest.raises(ValueError, match="schema version"):
        Calibration.from_json({**one.to_json(), "schema_version": 99})


def test_thresholds_cover_only_calibrated_checks(profile):
    b = Budget(1.0, window_events=2_000, slide_events=500, events_per_second=20)
    cal = calibrate(profile, b, tests={"cat": ["chi2"]}, missing_ratio=False, draws=100)
    th = cal.thresholds()
    assert isinstance(th["cat"], DriftThresholds)
    assert th["cat"].chi2_p_value is not None and th["cat"].psi is None
    assert th["normal"].ks_p_value == pytest.approx(cal.alpha_test)
    assert th["normal"].missing_ratio is None
    assert cal.checks_per_evaluation == 1 + 4 * 5  # chi2, and all five numeric tests x 4


def test_rare_categories_raise_the_chi2_critical_value(profile):
    b = Budget(1.0, window_events=300, slide_events=300, events_per_second=10)
    chi2 = calibrate(profile, b, tests=["chi2"], draws=300).features["cat"]["chi2_p_value"]
    assert chi2.rare  # expected counts of 5 or fewer
    assert chi2.method == "fitted+rare_cells"
    from scipy import stats

    assert chi2.statistic > stats.chi2.isf(chi2.alpha, df=11)
    assert chi2.critical < chi2.alpha
    # the rare-cell term is a step function of the statistic: the root sits on a step
    assert 0.5 * chi2.alpha <= chi2.p_value(chi2.statistic) <= chi2.alpha * (1 + 1e-6)


def test_missing_ratio_critical_value(profile):
    b = Budget(1.0, window_events=10_000, slide_events=1_000, events_per_second=100)
    m = calibrate(profile, b, tests=["psi"], draws=100).features["missing"]["missing_ratio"]
    assert 0.002 < m.critical < 0.02  # reference rate 1 %; a jump to 10 % is detected
    assert m.expected == pytest.approx(0.01, abs=0.003)


def null_flag_rate(profile, cal: Calibration, windows: int, seed: int) -> float:
    thresholds = cal.thresholds()
    rng = np.random.default_rng(seed)
    n = cal.window_events
    flagged = 0
    for _ in range(windows):
        cols = sample(rng, n)
        num = np.column_stack([cols[k] for k in profile.numeric_names])
        cat = profile.features["cat"].encode(cols["cat"])[:, None]
        win = SlotWindow(profile, CountWindowSpec(events=n, slide=n))
        list(win.feed(num, cat))
        result = evaluate(profile, win, tests=["psi", "ks", "js", "chi2"], thresholds=thresholds)
        flagged += bool(result.drifted_features)
    return flagged / windows


@pytest.mark.slow
def test_budget_holds_on_simulated_null_windows(profile):
    # A generous budget (alpha per evaluation 0.1) so that the rate is measurable here.
    b = Budget(0.1, window_events=2_000, slide_events=2_000, evaluations_per_month=1.0)
    cal = calibrate(profile, b, draws=600, seed=0)
    assert cal.alpha_evaluation == pytest.approx(0.1)
    rate = null_flag_rate(profile, cal, windows=300, seed=11)
    # Binomial(300, 0.1): P(X > 45) < 0.005. Bonferroni over correlated tests makes the
    # real rate lower still.
    assert rate <= 0.15


def test_apply_bonferroni_matches_evaluate_and_bh_finds_more(profile):
    b = Budget(1.0, window_events=5_000, slide_events=5_000, evaluations_per_month=100.0)
    cal = calibrate(profile, b, draws=200)
    rng = np.random.default_rng(5)
    cols = sample(rng, 5_000, shift=0.12)
    num = np.column_stack([cols[k] for k in profile.numeric_names])
    cat = profile.features["cat"].encode(cols["cat"])[:, None]
    win = SlotWindow(profile, CountWindowSpec(events=5_000, slide=5_000))
    list(win.feed(num, cat))
    result = evaluate(profile, win, tests=["psi", "ks", "js", "chi2"], thresholds=cal.thresholds())
    same = cal.apply(result)
    assert same.drifted_features == result.drifted_features
    assert "normal" in result.drifted_features
    bh = Calibration.from_json(
        {**cal.to_json(), "budget": {**cal.budget.to_json(), "correction": "bh"}}
    ).apply(result)
    assert set(result.drifted_features) <= set(bh.drifted_features)
    pvals = cal.p_values(result)
    assert all(0.0 <= p <= 1.0 for p in pvals.values())
    assert pvals[("normal", "ks_p_value")] == result.features[0].p_values["ks"]


@pytest.mark.slow
def test_calibration_is_fast_enough_for_start_up():
    rng = np.random.default_rng(0)
    cols = {f"x{i}": rng.normal(size=50_000) for i in range(20)}
    prof = build_profile("m", cols, dict.fromkeys(cols, N))
    b = Budget(1.0, window_events=10_000, slide_events=2_000, events_per_second=1_000)
    calibrate(prof, b, draws=50)  # compile
    import time

    start = time.process_time()
    cal = calibrate(prof, b)
    assert time.process_time() - start < 10.0  # a few seconds on a loaded 2-core box
    assert all(math.isfinite(t.critical) for ts in cal.features.values() for t in ts.values())
