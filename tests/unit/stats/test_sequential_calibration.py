"""bin_cusum's reference-error term: the information per event, the fixed and sampled parts
of the error, the threshold it solves for, and the stationary rate it buys."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monitor.stats import FeatureKind, build_profile
from monitor.stats.sequential import EPSILON, EWMA_WEIGHT, MIXTURE, SequentialDetectors, build_plan
from monitor.stats.sequential_calibration import (
    BinReferenceError,
    RateFit,
    bin_reference_error,
    calibrate_sequential,
)

SHARES = [0.4, 0.3, 0.15, 0.1, 0.05]


def test_information_per_event_is_near_the_small_deviation_formula() -> None:
    error = bin_reference_error(np.full(100, 500), 50_000, seed=1)
    # D ~ (lambda^2 / 2) (w / (2 - w)) (K - 1), the alternative's KL from the reference
    approx = MIXTURE**2 / 2 * EWMA_WEIGHT / (2 - EWMA_WEIGHT) * 99
    assert error.information == pytest.approx(approx, rel=0.1)
    assert (error.floor, error.nu, error.n) == (0.0, 99, 50_000)
    # seeded, and a second seed agrees closely (the estimate's noise is small)
    assert bin_reference_error(np.full(100, 500), 50_000, seed=1) == error
    other = bin_reference_error(np.full(100, 500), 50_000, seed=2)
    assert other.information == pytest.approx(error.information, rel=0.05)


def test_empty_cells_are_a_fixed_error_and_the_sampled_part_grows_with_h() -> None:
    counts = np.array([20_000, 15_000, 7_500, 5_000, 2_500, 0, 0])  # __other__, __unseen__
    error = bin_reference_error(counts, 50_000, seed=1)
    assert error.nu == 4
    assert error.floor == pytest.approx(2 * EPSILON, rel=0.01)
    u = MIXTURE / error.information
    assert error.excess(10.0, 1.0) == pytest.approx(
        u * 10 * error.floor - 2.0 * math.log1p(-2 * u * 10 / 50_000)
    )
    assert 0 < error.excess(5.0, 1.0) < error.excess(10.0, 1.0)
    # a reference this small cannot keep any threshold this large finite
    assert math.isinf(BinReferenceError(0.0, 99, 500, 0.03).excess(20.0, 1.0))


def test_the_threshold_solves_the_fit_plus_the_excess() -> None:
    fit = RateFit(-4.0, 1.0, 4.5)
    none = BinReferenceError(0.0, 0, 50_000, 0.03)
    assert none.solve(fit, 20.0) == (pytest.approx(16.0), False)
    error = BinReferenceError(2e-4, 4, 50_000, 0.0013)
    h, limited = error.solve(fit, 20.0)
    assert not limited and h > 16.0
    log_rate = -4.0 - h + error.excess(h, 1.0) - error.excess(4.5, 1.0)
    assert log_rate == pytest.approx(-20.0, abs=1e-6)
    assert error.solve(fit, 7.0) == (pytest.approx(3.0), False)  # inside the fitted range
    h, limited = BinReferenceError(0.0, 99, 2_000, 0.03).solve(fit, 40.0)
    assert limited and 4.5 < h  # the lowest rate this reference allows


def test_bin_cusum_stays_within_its_share_on_a_categorical_column() -> None:
    """Streams from the true law against references sampled from it (three), the threshold
    for one alarm per 500,000 events: about 30 alarms in 15M events. The fit's slope of 1
    carried to this threshold (the model before the reference-error term) raised about 3x."""
    rng = np.random.default_rng(11)
    target, events = 500_000.0, 5_000_000
    alarms, plain = 0, []
    for _ in range(3):
        codes = rng.choice(len(SHARES), 50_000, p=SHARES)
        values = {"c": [str(c) for c in codes]}
        profile = build_profile("m", values, {"c": FeatureKind.CATEGORICAL})
        found = calibrate_sequential(
            profile, {"c": ["bin_cusum"]}, alarms_per_month=1.0, events_per_month=target
        )
        t = found["c"]["bin_cusum"]
        assert t.method == "simulated" and t.arl_events == target
        plain.append((t.intercept + math.log(target)) / t.slope)
        assert t.h > plain[-1] + 0.3  # the error term raises it
        plan = build_plan(profile, {"c": ["bin_cusum"]}, {"c": {"bin_cusum": t.h}})
        order = [int(x) for x in profile.features["c"].categories]  # type: ignore[union-attr]
        stream = rng.choice(len(SHARES), events, p=SHARES)
        remap = np.argsort(order)  # category value -> code in the profile's order
        cells = remap[stream].astype(np.int32)[None, :]
        alarms += len(SequentialDetectors(plan).run_cells(cells))
    assert 12 <= alarms <= 45, alarms
