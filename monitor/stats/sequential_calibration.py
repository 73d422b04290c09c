r"""Thresholds of the sequential detectors from a false-alarm budget.

A detector with threshold ``h`` raises, under the reference, one false alarm every
``ARL(h)`` events on average (the average run length; detectors re-arm after an alarm,
so alarms are a renewal process). A budget of ``B`` false alarms a month at ``R`` events a
month, split evenly over ``m`` checks (every window check and every sequential test of
every feature, as :func:`monitor.stats.calibration.calibrate` splits it), asks each
detector for

.. math:: \text{ARL} \ge \frac{R\,(1 - \text{missing share})}{B / m}

non-missing events, a number far beyond simulation (around :math:`10^{11}` for a month of
1,000 events a second). Every increment is a log-likelihood ratio
(:mod:`monitor.stats.sequential`), so :math:`\text{ARL}(h) \ge e^h` (Lorden, 1971), and as
``h`` grows :math:`\text{ARL}(h) \sim c\, e^{h}` with a constant ``c >= 1`` set by the
overshoot and the drift under the reference (Siegmund, 1985, ch. X). The constant is
measured by simulation from the reference profile: the real detector kernel runs on
``events`` cells drawn from the reference shares, at a grid of thresholds side by side,
and ``c = ARL / e^h`` is read at the largest threshold that still saw ``MIN_ALARMS``
alarms. Then

.. math:: h = \log \text{ARL}_{\text{target}} - \log \max(c, 1).

``method`` says which applied: ``simulated`` (``c`` measured), or ``lorden`` (too few
alarms to measure ``c``: the bound alone, conservative). The verification over 20 million
stationary events is ``benchmarks/detection/verify_budget.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.stats.profile import ReferenceProfile
from monitor.stats.sequential import (
    EWMA_WEIGHT,
    MIXTURE,
    SEQUENTIAL_TESTS,
    SIDES,
    SequentialPlan,
    build_plan,
    run_detectors,
)

#: Thresholds simulated side by side, and the alarms one needs to be read.
GRID = (0.5, 1.0, 2.0, 3.0, 4.5, 6.0, 7.5, 9.0)
MIN_ALARMS = 100
#: Simulated events per feature.
EVENTS = 300_000
#: Part of the detector set-up the stored thresholds depend on (a change recalibrates).
PARAMETERS = "k=0.05/0.1;mixture=0.5;ewma=0.001;eps=1e-4;grid=0.5..9;events=300000"


@dataclass(frozen=True)
class SequentialThreshold:
    """The threshold of one sequential test of one feature, and how it was found."""

    test: str
    h: float
    arl_events: float  # the target average run length, in non-missing events
    log_c: float  # log ARL(h) - h measured by simulation (0 with the bound alone)
    method: str  # "simulated" or "lorden"

    def to_json(self) -> dict[str, Any]:
        return {
            "test": self.test, "h": self.h, "arl_events": self.arl_events,
            "log_c": self.log_c, "method": self.method,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SequentialThreshold:
        return cls(
            test=str(data["test"]), h=float(data["h"]), arl_events=float(data["arl_events"]),
            log_c=float(data["log_c"]), method=str(data["method"]),
        )  # fmt: skip


def _virtual(plan: SequentialPlan, i: int, test: int) -> SequentialPlan:
    """Feature ``i``'s ``test`` (0 cusum, 1 bin_cusum) copied once per grid threshold."""
    g = len(GRID)
    cusum = np.full(g, test == 0)
    h = np.full((g, 2), np.inf)
    h[:, test] = GRID
    increments = (
        np.repeat(plan.increments[i : i + 1], g, axis=0)
        if i < plan.n_numeric
        else np.zeros((g, SIDES, plan.reference.shape[1]))
    )
    return SequentialPlan(
        names=tuple(f"{i}@{x}" for x in GRID), n_numeric=g, edges=np.zeros((g, 1)),
        n_cells=np.repeat(plan.n_cells[i : i + 1], g), increments=increments,
        reference=np.repeat(plan.reference[i : i + 1], g, axis=0), cusum=cusum,
        bins=np.full(g, test == 1), h=h,
    )  # fmt: skip


def simulated_log_c(
    plan: SequentialPlan, i: int, test: int, shares: np.ndarray, events: int, seed: int
) -> float | None:
    """``log(ARL(h) / e^h)`` of feature ``i``'s ``test`` under ``shares`` by simulation,
    or ``None`` when no grid threshold saw ``MIN_ALARMS`` alarms."""
    rng = np.random.default_rng(seed)
    k = int(plan.n_cells[i])
    p = shares[:k] / shares[:k].sum()
    drawn = rng.choice(k, size=events, p=p).astype(np.int32)
    v = _virtual(plan, i, test)
    g = len(GRID)
    stats = np.zeros((g, SIDES + 1))
    recent = np.array(v.reference, copy=True)
    scale = np.ones(g)
    counts = np.zeros(g, np.int64)
    chunk = 8192
    alarms = np.empty((2 * g * chunk, 4), np.int64)
    for start in range(0, events, chunk):
        part = np.ascontiguousarray(
            np.broadcast_to(drawn[start : start + chunk], (g, min(chunk, events - start)))
        )
        n = run_detectors(
            part, v.increments, v.reference, v.cusum, v.bins, v.h, MIXTURE, EWMA_WEIGHT,
            stats, recent, scale, alarms,
        )  # fmt: skip
        counts += np.bincount(alarms[:n, 1], minlength=g)
    usable = [j for j in range(g) if counts[j] >= MIN_ALARMS]
    if not usable:
        return None
    j = usable[-1]
    return math.log(events / counts[j]) - GRID[j]


def calibrate_sequential(
    profile: ReferenceProfile,
    tests: Mapping[str, Sequence[str]],
    *,
    alarms_per_month: float,
    events_per_month: float,
    events: int = EVENTS,
    seed: int = 0,
) -> dict[str, dict[str, SequentialThreshold]]:
    """Per feature and sequential test, the threshold for ``alarms_per_month`` false
    alarms a month (one check's share of the budget) at ``events_per_month`` events."""
    plan = build_plan(profile, tests, {})
    out: dict[str, dict[str, SequentialThreshold]] = {}
    for i, name in enumerate(plan.names):
        f = profile.features[name]
        present = f.n / (f.n + f.missing) if f.n + f.missing else 1.0
        target = max(events_per_month * present / alarms_per_month, 1.0)
        counts = np.asarray(f.counts, np.float64)
        shares = counts / counts.sum() if counts.sum() > 0 else np.ones(counts.size)
        mine: dict[str, SequentialThreshold] = {}
        for test, on in ((0, plan.cusum[i]), (1, plan.bins[i])):
            if not on:
                continue
            log_c = simulated_log_c(plan, i, test, shares, events, seed + 7919 * i + test)
            used = max(log_c, 0.0) if log_c is not None else 0.0
            mine[SEQUENTIAL_TESTS[test]] = SequentialThreshold(
                test=SEQUENTIAL_TESTS[test], h=max(math.log(target) - used, GRID[0]),
                arl_events=target, log_c=used,
                method="simulated" if log_c is not None else "lorden",
            )  # fmt: skip
        if mine:
            out[name] = mine
    return out
