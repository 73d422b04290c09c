r"""Thresholds of the sequential detectors from a false-alarm budget.

A detector with threshold ``h`` raises, under the reference, one false alarm every
``ARL(h)`` events on average (the average run length; detectors re-arm after an alarm,
so alarms are a renewal process). A budget of ``B`` false alarms a month at ``R`` events a
month is split over the model's checks (every window check and every sequential test of
every feature) by test family: each check of family ``f`` gets :math:`B w_f / W`, ``W``
the sum of the weights of all checks (``alert.budget_weights``,
:mod:`monitor.stats.budget_split`; the default gives a ``bin_cusum`` check 0.3 of a
``cusum`` or window check's share). Each detector is then asked for

.. math:: \text{ARL} \ge \frac{R\,(1 - \text{missing share})}{B w_f / W}

non-missing events, a number far beyond simulation (around :math:`10^{11}` for a month of
1,000 events a second). Every increment is a log-likelihood ratio
(:mod:`monitor.stats.sequential`), so against the true law :math:`\text{ARL}(h) \ge e^h`
(Lorden, 1971) and the false-alarm rate falls as :math:`c\,e^{-h}` for large ``h``
(Siegmund, 1985, ch. X). But the detector's reference is a sample, not the true law, which
makes the rate fall more slowly. So the rate is measured by simulation from the reference
profile, as the window tests' null laws are: streams are drawn from the profile's shares,
the real detector kernel runs on them against a reference *redrawn* from those shares
(``REDRAWS`` references of the profile's size, ``EVENTS`` events each), at a grid of
thresholds side by side, and ``log rate(h) = a - b h`` is fitted through the largest
thresholds that saw ``MIN_ALARMS`` alarms (``b`` at most 1; the largest such threshold is
the fit's ``top``). That grid cannot reach the thresholds a budget needs, and beyond it the
reference's error is modelled, per test:

* ``cusum``: a score mean off by :math:`\delta \sim N(0, 1/n)` turns the location side's
  rate into :math:`e^{a - b h (1 - \delta / k)}`, whose mean over references is
  :math:`e^{a - b h + q h^2}`, :math:`q = 1 / (2 k^2 n)` (``k = K_LOCATION``), so ``h``
  solves :math:`a - b h + q h^2 = -\log \text{ARL}_{\text{target}}`.
* ``bin_cusum``: its alternative leans towards the recent data, which follow the stream's
  law ``p``, not the reference :math:`\tilde p`; then :math:`E[e^X] \approx 1 + \lambda
  \chi^2(p, \tilde p)` per event instead of 1, and the rate falls as :math:`e^{-b h (1 -
  \lambda \chi^2 / D)}`, ``D`` the alternative's information per event (:math:`E[X e^X]`,
  by a short simulation of the recent data's average; about :math:`\lambda^2 w (K - 1) / 4`
  for ``K`` cells and weight ``w``, so the relative loss of slope, near
  :math:`4 / (\lambda w n)`, is 3 % for 50,000 reference events whatever ``K``).
  :math:`\chi^2` has a fixed part, the shares floored at ``EPSILON`` where the reference saw
  nothing (the stream puts no mass there: for a categorical feature's empty
  ``__other__``/``__unseen__`` cells this alone costs more slope than the sampling error),
  and the sampling error, :math:`\chi^2_{K-1} / n`, averaged over references in closed form
  (:class:`BinReferenceError`). The fit holds up to ``top``; beyond it the log rate gains
  this excess over its value at ``top``, and ``h`` solves the same equation numerically.
  (Without this term, the fit's slope of 1 carried to ``h`` = 10-12, ``bin_cusum`` raised
  1.5x its share on continuous columns and 3x on a categorical one.)

``method`` says which applied: ``simulated``; ``lorden`` (too few alarms to fit: the bound
alone, ``a = 0, b = 1``); ``reference-limited`` (no ``h`` meets the target with this
reference: the ``h`` of the lowest rate; build the profile from more events). The
verification over 20 million stationary events drawn from the true law, against a
reference sampled from it, alarms by family against each family's share, is
``benchmarks/detection/verify_budget.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np

from monitor.stats.profile import ReferenceProfile
from monitor.stats.sequential import (
    EPSILON,
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
#: Simulated cell-events behind ``bin_cusum``'s information per event (all cells together).
INFO_CELL_EVENTS = 500_000
#: Part of the detector set-up the stored thresholds depend on (a change recalibrates).
PARAMETERS = (
    "k=0.05/0.125/0.25;tail=0.15;mixture=0.5;ewma=0.005;ref-error;bin-ref-error;eps=1e-4;"
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


class RateFit(NamedTuple):
    """``log rate(h) = intercept - slope h`` through the grid, up to threshold ``top``."""

    intercept: float
    slope: float
    top: float  # the largest grid threshold the fit used


def fit_rates(rates: np.ndarray, events: int) -> RateFit | None:
    """The fit of ``log rate(h) = a - b h`` through the largest grid thresholds that saw
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
    return RateFit(a, b, float(h[-1]))


