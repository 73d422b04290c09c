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
``cusum``'s sides differ here: the slow location pair (``K_LOCATION``) carries by far the
largest error but rises rarely (its ``a`` is about 2.7 below the others'), so it is
simulated apart from the other sides (two groups in one kernel run, ``SLOW_SIDES`` and
``OTHER_SIDES``), each group gets its own ``a, b`` and the ``q`` of its smallest reference
value (``K_LOCATION``; ``K_SCALE``), and ``h`` solves
:math:`\sum_i e^{a_i - b_i h + q_i h^2} = 1 / \text{ARL}_{\text{target}}` (an alarm of
either restarts both, so the sum bounds the rate): lumped, every side paid the slow pair's
error, about 1.2 more ``h`` at the thresholds budgets give.
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
    K_SCALE,
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
#: cusum's sides calibrated apart: the slow location pair (``K_LOCATION``) and the rest
#: (whose smallest reference value is ``K_SCALE``).
SLOW_SIDES = (0, 1)
OTHER_SIDES = tuple(range(2, SIDES))
#: Part of the detector set-up the stored thresholds depend on (a change recalibrates).
PARAMETERS = (
    "k=0.05/0.125/0.25;tail=0.15;mixture=0.5;ewma=0.005;ref-error;slow-apart;eps=1e-4;"
    "grid=0.5..11;"
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
    #: cusum: (a, b) of its slow location pair, fitted apart (``intercept``/``slope`` are
    #: then the other sides')
    slow: tuple[float, float] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "test": self.test, "h": self.h, "arl_events": self.arl_events,
            "intercept": self.intercept, "slope": self.slope, "method": self.method,
        }  # fmt: skip
        if self.slow is not None:
            out["slow"] = list(self.slow)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SequentialThreshold:
        return cls(
            test=str(data["test"]), h=float(data["h"]), arl_events=float(data["arl_events"]),
            intercept=float(data["intercept"]), slope=float(data["slope"]),
            method=str(data["method"]),
            slow=(float(data["slow"][0]), float(data["slow"][1])) if "slow" in data else None,
        )  # fmt: skip


def _virtual(
    plan: SequentialPlan, i: int, test: int, groups: Sequence[Sequence[int]]
) -> SequentialPlan:
    """Feature ``i``'s ``test`` (0 cusum, 1 bin_cusum) copied once per grid threshold and
    cusum side group (only the group's sides can rise: the others never leave 0)."""
    g = len(GRID)
    n = g * len(groups)
    cusum = np.full(n, test == 0)
    h = np.full((n, 2), np.inf)
    h[:, test] = np.tile(GRID, len(groups))
    increments = np.zeros((n, SIDES, plan.reference.shape[1]))
    if i < plan.n_numeric:
        for j, group in enumerate(groups):
            mine = increments[j * g : (j + 1) * g]
            mine[:] = -1.0
            mine[:, list(group)] = plan.increments[i, list(group)]
    return SequentialPlan(
        names=tuple(f"{i}@{j}@{x}" for j in range(len(groups)) for x in GRID), n_numeric=n,
        edges=np.zeros((n, 1)), n_cells=np.repeat(plan.n_cells[i : i + 1], n),
        increments=increments, reference=np.repeat(plan.reference[i : i + 1], n, axis=0),
        cusum=cusum, bins=np.full(n, test == 1), h=h,
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
    profile: ReferenceProfile,
    name: str,
    test: int,
    events: int,
    redraws: int,
    seed: int,
    groups: Sequence[Sequence[int]] = (tuple(range(SIDES)),),
) -> np.ndarray:
    """Alarms per event of feature ``name``'s ``test`` (0 cusum, 1 bin_cusum) at each
    ``GRID`` threshold: streams drawn from the profile's shares, each against a detector
    built on a redrawn reference, averaged over ``redraws`` references. For cusum, one row
    per group of ``groups`` (its sides alone; one run of the kernel for all); 1-D for the
    default group of every side (and for bin_cusum)."""
    rng = np.random.default_rng(seed)
    f = profile.features[name]
    counts = np.asarray(f.counts, np.float64)
    p = counts / counts.sum() if counts.sum() > 0 else np.full(counts.size, 1.0 / counts.size)
    groups = groups if test == 0 else (tuple(range(SIDES)),)
    n = len(GRID) * len(groups)
    total = np.zeros(n, np.int64)
    chunk = 8192
    alarms = np.empty((2 * n * chunk, 4), np.int64)
    tests = {name: [SEQUENTIAL_TESTS[test]]}
    for _ in range(redraws):
        plan = build_plan(_redrawn(profile, name, rng), tests, {})
        v = _virtual(plan, 0, test, groups)
        drawn = rng.choice(p.size, size=events, p=p).astype(np.int32)
        stats = np.zeros((n, SIDES + 1))
        recent = np.array(v.reference, copy=True)
        scale = np.ones(n)
        for start in range(0, events, chunk):
            part = np.ascontiguousarray(
                np.broadcast_to(drawn[start : start + chunk], (n, min(chunk, events - start)))
            )
            k = run_detectors(
                part, v.increments, v.reference, v.cusum, v.bins, v.h, MIXTURE, EWMA_WEIGHT,
                stats, recent, scale, alarms,
            )  # fmt: skip
            total += np.bincount(alarms[:k, 1], minlength=n)
    rates = (total / float(events * redraws)).reshape(len(groups), len(GRID))
    return rates[0] if len(groups) == 1 else rates


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


def solve_sum(parts: Sequence[tuple[float, float, float]], log_target: float) -> tuple[float, bool]:
    """The ``h`` where the summed rates :math:`\\sum_i e^{a_i - b_i h + q_i h^2}` of
    ``parts`` (``(a, b, q)`` each) fall to ``e^{-log_target}`` (bisection: the sum falls
    while every part does), and whether no ``h`` reaches it: then the ``h`` up to which
    every part falls (the lowest rate there is, as :func:`solve_threshold`)."""

    def log_rate(h: float) -> float:
        terms = [a - b * h + q * h * h for a, b, q in parts]
        top = max(terms)
        return top + math.log(sum(math.exp(t - top) for t in terms))

    end = min((b / (2.0 * q) if q > 0 else math.inf) for _, b, q in parts)
    lo = 0.0
    hi = end if math.isfinite(end) else 1.0
    while not math.isfinite(end) and log_rate(hi) > -log_target:
        hi *= 2.0
    if log_rate(hi) > -log_target:
        return hi, True
    if log_rate(lo) <= -log_target:
        return lo, False
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if log_rate(mid) > -log_target:
            lo = mid
        else:
            hi = mid
    return hi, False


def _cusum_threshold(
    profile: ReferenceProfile, name: str, target: float, seed: int, events: int, n: int
) -> SequentialThreshold:
    """cusum's threshold: the slow location pair and the other sides are simulated apart
    and their rates summed (an alarm of either restarts both, so the sum bounds the rate),
    each with the reference error of its smallest reference value (``q = 1 / (2 k^2 n)``):
    the slow pair's error is the largest by far, but its intercept is low, so lumping the
    sides together charged every side the slow pair's error."""
    rates = simulated_rates(profile, name, 0, events, REDRAWS, seed, (SLOW_SIDES, OTHER_SIDES))
    parts: list[tuple[float, float, float]] = []
    fitted = True
    for group_rates, k in zip(rates, (K_LOCATION, K_SCALE), strict=True):
        fit = fit_rates(group_rates, events * REDRAWS)
        fitted = fitted and fit is not None
        a, b = fit if fit is not None else (0.0, 1.0)  # the bound alone
        parts.append((a, b, 1.0 / (2.0 * k * k * n)))
    h, limited = solve_sum(parts, math.log(target))
    return SequentialThreshold(
        test="cusum", h=h, arl_events=target, intercept=parts[1][0], slope=parts[1][1],
        method="reference-limited" if limited else "simulated" if fitted else "lorden",
        slow=(parts[0][0], parts[0][1]),
    )  # fmt: skip


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
            seed_i = seed + 7919 * i + test
            if test == 1:
                rates = simulated_rates(profile, name, test, events, REDRAWS, seed_i)
                fit = fit_rates(rates, events * REDRAWS)
                a, b = fit if fit is not None else (0.0, 1.0)  # the bound alone
                h, _ = solve_threshold(a, b, 0.0, math.log(target))
                found = SequentialThreshold(
                    test="bin_cusum", h=h, arl_events=target, intercept=a, slope=b,
                    method="simulated" if fit is not None else "lorden",
                )  # fmt: skip
            else:
                found = _cusum_threshold(profile, name, target, seed_i, events, max(f.n, 1))
            mine[found.test] = replace(found, h=max(found.h, GRID[0]))
        if mine:
            out[name] = mine
    return out
