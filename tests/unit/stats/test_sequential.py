"""Sequential detectors: the kernel against a plain-Python CUSUM, and textbook properties."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monitor.stats import (
    CategoricalProfile,
    FeatureKind,
    NumericProfile,
    ReferenceProfile,
    build_profile,
)
from monitor.stats.sequential import (
    EPSILON,
    EWMA_WEIGHT,
    K_LOCATION,
    MIXTURE,
    SequentialDetectors,
    build_plan,
    lr_scale,
    normal_scores,
    tail_scores,
)
from monitor.stats.sequential_calibration import (
    GRID,
    calibrate_sequential,
    fit_rates,
    simulated_rates,
    solve_threshold,
)

CATEGORIES = ["a", "b", "c", "d"]
SHARES = [0.4, 0.3, 0.2, 0.1]


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(0)
    return build_profile(
        "m",
        {
            "x": rng.normal(size=20_000),
            "t": rng.standard_t(3, size=20_000),
            "n": rng.poisson(3, size=20_000).astype(float),
            "c": rng.choice(CATEGORIES, 20_000, p=SHARES).tolist(),
        },
        {
            "x": FeatureKind.NUMERIC,
            "t": FeatureKind.NUMERIC,
            "n": FeatureKind.NUMERIC,
            "c": FeatureKind.CATEGORICAL,
        },
        bins=20,
    )


ALL = {"x": ["cusum", "bin_cusum"], "t": ["cusum", "bin_cusum"], "n": ["cusum"], "c": ["bin_cusum"]}


def reference_run(
    profile: ReferenceProfile, numeric: np.ndarray, codes: np.ndarray, h: float
) -> tuple[list[tuple[int, str, str]], dict[str, list[float]]]:
    """The detectors written out event by event in plain Python, from the definitions."""
    alarms: list[tuple[int, str, str]] = []
    state: dict[str, list[float]] = {}
    recent: dict[str, np.ndarray] = {}
    for j, name in enumerate(profile.numeric_names + profile.categorical_names):
        f = profile.features[name]
        counts = np.asarray(f.counts, float)
        p = counts / counts.sum()
        tests = ALL[name]
        sides: list[np.ndarray] = []
        if "cusum" in tests:
            loc, scale = normal_scores(p, f.n)
            upper = (scale + loc - p @ (scale + loc)) / np.sqrt(p @ (scale + loc) ** 2)
            lower = (scale - loc - p @ (scale - loc)) / np.sqrt(p @ (scale - loc) ** 2)
            for x in (
                loc - K_LOCATION, -loc - K_LOCATION, scale - 0.1, -scale - 0.1,
                loc - 0.25, -loc - 0.25, loc - 0.125, -loc - 0.125, upper - 0.15, lower - 0.15,
            ):  # fmt: skip
                sides.append(lr_scale(x, p) * x)
        floored = np.maximum(p, EPSILON)
        floored /= floored.sum()
        r = floored.copy()
        s = [0.0] * 11
        numeric_feature = j < len(profile.numeric_names)
        for row in range(numeric.shape[0]):
            if numeric_feature:
                assert isinstance(f, NumericProfile)
                v = numeric[row, j]
                if math.isnan(v):
                    continue
                cell = int(np.searchsorted(f.edges, v, side="right"))
            else:
                cell = int(codes[row, j - len(profile.numeric_names)])
                if cell < 0:
                    continue
            if sides:
                for k, inc in enumerate(sides):
                    s[k] = max(0.0, s[k] + inc[cell])
                if max(s[:10]) > h:
                    alarms.append((row, name, "cusum"))
                    s[:10] = [0.0] * 10
            if "bin_cusum" in tests:
                q = (1 - MIXTURE) * floored[cell] + MIXTURE * r[cell]
                s[10] = max(0.0, s[10] + math.log(q / floored[cell]))
                if s[10] > h:
                    alarms.append((row, name, "bin_cusum"))
                    s[10] = 0.0
                r *= 1 - EWMA_WEIGHT
                r[cell] += EWMA_WEIGHT
        state[name] = s
        recent[name] = r
    return sorted(alarms, key=lambda a: (a[0], list(ALL).index(a[1]))), state


def columns(
    profile: ReferenceProfile, rng: np.random.Generator, n: int, shift: float
) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(shift, 1, n)
    x[rng.random(n) < 0.05] = np.nan  # missing values are skipped
    t = rng.standard_t(3, n) * (1 + shift)
    pois = rng.poisson(3 + 3 * shift, n).astype(float)
    numeric = np.column_stack([x, t, pois])
    shares = np.roll(SHARES, 1) if shift else SHARES
    categorical = profile.features["c"]
    assert isinstance(categorical, CategoricalProfile)
    codes = categorical.encode(rng.choice(CATEGORIES, n, p=shares).tolist())
    codes[rng.random(n) < 0.05] = -1
    return numeric, codes.reshape(-1, 1)


def test_kernel_matches_a_plain_python_cusum_alarm_for_alarm(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(1)
    quiet = columns(profile, rng, 3000, 0.0)
    shifted = columns(profile, rng, 3000, 0.3)
    numeric = np.concatenate([quiet[0], shifted[0]])
    codes = np.concatenate([quiet[1], shifted[1]])
    h = 6.0
    plan = build_plan(profile, ALL, {name: {"cusum": h, "bin_cusum": h} for name in ALL})
    detectors = SequentialDetectors(plan)
    # fed in uneven batches: the state carries over exactly
    found = []
    for lo, hi in ((0, 1), (1, 1777), (1777, 4100), (4100, 6000)):
        found += [
            (a.row + lo, a.feature, a.test) for a in detectors.run(numeric[lo:hi], codes[lo:hi])
        ]
    expected, state = reference_run(profile, numeric, codes, h)
    assert found == expected
    assert len(expected) > 20  # the shift is found, by every feature
    assert {a[1] for a in expected if a[0] >= 3000} == set(ALL)
    for i, name in enumerate(plan.names):
        np.testing.assert_allclose(detectors.stats[i], state[name], rtol=1e-9, atol=1e-9)


def test_scores_are_standardised_under_the_reference(profile: ReferenceProfile) -> None:
    for name in ("x", "t", "n"):
        f = profile.features[name]
        p = np.asarray(f.counts, float) / f.n
        loc, scale = normal_scores(p, f.n)
        for s in (loc, scale, *tail_scores(loc, scale, p)):
            assert abs(p @ s) < 1e-9 and abs(p @ s**2 - 1) < 1e-9
        # every side's increments are log-likelihood ratios: E_p[exp(x)] = 1
        x = loc - K_LOCATION
        assert abs(p @ np.exp(lr_scale(x, p) * x) - 1) < 1e-9


def simulated_arl(profile: ReferenceProfile, name: str, test: str, h: float, n: int) -> float:
    """Mean events between alarms of one detector on a stationary stream from the reference."""
    f = profile.features[name]
    p = np.asarray(f.counts, float) / f.n
    rng = np.random.default_rng(7)
    plan = build_plan(profile, {name: [test]}, {name: {test: h}})
    detectors = SequentialDetectors(plan)
    index = plan.names.index(name)
    cells = np.full((len(plan.names), n), -1, np.int32)
    cells[index] = rng.choice(p.size, n, p=p)
    alarms = len(detectors.run_cells(cells))
    return n / max(alarms, 1)


@pytest.mark.parametrize(("name", "test"), [("x", "cusum"), ("t", "bin_cusum"), ("c", "bin_cusum")])
def test_average_run_length_under_the_reference(
    profile: ReferenceProfile, name: str, test: str
) -> None:
    """Lorden's bound ARL >= e^h holds against the reference itself, and the calibration's
    fitted rate e^(a - b h), measured at small thresholds on redrawn references, does not
    overstate the ARL at a larger one (so the budget holds)."""
    rates = simulated_rates(profile, name, 0 if test == "cusum" else 1, 100_000, 2, 3)
    fit = fit_rates(rates, 200_000)
    assert fit is not None
    a, b, top = fit
    assert a < 0 and 0 < b <= 1 and top in GRID
    h = 5.0
    arl = simulated_arl(profile, name, test, h, 1_000_000)
    assert arl >= math.exp(h)
    assert arl > math.exp(b * h - a) / 1.5


def test_the_reference_error_raises_the_cusum_threshold() -> None:
    plain, limited = solve_threshold(-3.0, 1.0, 0.0, 25.0)
    assert (plain, limited) == (22.0, False)
    h, limited = solve_threshold(-3.0, 1.0, 1.0 / 250, 25.0)  # k = 0.05, n = 50,000
    assert not limited and h == pytest.approx(24.38, abs=0.01)
    assert -3.0 - h + h * h / 250 == pytest.approx(-25.0)
    h, limited = solve_threshold(-3.0, 1.0, 1.0 / 25, 25.0)  # n = 5,000: out of reach
    assert limited and h == pytest.approx(12.5)


def test_calibrated_thresholds_meet_the_budget_share(profile: ReferenceProfile) -> None:
    found = calibrate_sequential(profile, ALL, alarms_per_month=1.0, events_per_month=2e6)
    x = found["x"]["cusum"]
    assert x.method == "simulated" and x.arl_events == pytest.approx(2e6)
    assert math.log(2e6) - 5 < x.h < math.log(2e6) + 2
    assert found["c"]["bin_cusum"].h < math.log(2e6)  # tighter than the bound alone
    assert set(found) == set(ALL) and set(found["n"]) == {"cusum"}
    # and a stationary run of 4 months at that rate raises about 4 alarms, not dozens
    arl = simulated_arl(profile, "x", "cusum", x.h, 8_000_000)
    assert arl > 2e6 / 3


def test_state_round_trip_and_thresholds_follow(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(2)
    numeric, codes = columns(profile, rng, 5000, 0.2)
    plan = build_plan(profile, ALL, {name: {"cusum": 8.0, "bin_cusum": 8.0} for name in ALL})
    one, two = SequentialDetectors(plan), SequentialDetectors(plan)
    first = one.run(numeric[:2500], codes[:2500])
    two.load_state_dict(one.state_dict())
    assert one.run(numeric[2500:], codes[2500:]) == two.run(numeric[2500:], codes[2500:])
    assert first
    np.testing.assert_array_equal(one.stats, two.stats)
    one.set_thresholds({"x": {"cusum": None, "bin_cusum": 3.0}})
    assert math.isinf(one.plan.h[0, 0]) and one.plan.h[0, 1] == 3.0
    with pytest.raises(ValueError, match="does not fit"):
        two.load_state_dict({**one.state_dict(), "stats": np.zeros((1, 5))})


def test_the_middle_location_pair_has_the_most_drift_at_a_quarter_sd(
    profile: ReferenceProfile,
) -> None:
    # a 0.25 sd shift gives the 0.25 pair no drift and the 0.05 pair little: the 0.125
    # pair (sides 6, 7) gains the most log-likelihood ratio per event there
    plan = build_plan(profile, {"x": ["cusum"]}, {"x": {"cusum": 20.0}})
    x = profile.features["x"]
    assert isinstance(x, NumericProfile)
    rng = np.random.default_rng(4)
    cells = np.searchsorted(np.asarray(x.edges), rng.normal(0.25, 1, 200_000), side="right")
    drift = plan.increments[0][:, cells].mean(axis=1)
    assert drift[6] > 1.3 * max(drift[0], drift[4]) and drift[6] > 0
    assert drift[7] < 0  # the down side of the pair drifts away


def test_the_tail_sides_have_the_most_drift_when_mass_moves_into_one_tail(
    profile: ReferenceProfile,
) -> None:
    # 10 % of the events from N(2, 1): location and scale rise together, and the upper
    # tail side (8) gains more log-likelihood ratio per event than any location or scale
    # side; the lower tail side (9) drifts away
    plan = build_plan(profile, {"x": ["cusum"]}, {"x": {"cusum": 20.0}})
    x = profile.features["x"]
    assert isinstance(x, NumericProfile)
    rng = np.random.default_rng(5)
    values = rng.normal(size=200_000)
    hit = rng.random(values.size) < 0.1
    values[hit] = rng.normal(2.0, 1.0, int(hit.sum()))
    cells = np.searchsorted(np.asarray(x.edges), values, side="right")
    drift = plan.increments[0][:, cells].mean(axis=1)
    assert drift[8] > 1.3 * drift[:8].max() and drift[9] < 0
    # and the lower tail side is its mirror image
    cells = np.searchsorted(np.asarray(x.edges), -values, side="right")
    drift = plan.increments[0][:, cells].mean(axis=1)
    assert drift[9] > 1.3 * drift[:8].max() and drift[8] < 0


@pytest.mark.parametrize("sides", [6, 8])
def test_a_checkpoint_with_fewer_cusum_sides_loads(profile: ReferenceProfile, sides: int) -> None:
    """Checkpoints from before the middle pair (6 sides) and before the tail sides (8):
    every side they had resumes where it was, the new ones start from 0."""
    plan = build_plan(profile, ALL, {name: {"cusum": 8.0, "bin_cusum": 8.0} for name in ALL})
    detectors = SequentialDetectors(plan)
    state = detectors.state_dict()
    old = np.arange(1.0, 1.0 + (sides + 1) * len(plan.names)).reshape(len(plan.names), -1)
    detectors.load_state_dict({**state, "stats": old})
    np.testing.assert_array_equal(detectors.stats[:, :sides], old[:, :sides])
    np.testing.assert_array_equal(detectors.stats[:, sides:10], 0.0)
    np.testing.assert_array_equal(detectors.stats[:, 10], old[:, sides])
    with pytest.raises(ValueError, match="does not fit"):  # any other width is refused
        detectors.load_state_dict({**state, "stats": np.zeros((len(plan.names), 10))})