def solve_threshold(a: float, b: float, q: float, log_target: float) -> tuple[float, bool]:
    """The ``h`` with ``a - b h + q h^2 = -log_target`` (the smaller root), and whether the
    reference is too small for the target: then the ``h`` where the rate is least."""
    if q <= 0:
        return (a + log_target) / b, False
    disc = b * b - 4.0 * q * (a + log_target)
    if disc < 0:
        return b / (2.0 * q), True
    return (b - math.sqrt(disc)) / (2.0 * q), False


@dataclass(frozen=True)
class BinReferenceError:
    r"""What the reference's error does to ``bin_cusum``'s false-alarm rate.

    Against a reference :math:`\tilde p` that is not the stream's law ``p``, the increments
    lose the likelihood-ratio property: :math:`E[e^X] \approx 1 + \lambda \chi^2(p,
    \tilde p)` per event (the alternative's recent data follow ``p``), so the rate falls as
    :math:`e^{-b h (1 - \lambda \chi^2 / D)}`, where ``D`` is the alternative's
    information per event, :math:`E[X e^X]`. :math:`\chi^2` has a fixed part, ``floor``
    (the shares floored at ``EPSILON`` where the reference saw nothing: mass the stream
    never puts there), and the reference's sampling error, :math:`\chi^2_{\nu} / n`
    (``nu`` live cells less one), whose mean over references of
    :math:`e^{b h \lambda \chi^2 / D}` is :math:`(1 - 2 b h \lambda / (n D))^{-\nu / 2}`.
    """

    floor: float
    nu: int
    n: int
    information: float  # D

    def excess(self, h: float, b: float) -> float:
        """The log rate this error adds at threshold ``h`` (``inf``: no ``h`` that large
        keeps the rate finite with this reference)."""
        u = b * MIXTURE / max(self.information, 1e-300)
        x = 2.0 * u * h / max(self.n, 1)
        if x >= 1.0:
            return math.inf
        return u * h * self.floor - 0.5 * self.nu * math.log1p(-x)

    def solve(self, fit: RateFit, log_target: float) -> tuple[float, bool]:
        """The smallest ``h`` whose rate, the fit up to ``fit.top`` and this error's excess
        beyond it, is ``e^-log_target``; and whether no ``h`` reaches it (then the ``h`` of
        the lowest rate)."""
        a, b, top = fit
        plain = (a + log_target) / b
        if plain <= top:
            return plain, False
        base = self.excess(top, b)

        def gap(h: float) -> float:  # log rate(h) + log_target, convex in h
            return a - b * h + self.excess(h, b) - base + log_target

        lo, hi = top, top + 1.0
        while gap(hi) < gap(lo) and hi < 1e6:  # walk to past the lowest rate
            lo, hi = hi, top + 2.0 * (hi - top)
        # the lowest rate lies in [top, hi]: golden-section search, then bisection
        left, right = top, hi
        for _ in range(100):
            m1, m2 = left + (right - left) / 3.0, right - (right - left) / 3.0
            if gap(m1) <= gap(m2):
                right = m2
            else:
                left = m1
        lowest = 0.5 * (left + right)
        if gap(lowest) > 0:
            return lowest, True
        lo, hi = top, lowest
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            if gap(mid) > 0:
                lo = mid
            else:
                hi = mid
        return hi, False


def _average(hits: np.ndarray, start: np.ndarray) -> np.ndarray:
    """The recent data's average (``EWMA_WEIGHT``) along each row of ``hits``, from
    ``start``: :math:`r_j = k^j (r_0 + \\sum_{s \\le j} w x_s k^{-s})`, ``k = 1 - w``, in
    blocks short enough that :math:`k^{-s}` stays small (no scipy.signal import)."""
    keep = 1.0 - EWMA_WEIGHT
    out = np.empty_like(hits)
    previous = np.asarray(start, np.float64)
    block = 2048
    for at in range(0, hits.shape[1], block):
        x = hits[:, at : at + block]
        j = np.arange(1, x.shape[1] + 1)
        total = np.cumsum(EWMA_WEIGHT * x * keep ** (-j), axis=1)
        out[:, at : at + x.shape[1]] = keep**j * (previous[:, None] + total)
        previous = out[:, at + x.shape[1] - 1]
    return out


