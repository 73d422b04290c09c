"""The budget's split between test families: the shares, the config key and its errors,
and the calibration that uses them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from monitor.config import validate_config
from monitor.model.budget import calibrate_model, calibration_digest
from monitor.stats import FeatureKind, ReferenceProfile, build_profile
from monitor.stats.budget_split import DEFAULT_WEIGHTS, FAMILIES, BudgetSplit
from tests.unit.test_config import cfg, one_problem

BUDGET = {"false_alarms_per_month": 10, "events_per_second": 1000}
COUNTS = {"cusum": 4, "bin_cusum": 5}


def alert(**keys: Any) -> dict[str, Any]:
    return cfg(**{"models.fraud.alert": keys})


def test_shares_add_up_to_the_budget_whatever_the_weights() -> None:
    for split in (BudgetSplit(), BudgetSplit(1, 1, 1), BudgetSplit(2.0, 5.0, 0.1)):
        shares = split.sequential_shares(36.0, 20, COUNTS)
        window = 36.0 / (20 + split.window_equivalents(COUNTS))
        total = 20 * window + sum(shares[t] * n for t, n in COUNTS.items())
        assert total == pytest.approx(36.0)
        assert shares["cusum"] / window == pytest.approx(split.cusum / split.window)
        assert shares["bin_cusum"] / shares["cusum"] == pytest.approx(split.bin_cusum / split.cusum)


def test_equal_weights_are_the_even_split() -> None:
    shares = BudgetSplit(1.0, 1.0, 1.0).sequential_shares(29.0, 20, COUNTS)
    assert shares == {"cusum": pytest.approx(1.0), "bin_cusum": pytest.approx(1.0)}
    assert BudgetSplit(3.0, 3.0, 3.0).window_equivalents(COUNTS) == 9.0
    # only relative weights count
    assert BudgetSplit(2.0, 2.0, 0.6).sequential_shares(10.0, 7, COUNTS) == pytest.approx(
        DEFAULT_WEIGHTS.sequential_shares(10.0, 7, COUNTS)
    )


def test_the_default_gives_cusum_more_than_bin_cusum() -> None:
    assert DEFAULT_WEIGHTS.window == 1.0 and DEFAULT_WEIGHTS.cusum == 1.0
    assert 0 < DEFAULT_WEIGHTS.bin_cusum < DEFAULT_WEIGHTS.cusum
    assert DEFAULT_WEIGHTS.to_json() == {"window": 1.0, "cusum": 1.0, "bin_cusum": 0.3}


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan")])
def test_a_weight_must_be_positive_and_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="budget weight of cusum"):
        BudgetSplit(cusum=bad)
    with pytest.raises(KeyError):
        BudgetSplit().weight("psi")


def test_config_default_and_partial_weights() -> None:
    a = validate_config(alert(**BUDGET)).models["fraud"].alert
    assert a.budget_weights is None and a.budget_split() == DEFAULT_WEIGHTS
    a = validate_config(alert(**BUDGET, budget_weights={"bin_cusum": 0.5})).models["fraud"].alert
    assert a.budget_split() == BudgetSplit(window=1.0, cusum=1.0, bin_cusum=0.5)
    assert "budget weights window 1, cusum 1, bin_cusum 0.5" in a.describe()
    full = {"window": 2, "cusum": 3, "bin_cusum": 1}
    a = validate_config(alert(**BUDGET, budget_weights=full)).models["fraud"].alert
    assert a.budget_split().to_json() == {"window": 2.0, "cusum": 3.0, "bin_cusum": 1.0}
    assert set(a.budget_split().to_json()) == set(FAMILIES)


@pytest.mark.parametrize(
    ("weights", "path", "part"),
    [
        ({"cusum": 0}, "budget_weights.cusum", "above 0"),
        ({"bin_cusum": -0.5}, "budget_weights.bin_cusum", "above 0"),
        ({"window": "lots"}, "budget_weights.window", ""),
        ({"window": 2e6}, "budget_weights.window", ""),
        ({"cusm": 1}, "budget_weights.cusm", "cusum"),
        ({"psi": 1}, "budget_weights.psi", ""),
    ],
)
def test_bad_weights_name_the_key(weights: dict[str, Any], path: str, part: str) -> None:
    where, message, hint = one_problem(alert(**BUDGET, budget_weights=weights))
    assert where == f"models.fraud.alert.{path}"
    assert part in f"{message} {hint}"


def test_weights_without_a_budget_are_refused() -> None:
    where, message, hint = one_problem(alert(budget_weights={"cusum": 2}))
    assert where == "models.fraud.alert.budget_weights"
    assert message == "budget_weights only applies to a false-alarm budget"
    assert "false_alarms_per_month" in hint


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(0)
    return build_profile(
        "fraud",
        {"amount": rng.normal(size=20_000), "country": rng.choice(["a", "b", "c"], 20_000)},
        {"amount": FeatureKind.NUMERIC, "country": FeatureKind.CATEGORICAL},
        bins=20,
    )


def model(profile: ReferenceProfile, weights: dict[str, float] | None) -> Any:
    keys: dict[str, Any] = {**BUDGET, "calibration_draws": 100}
    if weights is not None:
        keys["budget_weights"] = weights
    data = cfg(**{"models.fraud.alert": keys, "models.fraud.tests": ["psi", "cusum", "bin_cusum"]})
    return validate_config(data).models["fraud"]


def test_calibration_follows_the_weights(profile: ReferenceProfile) -> None:
    even = model(profile, {"window": 1, "cusum": 1, "bin_cusum": 1})
    tilted = model(profile, {"window": 1, "cusum": 4, "bin_cusum": 0.25})
    assert calibration_digest(even, profile) != calibration_digest(tilted, profile)
    a, b = calibrate_model(even, profile), calibrate_model(tilted, profile)
    # 2 features x (psi, missing) window checks; cusum on amount, bin_cusum on both
    month = 1000 * 2_592_000 / 10  # events a month over the budget
    assert a.sequential["amount"]["cusum"].arl_events == pytest.approx(month * 7)
    assert a.sequential["country"]["bin_cusum"].arl_events == pytest.approx(month * 7)
    total = 4 + 4 + 2 * 0.25
    assert b.sequential["amount"]["cusum"].arl_events == pytest.approx(month * total / 4)
    assert b.sequential["amount"]["bin_cusum"].arl_events == pytest.approx(month * total / 0.25)
    assert b.sequential["amount"]["cusum"].h < a.sequential["amount"]["cusum"].h
    assert b.sequential["amount"]["bin_cusum"].h > a.sequential["amount"]["bin_cusum"].h
    # the window checks' level follows their weight too
    assert a.calibration.alpha_test == pytest.approx(a.calibration.alpha_evaluation / 7)
    assert b.calibration.alpha_test == pytest.approx(b.calibration.alpha_evaluation / total)
