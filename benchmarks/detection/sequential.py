"""Sequential tests against River's PageHinkley and ADWIN, at equal measured false alarms.

    python benchmarks/detection/sequential.py [--stationary-events N] [--seeds K]
        [--max-delay N] [--held-out-events N] [--weights CUSUM BIN_CUSUM]

Needs the ``bench`` extra (``pip install '.[bench]'``: River). Five columns, each with a
50,000-row reference: Gaussian, Student t(3), gamma(2), Poisson(3) and a categorical of
five categories (shares 0.4, 0.3, 0.15, 0.1, 0.05). Bounded: the stationary run is
``--stationary-events`` rows (default 5,000,000), each change ``--seeds`` streams (default
25) of 5,000 reference rows then at most ``--max-delay`` changed rows (default 200,000).

* driftmon: ``cusum`` on the numeric columns and ``bin_cusum`` on all five, thresholds from
  a budget (``false_alarms_per_month`` at 1,000 events/s) split as the product splits it
  over 29 checks (the 20 window checks of these columns' default tests plus the 9
  sequential ones) with the product's default weights per test family
  (:data:`monitor.stats.budget_split.DEFAULT_WEIGHTS`; ``--weights`` to try others), by
  :func:`monitor.stats.sequential_calibration.calibrate_sequential`. Settings: the
  strict default budget of 1 a month, which never sees the stationary stream; the budget
  tuned *on the stationary stream* the way River is: the loosest of 1, 3, 10, 30,
  ... a month without a false alarm there (a lower threshold only crosses earlier, so the
  first budget with an alarm ends the search); and *per column*, as River is tuned: each
  column's loosest budget of the finer grid 1, 2, 5, 10, 20, 50, ... a month without a
  false alarm in that column there (its thresholds calibrated at that budget); and at
  ADWIN's measured rate (below).
* River ``PageHinkley`` (defaults but the threshold) and ``ADWIN`` (defaults but delta),
  one detector per column fed the values standardised by the reference (categories as
  their codes), tuned *on the stationary stream itself* to zero false alarms: PageHinkley's
  threshold per column just above the largest statistic it reached there (the smallest
  threshold without an alarm), ADWIN's delta per column the largest of 1e-3, 1e-5, ...,
  1e-300 without an alarm. In-sample tuning favours River.

False alarms: alarms on the stationary stream, with the two-sided 95 % Poisson (Garwood)
upper bound per million events; zero alarms in 5M bounds the rate by 0.74 per million
whichever detector, so "equal measured rate" means equal up to that bound. Tuning on the
stream itself puts each tuned detector just short of its first alarm there (a rate of
about one alarm per stream length, give or take a lot), so the tuned detectors also run
over a *held-out* stationary stream of ``--held-out-events`` rows (default 100,000,000;
a different seed), where their rates are measured rather than bounded (PageHinkley, the
slowest to run and far behind on delay, is left out there). One more driftmon setting is
read off that stream: **at ADWIN's rate**, per column the loosest budget of
``MATCH_BUDGETS`` whose held-out false alarms there are no more than ADWIN's (chosen on
the held-out stream, as River's settings are chosen on the tuning stream). Delay: events
from the change to the first alarm of the changed column's detector; a stream without an
alarm within ``--max-delay`` counts as ``> max-delay``, and the median is ``>`` when more
than half are. CPU: process time of the detectors' work per million events (all five
columns).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import stats

HERE = Path(__file__).resolve().parent
try:
    import monitor  # noqa: F401
except ImportError:
    sys.path.insert(0, str(HERE.parents[1]))

from river import drift  # noqa: E402

from monitor.stats import FeatureKind, build_profile  # noqa: E402
from monitor.stats.budget_split import DEFAULT_WEIGHTS, BudgetSplit  # noqa: E402
from monitor.stats.calibration import SECONDS_PER_MONTH  # noqa: E402
from monitor.stats.profile import CategoricalProfile  # noqa: E402
from monitor.stats.sequential import SequentialDetectors, build_plan  # noqa: E402
from monitor.stats.sequential_calibration import calibrate_sequential  # noqa: E402

REFERENCE = 50_000
CATEGORIES = ["a", "b", "c", "d", "e"]
SHARES = np.array([0.4, 0.3, 0.15, 0.1, 0.05])
NUMERIC = ("normal", "t3", "gamma", "poisson")
COLUMNS = (*NUMERIC, "category")
CHECKS = 29  # 4 numeric x (psi, ks, js, missing) + (psi, js, chi2, missing) + 9 sequential
WINDOW_CHECKS = 20
SEQUENTIAL = {"cusum": len(NUMERIC), "bin_cusum": len(COLUMNS)}
RATE = 1_000.0
LEAD = 5_000
DELTAS = tuple(10.0**-e for e in (3, 5, 10, 20, 50, 100, 200, 300))
BUDGETS = tuple(m * 10.0**e for e in range(8) for m in (1.0, 3.0))  # alarms a month
FINE_BUDGETS = tuple(m * 10.0**e for e in range(8) for m in (1.0, 2.0, 5.0))
#: Budgets run over the held-out stream to find driftmon's setting at ADWIN's rate there.
MATCH_BUDGETS = (
    300.0, 1_000.0, 2_000.0, 3_000.0, 5_000.0, 7_000.0, 10_000.0, 14_000.0, 20_000.0, 30_000.0,
    50_000.0,
)  # fmt: skip


def garwood(k: int) -> tuple[float, float]:
    """Two-sided 95 % Poisson interval of a count ``k``."""
    lo = 0.0 if k == 0 else float(stats.chi2.ppf(0.025, 2 * k) / 2)
    return lo, float(stats.chi2.ppf(0.975, 2 * k + 2) / 2)


def upper_per_million(alarms: int, events: int) -> float:
    """Two-sided 95 % (Garwood) upper bound of a Poisson rate, per million events."""
    return float(stats.chi2.ppf(0.975, 2 * alarms + 2) / 2) / events * 1e6


def draw(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "normal": rng.normal(size=n),
        "t3": rng.standard_t(3, size=n),
        "gamma": rng.gamma(2.0, size=n),
        "poisson": rng.poisson(3.0, size=n).astype(float),
        "category": rng.choice(len(CATEGORIES), size=n, p=SHARES),
    }


def changes() -> dict[str, Callable[[np.random.Generator, dict[str, np.ndarray]], str]]:
    """Each change rewrites one column of the post-change rows; returns the column."""

    def mean(d: float) -> Callable[[np.random.Generator, dict[str, np.ndarray]], str]:
        def f(rng: np.random.Generator, cols: dict[str, np.ndarray]) -> str:
            cols["normal"] = cols["normal"] + d
            return "normal"

        return f

    def scale(s: float) -> Callable[[np.random.Generator, dict[str, np.ndarray]], str]:
        def f(rng: np.random.Generator, cols: dict[str, np.ndarray]) -> str:
            cols["normal"] = cols["normal"] * s
            return "normal"

        return f

    def mixture(rng: np.random.Generator, cols: dict[str, np.ndarray]) -> str:
        x = cols["normal"]
        hit = rng.random(x.size) < 0.10
        cols["normal"] = np.where(hit, rng.normal(2.0, 1.0, x.size), x)
        return "normal"

    def tail(rng: np.random.Generator, cols: dict[str, np.ndarray]) -> str:
        # same mean and variance, heavier tails: t(3) scaled to unit variance
        cols["normal"] = rng.standard_t(3, cols["normal"].size) / math.sqrt(3.0)
        return "normal"

    def categorical(rng: np.random.Generator, cols: dict[str, np.ndarray]) -> str:
        shares = np.array([0.35, 0.3, 0.15, 0.1, 0.1])  # 5 % moved to the rarest
        cols["category"] = rng.choice(len(CATEGORIES), size=cols["category"].size, p=shares)
        return "category"

    return {
        "mean +0.1 sd": mean(0.1), "mean +0.25 sd": mean(0.25), "mean +0.5 sd": mean(0.5),
        "scale x1.2": scale(1.2), "scale x1.4": scale(1.4),
        "10 % mixture at +2 sd": mixture, "heavier tail (t3, same sd)": tail,
        "categorical shares": categorical,
    }  # fmt: skip


class Driftmon:
    def __init__(self, profile, thresholds: dict[str, dict[str, float]]) -> None:
        tests = {c: (["cusum", "bin_cusum"] if c in NUMERIC else ["bin_cusum"]) for c in COLUMNS}
        self.profile = profile
        self.plan = build_plan(profile, tests, thresholds)
        self.category = profile.features["category"]

    def run(
        self, cols: dict[str, np.ndarray], detectors: SequentialDetectors | None = None
    ) -> list[tuple[int, str]]:
        """Alarms (row, column) over ``cols``: fresh detectors, or ``detectors`` going on."""
        detectors = detectors if detectors is not None else SequentialDetectors(self.plan)
        numeric = np.column_stack([cols[c] for c in NUMERIC])
        codes = cols["category"].reshape(-1, 1).astype(np.int64)  # codes = category order
        return [(a.row, a.feature) for a in detectors.run(numeric, codes)]


def standardise(profile_stats: dict[str, tuple[float, float]], col: str, x: np.ndarray) -> list:
    mean, sd = profile_stats[col]
    return ((x - mean) / sd).tolist()


def ph_max(values: list) -> float:
    """The largest PageHinkley statistic on ``values`` (threshold never reached)."""
    d = drift.PageHinkley(threshold=math.inf)
    top = 0.0
    for v in values:
        d.update(v)
        if d._x_mean.n >= d.min_instances:  # noqa: SLF001 - its own test statistic
            top = max(top, d._sum_increase - d._min_increase, d._max_decrease - d._sum_decrease)  # noqa: SLF001
    return top


def alarm_count(d: drift.base.DriftDetector, values: list) -> int:
    """Alarms of detector ``d`` over ``values`` (it goes on after each, as River's do)."""
    n = 0
    for v in values:
        d.update(v)
        n += d.drift_detected
    return n


def first_alarm(make: Callable[[], drift.base.DriftDetector], values: list, start: int = 0) -> int:
    """Index of the first alarm at or after ``start`` (-1: none)."""
    d = make()
    for i, v in enumerate(values):
        d.update(v)
        if d.drift_detected and i >= start:
            return i
    return -1


def adwin_delta(values: list) -> float:
    for delta in DELTAS:
        if first_alarm(lambda delta=delta: drift.ADWIN(delta=delta), values) < 0:
            return delta
    return 0.0


def candidate_h(ours: Driftmon, column: str) -> dict[str, float]:
    """Column ``column``'s thresholds in ``ours``' plan (test -> h)."""
    i = ours.plan.names.index(column)
    out = {"cusum": float(ours.plan.h[i, 0]), "bin_cusum": float(ours.plan.h[i, 1])}
    return {t: h for t, h in out.items() if math.isfinite(h)}


def tune_per_column(
    at_budget: Callable[[float], tuple[Driftmon, dict[str, dict[str, float]]]],
    strict: Driftmon,
    stationary: dict[str, np.ndarray],
) -> tuple[Driftmon, dict[str, float]]:
    """Each column's loosest budget of ``FINE_BUDGETS`` without a false alarm of its own on
    ``stationary`` (a column alarming at every budget keeps the strict thresholds), as
    River's detectors are tuned column by column."""
    budgets = dict.fromkeys(COLUMNS, 1.0)
    chosen = {c: candidate_h(strict, c) for c in COLUMNS}
    still = set(COLUMNS)
    for budget in FINE_BUDGETS[1:]:
        candidate, _ = at_budget(budget)
        seen = {f for _, f in candidate.run(stationary)}
        for c in still - seen:
            budgets[c] = budget
            chosen[c] = candidate_h(candidate, c)
        still -= seen
        if not still:
            break
    return Driftmon(candidate.profile, chosen), budgets


def held_out(
    events: int,
    ours: dict[str, Driftmon],
    moments: dict[str, tuple[float, float]],
    adwin: dict[str, float],
) -> dict[str, dict[str, int]]:
    """False alarms per column of each of ``ours`` and of the tuned ADWINs on a stationary
    stream of ``events`` rows none was tuned on (seed 2), one pass over it; every
    detector runs on after an alarm."""
    chunk = 2_000_000
    counts = {key: dict.fromkeys(COLUMNS, 0) for key in (*ours, "ADWIN")}
    detectors = {key: SequentialDetectors(tool.plan) for key, tool in ours.items()}
    made = {c: drift.ADWIN(delta=adwin[c]) for c in COLUMNS}
    hrng = np.random.default_rng(2)
    for start in range(0, events, chunk):
        part = draw(hrng, min(chunk, events - start))
        for key, tool in ours.items():
            for _, f in tool.run(part, detectors[key]):
                counts[key][f] += 1
        for c in COLUMNS:
            counts["ADWIN"][c] += alarm_count(made[c], standardise(moments, c, part[c]))
    return counts


def matched(
    counts: dict[str, dict[str, int]], at: dict[float, Driftmon]
) -> tuple[Driftmon, dict[str, float]]:
    """Per column, the loosest of the budgets ``at`` whose held-out false alarms there are
    no more than ADWIN's (the strictest when none is)."""
    budgets = sorted(at)
    chosen: dict[str, float] = {}
    for c in COLUMNS:
        fit = [b for b in budgets if counts[f"at {b:g}"][c] <= counts["ADWIN"][c]]
        chosen[c] = fit[-1] if fit else budgets[0]
    h = {c: candidate_h(at[chosen[c]], c) for c in COLUMNS}
    return Driftmon(at[budgets[0]].profile, h), chosen


def spread_cell(delays: list[float], cap: int) -> str:
    capped = np.minimum(np.array(delays), cap)
    mean = f"{'>= ' if np.isinf(delays).any() else ''}{capped.mean():,.0f}"
    p90 = np.percentile(capped, 90)
    return f"{mean} / {'> ' if p90 >= cap else ''}{p90:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stationary-events", type=int, default=5_000_000)
    parser.add_argument("--seeds", type=int, default=25)
    parser.add_argument("--max-delay", type=int, default=200_000)
    parser.add_argument("--held-out-events", type=int, default=100_000_000)
    parser.add_argument("--weights", type=float, nargs=2, default=None,
                        metavar=("CUSUM", "BIN_CUSUM"),
                        help="budget weights of the two tests (window weight 1)")  # fmt: skip
    args = parser.parse_args()
    split = (
        DEFAULT_WEIGHTS
        if args.weights is None
        else BudgetSplit(cusum=args.weights[0], bin_cusum=args.weights[1])
    )
    print(f"budget weights per check: {split.to_json()}")
    rng = np.random.default_rng(20261203)
    ref = draw(rng, REFERENCE)
    kinds = {c: FeatureKind.NUMERIC for c in NUMERIC} | {"category": FeatureKind.CATEGORICAL}
    ref_values = {c: ref[c] for c in NUMERIC} | {
        "category": [CATEGORIES[i] for i in ref["category"]]
    }
    profile = build_profile("bench", ref_values, kinds)
    category = profile.features["category"]
    assert isinstance(category, CategoricalProfile) and category.categories == tuple(CATEGORIES)
    moments = {c: (float(np.mean(ref[c])), float(np.std(ref[c]))) for c in COLUMNS}
    tests = {c: (["cusum", "bin_cusum"] if c in NUMERIC else ["bin_cusum"]) for c in COLUMNS}

    def at_budget(budget: float) -> tuple[Driftmon, dict[str, dict[str, float]]]:
        shares = split.sequential_shares(budget, WINDOW_CHECKS, SEQUENTIAL)
        found = calibrate_sequential(
            profile, tests, alarms_per_month=shares, events_per_month=RATE * SECONDS_PER_MONTH
        )
        hs = {c: {t: round(s.h, 2) for t, s in v.items()} for c, v in found.items()}
        return Driftmon(profile, {c: {t: s.h for t, s in v.items()} for c, v in found.items()}), hs

    t0 = time.process_time()
    strict, strict_h = at_budget(1.0)
    print(f"driftmon thresholds at 1/month (calibration {time.process_time() - t0:.1f} CPU s):")
    print("  ", strict_h)

    # ---- stationary: false alarms, CPU, tuning of driftmon's budget and River's
    n = args.stationary_events
    stationary = draw(np.random.default_rng(1), n)
    t0 = time.process_time()
    alarms = strict.run(stationary)
    cpu = time.process_time() - t0
    print(f"\nstationary {n:,} events: driftmon at 1/month {len(alarms)} false alarms (95 % "
          f"upper bound {upper_per_million(len(alarms), n):.2f} per million); detectors "
          f"{cpu / n * 1e6:.2f} CPU s per million events (5 columns)")  # fmt: skip
    tuned, tuned_budget = strict, 1.0
    t0 = time.process_time()
    for budget in BUDGETS[1:]:
        candidate, hs = at_budget(budget)
        seen = candidate.run(stationary)
        print(f"   budget {budget:,.0f}/month: {len(seen)} false alarms, thresholds {hs}")
        if seen:
            break
        tuned, tuned_budget = candidate, budget
    print(f"driftmon tuned to 0 false alarms on the same stream: budget {tuned_budget:,.0f}"
          f"/month (1 per {RATE * SECONDS_PER_MONTH / tuned_budget:,.0f} events); tuning "
          f"{time.process_time() - t0:.1f} CPU s")  # fmt: skip
    t0 = time.process_time()
    per_column, column_budget = tune_per_column(at_budget, strict, stationary)
    hs = {c: {t: round(h, 2) for t, h in candidate_h(per_column, c).items()} for c in COLUMNS}
    print(f"driftmon tuned per column: budgets {column_budget} a month, thresholds {hs} "
          f"(tuning {time.process_time() - t0:.1f} CPU s)")  # fmt: skip
    ph_threshold: dict[str, float] = {}
    adwin: dict[str, float] = {}
    river_cpu = {"ph": 0.0, "adwin": 0.0}
    for c in COLUMNS:
        values = standardise(moments, c, stationary[c])
        t0 = time.process_time()
        ph_threshold[c] = ph_max(values) * 1.000001
        river_cpu["ph"] += time.process_time() - t0
        t0 = time.process_time()
        adwin[c] = adwin_delta(values)
        river_cpu["adwin"] += time.process_time() - t0
    rounded = {c: round(v, 1) for c, v in ph_threshold.items()}
    print(f"River tuned to 0 false alarms on the same stream (95 % upper bound "
          f"{upper_per_million(0, n):.2f} per million): PageHinkley thresholds "
          f"{rounded}, ADWIN deltas {adwin}")  # fmt: skip
    print(f"River tuning CPU (incl. several ADWIN passes): {river_cpu}")

    # ---- held out: every tuned detector's false alarms on a stream none was tuned on, and
    # driftmon at ADWIN's measured rate there (a grid of budgets run on the same stream)
    held = args.held_out_events
    grid = {b: at_budget(b)[0] for b in MATCH_BUDGETS}
    counts = held_out(
        held,
        {f"driftmon {tuned_budget:,.0f}/month": tuned, "driftmon per column": per_column}
        | {f"at {b:g}": d for b, d in grid.items()},
        moments, adwin,
    )  # fmt: skip
    at_adwin, match_budget = matched(counts, grid)
    counts["driftmon at ADWIN's rate"] = {
        c: counts[f"at {match_budget[c]:g}"][c] for c in COLUMNS
    }  # fmt: skip
    print(f"\nheld-out stationary stream, {held:,} events (seed 2): false alarms per column "
          "(95 % interval)")  # fmt: skip
    print(f"| detector | {' | '.join(COLUMNS)} |\n|---|{'---:|' * len(COLUMNS)}")
    for key, row in counts.items():
        cells = [f"{k} ({garwood(k)[0]:.1f}-{garwood(k)[1]:.1f})" for k in row.values()]
        print(f"| {key} | {' | '.join(cells)} |", flush=True)
    hs = {c: {t: round(h, 2) for t, h in candidate_h(at_adwin, c).items()} for c in COLUMNS}
    print(f"driftmon at ADWIN's rate: budgets {match_budget} a month, thresholds {hs}")

    # ---- changes
    makers = {
        "driftmon 1/month": None,
        f"driftmon {tuned_budget:,.0f}/month": None,
        "driftmon per column": None,
        "driftmon at ADWIN's rate": None,
        "PageHinkley": lambda c: lambda: drift.PageHinkley(threshold=ph_threshold[c]),
        "ADWIN": lambda c: lambda: drift.ADWIN(delta=adwin[c]),
    }
    spread: dict[str, list[str]] = {k: [] for k in makers}
    print(f"\n| change | {' | '.join(makers)} |\n|---|{'---:|' * len(makers)}")
    for name, change in changes().items():
        delays: dict[str, list[float]] = {k: [] for k in makers}
        for seed in range(args.seeds):
            srng = np.random.default_rng(1000 + seed)
            before = draw(srng, LEAD)
            after = draw(srng, args.max_delay)
            col = change(srng, after)
            cols = {c: np.concatenate([before[c], after[c]]) for c in COLUMNS}
            settings = (strict, tuned, per_column, at_adwin)
            for key, ours in zip(list(makers)[:4], settings, strict=True):
                late = [r - LEAD for r, f in ours.run(cols) if f == col and r >= LEAD]
                delays[key].append(late[0] if late else math.inf)
            values = standardise(moments, col, cols[col])
            for tool in ("PageHinkley", "ADWIN"):
                at = first_alarm(makers[tool](col), values, LEAD)  # type: ignore[misc]
                delays[tool].append(at - LEAD if at >= 0 else math.inf)
        cells = []
        for tool in makers:
            median = statistics.median(delays[tool])
            cells.append(f"> {args.max_delay:,}" if math.isinf(median) else f"{median:,.0f}")
            spread[tool].append(spread_cell(delays[tool], args.max_delay))
        print(f"| {name} | {' | '.join(cells)} |", flush=True)
    # the median of a few seeds hides a long right tail: a detector that is often fast but
    # sometimes very late looks better by its median than its mean (Lorden bounds the mean)
    print(
        f"\nmean / 90th percentile of the same delays (misses count as {args.max_delay:,}, "
        "so a mean with misses is a lower bound, marked >=):"
    )
    print(f"| change | {' | '.join(makers)} |\n|---|{'---:|' * len(makers)}")
    for i, name in enumerate(changes()):
        print(f"| {name} | {' | '.join(spread[tool][i] for tool in makers)} |")


if __name__ == "__main__":
    main()