def bin_reference_error(counts: np.ndarray, n: int, seed: int) -> BinReferenceError:
    """:class:`BinReferenceError` of a feature's reference ``counts`` (``n`` values): the
    information ``D`` by simulation of the recent data's average, cell by cell (``D`` is a
    sum over cells of their marginal means), seeded."""
    counts = np.asarray(counts, np.float64)
    k = counts.size
    p = counts / counts.sum() if counts.sum() > 0 else np.full(k, 1.0 / k)
    floored = np.maximum(p, EPSILON)
    ref = floored / floored.sum()
    live = np.flatnonzero(p > 0)
    floor = float(np.sum(p[live] ** 2 / ref[live]) - 1.0)
    rng = np.random.default_rng(seed)
    events = int(min(max(INFO_CELL_EVENTS // max(live.size, 1), 4096), 65536))
    burn = int(4 / EWMA_WEIGHT)
    info = 0.0
    for start in range(0, live.size, 256):
        cells = live[start : start + 256]
        pc = p[cells][:, None]
        hits = (rng.random((cells.size, events + burn)) < pc).astype(np.float64)
        recent = _average(hits, pc[:, 0])
        ratio = (1.0 - MIXTURE) + MIXTURE * recent[:, burn:] / ref[cells][:, None]
        # E[ratio log ratio] = E[ratio log ratio - ratio + 1] + E[ratio] - 1: the first part
        # (about half the squared deviation) by simulation, the mean ratio exactly (the
        # average's mean is p): far less noise than the plain mean of ratio log ratio.
        curved = np.mean(ratio * np.log(ratio) - ratio + 1.0, axis=1)
        mean = (1.0 - MIXTURE) + MIXTURE * p[cells] / ref[cells]
        info += float(np.sum(pc[:, 0] * (curved + mean - 1.0)))
    return BinReferenceError(floor=max(floor, 0.0), nu=max(live.size - 1, 0), n=n,
                             information=info)  # fmt: skip


def calibrate_sequential(
    profile: ReferenceProfile,
    tests: Mapping[str, Sequence[str]],
    *,
    alarms_per_month: float | Mapping[str, float],
    events_per_month: float,
    events: int = EVENTS,
    seed: int = 0,
) -> dict[str, dict[str, SequentialThreshold]]:
    """Per feature and sequential test, the threshold for ``alarms_per_month`` false
    alarms a month (one check's share of the budget: one for all, or test -> its share,
    :class:`monitor.stats.budget_split.BudgetSplit`) at ``events_per_month`` events."""
    shares = (
        dict.fromkeys(SEQUENTIAL_TESTS, float(alarms_per_month))
        if isinstance(alarms_per_month, int | float)
        else dict(alarms_per_month)
    )
    plan = build_plan(profile, tests, {})
    out: dict[str, dict[str, SequentialThreshold]] = {}
    for i, name in enumerate(plan.names):
        f = profile.features[name]
        present = f.n / (f.n + f.missing) if f.n + f.missing else 1.0
        mine: dict[str, SequentialThreshold] = {}
        for test, on in ((0, plan.cusum[i]), (1, plan.bins[i])):
            if not on:
                continue
            target = max(events_per_month * present / shares[SEQUENTIAL_TESTS[test]], 1.0)
            seed_i = seed + 7919 * i + test
            rates = simulated_rates(profile, name, test, events, REDRAWS, seed_i)
            fit = fit_rates(rates, events * REDRAWS)
            if fit is None:  # the bound alone
                fit, method = RateFit(0.0, 1.0, GRID[0]), "lorden"
            else:
                method = "simulated"
            a, b = fit.intercept, fit.slope
            if test == 0:  # the reference's sampling error of the score means (variance 1/n)
                q = 1.0 / (2.0 * K_LOCATION**2 * max(f.n, 1))
                h, limited = solve_threshold(a, b, q, math.log(target))
            else:  # the reference's error of the shares (BinReferenceError)
                error = bin_reference_error(np.asarray(f.counts), int(f.n), seed_i)
                h, limited = error.solve(fit, math.log(target))
            mine[SEQUENTIAL_TESTS[test]] = SequentialThreshold(
                test=SEQUENTIAL_TESTS[test], h=max(h, GRID[0]), arl_events=target,
                intercept=a, slope=b, method="reference-limited" if limited else method,
            )  # fmt: skip
        if mine:
            out[name] = mine
    return out
