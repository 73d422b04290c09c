"""How a model's false-alarm budget is split between its checks, by test family.

A model's checks are its window checks (every window test and missing-ratio check of
every feature, decided at each evaluation) and its sequential tests (``cusum`` and
``bin_cusum`` of every feature that runs them). Each check of family ``f`` gets the share

.. math:: B \\, \\frac{w_f}{\\sum_{\\text{checks } c} w_{f(c)}}

of the monthly budget ``B``, so the shares add up to ``B`` whatever the weights (the
weights are relative: doubling all of them changes nothing). Equal weights are the even
split over every check. The defaults (:data:`DEFAULT_WEIGHTS`) come from the detection
benchmark (``benchmarks/detection/sequential.py``): at a given false-alarm rate the
delays on numeric features are ``cusum``'s (it finds mean shifts, scale, mixtures and
heavier tails first), so ``bin_cusum`` is given less of the budget and ``cusum`` more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: The test families a budget is split over, as config keys.
FAMILIES = ("window", "cusum", "bin_cusum")


@dataclass(frozen=True)
class BudgetSplit:
    """Relative weights of one check of each family (all > 0)."""

    window: float = 1.0
    cusum: float = 1.0
    bin_cusum: float = 0.3

    def __post_init__(self) -> None:
        for family in FAMILIES:
            w = getattr(self, family)
            if not (w > 0 and w < float("inf")):
                raise ValueError(f"budget weight of {family} must be a finite number above 0")

    def weight(self, family: str) -> float:
        if family not in FAMILIES:
            raise KeyError(family)
        value: float = getattr(self, family)
        return value

    def total(self, window_checks: int, sequential: Mapping[str, int]) -> float:
        """The weights of all checks summed (``sequential``: test -> checks)."""
        return self.window * window_checks + sum(
            self.weight(test) * n for test, n in sequential.items()
        )

    def window_equivalents(self, sequential: Mapping[str, int]) -> float:
        """The sequential checks counted in window checks: what
        :func:`monitor.stats.calibration.calibrate` adds to a window check's divisor."""
        return sum(self.weight(test) * n for test, n in sequential.items()) / self.window

    def sequential_shares(
        self, budget: float, window_checks: int, sequential: Mapping[str, int]
    ) -> dict[str, float]:
        """Test -> false alarms a month of one check of that sequential test."""
        total = self.total(window_checks, sequential)
        return {test: budget * self.weight(test) / total for test in sequential}

    def to_json(self) -> dict[str, float]:
        return {family: float(getattr(self, family)) for family in FAMILIES}


#: The product's split when the config names none.
DEFAULT_WEIGHTS = BudgetSplit()
