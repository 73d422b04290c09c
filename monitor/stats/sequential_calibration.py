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
(:mod:`monitor.stats.sequential`), so against the true law :math:`\text{ARL}(h) \ge e^h`
(Lorden, 1971) and the false-alarm rate falls as :math:`c\,e^{-h}` for large ``h``
(Siegmund, 1985, ch. X). But the detector's reference is a sample, not the true law: its
shares, and so the scores' means, are off by about :math:`1/\sqrt{n}`, which makes the
rate fall more slowly, :math:`e^{-b h}` with ``b < 1`` (for ``cusum`` with 50,000
reference values, ``e^{-0.9 h}`` or so). So the rate is measured by simulation from the
reference profile, as the window tests' null laws are: streams are drawn from the
profile's shares, the real detector kernel runs on them against a reference *redrawn*
from those shares (``REDRAWS`` references of the profile's size, ``EVENTS`` events each),
at a grid of thresholds side by side, and ``log rate(h) = a - b h`` is fitted through the
largest thresholds that saw ``MIN_ALARMS`` alarms (``b`` at most 1). That grid cannot
reach the thresholds a budget needs, where the reference's error dominates ``cusum``: a
score mean off by :math:`\delta \sim N(0, 1/n)` turns the location side's rate into
:math:`e^{a - b h (1 - \delta / k)}`, whose mean over references is
:math:`e^{a - b h + q h^2}`, :math:`q = 1 / (2 k^2 n)` (``k = K_LOCATION``, ``b = 1``), so
``h`` solves

.. math:: a - b h + q h^2 = -\log \text{ARL}_{\text{target}}

(``q = 0`` for ``bin_cusum``, whose short memory keeps the error from building up).
``method`` says which applied: ``simulated``; ``lorden`` (too few alarms to fit: the bound
alone, ``a = 0, b = 1``); ``reference-limited`` (no ``h`` meets the target with this
reference: the ``h`` of the lowest rate; build the profile from more events). The
verification over 20 million stationary events drawn from the true law, against a
reference sampled from it, is ``benchmarks/detection/verify_budget.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from monitor.stats.profile import ReferenceProfile
from monitor.stats.sequential import (
    EWMA_WEIGHT,
    K_LOCATION,
    MIXTURE,
    SEQUENTIAL_TESTS,
    SIDES,
    SequentialPlan,
    build_plan,
    run_detectors,
)

#: Thresholds simulated side by side, and the alarms one needs to be read.
GRID = (0.5, 1.0, 2.0, 3.0, 4.5, 6.0, 7.5, 9.0, 11.0)
MIN_ALARMS = 100
#: Simulated events per reference redraw, and redraws, per feature and test.
EVENTS = 150_000
REDRAWS = 4
#: Part of the detector set-up the stored thresholds depend on (a change recalibrates).
PARAMETERS = (
    "k=0.05/0.125/0.25;tail=0.15;mixture=0.5;ewma=0.005;ref-error;eps=1e-4;grid=0.5..11;"
    "events=150000x4"
)


@dataclass(frozen=True)
class SequentialThreshold:
    """The threshold of one sequential test of one feature, and how it was found."""

    test: str
    h: float
    arl_events: float  # the target average run length, in non-missing events
    intercept: float  # a in log(alarms per event) = a - b h, by simulation
    slope: float  # b
    method: str  # "simulated" or "lorden" (a = 0, b = 1: the bound alone)

    def to_json(self) -> dict[str, Any]:
        return {
            "test": self.test, "h": self.h, "arl_events": self.arl_events,
            "intercept": self.intercept, "slope": self.slope, "method": self.method,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SequentialThreshold:
        return cls(
            test=str(data["test"]), h=float(data["h"]), arl_events=float(data["arl_events"]),
            intercept=float(data["intercept"]), slope=float(data["slope"]),
            method=str(data["method"]),
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


def _redrawn(profile: ReferenceProfile, name: str, rng: np.random.Generator) -> ReferenceProfile:
    """The profile with feature ``name``'s counts redrawn: a reference of the same size
    sampled from the profile's shares (the detector's reference is a sample too)."""
    f = profile.features[name]
    counts = np.asarray(f.counts, np.int64)
    total = int(counts.sum())
    redrawn = rng.multinomial(total, counts / total) if total > 0 else counts
    return replace(profile, features={name: replace(f, counts=redrawn.astype(counts.dtype))})


def simulated_rates(
    profile: ReferenceProfile, name: str, test: int, events: int, redraws: int, seed: int
) -> np.ndarray:
    """Alarms per event of feature ``name``'s ``test`` (0 cusum, 1 bin_cusum) at each
    ``GRID`` threshold: streams drawn from the profile's shares, each against a detector
    built on a redrawn reference, averaged over ``redraws`` references."""
    rng = np.random.default_rng(seed)
    f = profile.features[name]
    counts = np.asarray(f.counts, np.float64)
    p = counts / counts.sum() if counts.sum() > 0 else np.full(counts.size, 1.0 / counts.size)
    g = len(GRID)
    total = np.zeros(g, np.int64)
    chunk = 8192
    alarms = np.empty((2 * g * chunk, 4), np.int64)
    tests = {name: [SEQUENTIAL_TESTS[test]]}
    for _ in range(redraws):
        plan = build_plan(_redrawn(profile, name, rng), tests, {})
        v = _virtual(plan, 0, test)
        drawn = rng.choice(p.size, size=events, p=p).astype(np.int32)
        stats = np.zeros((g, SIDES + 1))
        recent = np.array(v.reference, copy=True)
        scale = np.ones(g)
        for start in range(0, events, chunk):
            part = np.ascontiguousarray(
                np.broadcast_to(drawn[start : start + chunk], (g, min(chunk, events - start)))
            )
            n = run_detectors(
                part, v.increments, v.reference, v.cusum, v.bins, v.h, MIXTURE, EWMA_WEIGHT,
                stats, recent, scale, alarms,
            )  # fmt: skip
            total += np.bincount(alarms[:n, 1], minlength=g)
    return total / float(events * redraws)


def fit_rates(rates: np.ndarray, events: int) -> tuple[float, float] | None:
    """``(a, b)`` of ``log rate(h) = a - b h`` through the largest grid thresholds that saw
    ``MIN_ALARMS`` alarms (``events``: the simulated events behind ``rates``); ``b`` at
    most 1, the slope of a matched reference (Lorden). ``None``: too few alarms."""
    usable = [j for j in range(len(GRID)) if rates[j] * events >= MIN_ALARMS]
    if not usable:
        return None
    top = usable[-3:]
    h = np.array([GRID[j] for j in top])
    y = np.log([rates[j] for j in top])
    b = 1.0 if len(top) < 2 else min(1.0, float(-np.polyfit(h, y, 1)[0]))
    a = float(y[-1] + b * h[-1])
    return a, b


def solve_threshold(a: float, b: float, q: float, log_target: float) -> tuple[float, bool]:
    """The ``h`` with ``a - b h + q h^2 = -log_target`` (the smaller root), and whether the
    reference is too small for the target: then the ``h`` where the rate is least."""
    if q <= 0:
        return (a + log_target) / b, False
    disc = b * b - 4.0 * q * (a + log_target)
    if disc < 0:
        return b / (2.0 * q), True
    return (b - math.sqrt(disc)) / (2.0 * q), False


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
        mine: dict[str, SequentialThreshold] = {}
        for test, on in ((0, plan.cusum[i]), (1, plan.bins[i])):
            if not on:
                continue
            rates = simulated_rates(profile, name, test, events, REDRAWS, seed + 7919 * i + test)
            fit = fit_rates(rates, events * REDRAWS)
            a, b = fit if fit is not None else (0.0, 1.0)  # the bound alone
            method = "simulated" if fit is not None else "lorden"
            # cusum: the reference's sampling error of the score means (variance 1 / n)
            q = 1.0 / (2.0 * K_LOCATION**2 * max(f.n, 1)) if test == 0 else 0.0
            h, limited = solve_threshold(a, b, q, math.log(target))
            mine[SEQUENTIAL_TESTS[test]] = SequentialThreshold(
                test=SEQUENTIAL_TESTS[test], h=max(h, GRID[0]), arl_events=target,
                intercept=a, slope=b, method="reference-limited" if limited else method,
            )  # fmt: skip
        if mine:
            out[name] = mine
    return out
