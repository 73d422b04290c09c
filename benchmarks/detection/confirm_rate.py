"""False alarms of driftmon and ADWIN on fresh stationary streams of one column.

    python benchmarks/detection/confirm_rate.py [--budget B] [--bin-budget B] [--delta D]
        [--seeds S ...] [--events N] [--change-seeds K] [--weights CUSUM BIN_CUSUM]
        [--no-adwin] [--column normal|category]

``sequential.py`` chooses driftmon's setting "at ADWIN's rate" on its held-out stream, so
that stream cannot also confirm it. This runs the same two detectors of the Gaussian column
(its 50,000-row reference as there; driftmon's ``cusum`` and ``bin_cusum`` calibrated at
``--budget`` a month split over 29 checks as the product splits it, by the default weights
per test family or ``--weights``, at 1,000 events/s; ``bin_cusum`` at ``--bin-budget`` over
29 even shares when given; ``--no-adwin`` leaves ADWIN out, for a grid of driftmon
settings on the same streams; River's ADWIN at ``--delta`` on values standardised by the
reference) over
``--events`` stationary events (default 100,000,000) for each of ``--seeds`` (default 3 4
5 6; the held-out stream of ``sequential.py`` is seed 2 of a five-column draw), and prints
their false alarms with 95 % (Garwood) intervals; each detector runs on after an alarm.
``--column category`` does the same for the categorical column (``bin_cusum`` only; ADWIN
on its codes standardised by the reference, as in ``sequential.py``).
Then both detectors' median delays on the column's changes of ``sequential.py``
(its streams: seeds 1000 on, ``--change-seeds`` of them, default 25).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import stats

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
try:
    import monitor  # noqa: F401
except ImportError:
    sys.path.insert(0, str(HERE.parents[1]))

from river import drift  # noqa: E402
from sequential import (  # noqa: E402
    CATEGORIES,
    CHECKS,
    COLUMNS,
    LEAD,
    RATE,
    REFERENCE,
    SEQUENTIAL,
    SHARES,
    WINDOW_CHECKS,
    alarm_count,
    changes,
    draw,
    first_alarm,
    garwood,
)

from monitor.stats import FeatureKind, build_profile  # noqa: E402
from monitor.stats.budget_split import DEFAULT_WEIGHTS, BudgetSplit  # noqa: E402
from monitor.stats.calibration import SECONDS_PER_MONTH  # noqa: E402
from monitor.stats.sequential import (  # noqa: E402
    SequentialDetectors,
    SequentialPlan,
    build_plan,
)
from monitor.stats.sequential_calibration import calibrate_sequential  # noqa: E402

CHUNK = 2_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=10_000.0)
    parser.add_argument("--bin-budget", type=float, default=None)
    parser.add_argument("--delta", type=float, default=1e-3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5, 6])
    parser.add_argument("--change-seeds", type=int, default=25)
    parser.add_argument("--events", type=int, default=100_000_000)
    parser.add_argument("--weights", type=float, nargs=2, default=None,
                        metavar=("CUSUM", "BIN_CUSUM"))  # fmt: skip
    parser.add_argument("--no-adwin", action="store_true")
    parser.add_argument("--column", choices=("normal", "category"), default="normal")
    args = parser.parse_args()
    col = args.column
    split = (
        DEFAULT_WEIGHTS
        if args.weights is None
        else BudgetSplit(cusum=args.weights[0], bin_cusum=args.weights[1])
    )
    ref = draw(np.random.default_rng(20261203), REFERENCE)[col]
    if col == "category":  # codes in the profile's order (most frequent first, as drawn)
        values = {col: [CATEGORIES[i] for i in ref]}
        profile = build_profile("confirm", values, {col: FeatureKind.CATEGORICAL})
        assert profile.features[col].categories == tuple(CATEGORIES)  # type: ignore[union-attr]
        tests = {col: ["bin_cusum"]}
    else:
        profile = build_profile("confirm", {col: ref}, {col: FeatureKind.NUMERIC})
        tests = {col: ["cusum", "bin_cusum"]}
    mean, sd = float(np.mean(ref)), float(np.std(ref))
    found = calibrate_sequential(
        profile, tests,
        alarms_per_month=split.sequential_shares(args.budget, WINDOW_CHECKS, SEQUENTIAL),
        events_per_month=RATE * SECONDS_PER_MONTH,
        seed=7919 * COLUMNS.index(col),  # the simulation seed of sequential.py's column
    )  # fmt: skip
    h = {t: s.h for t, s in found[col].items()}
    if args.bin_budget is not None:
        other = calibrate_sequential(
            profile, {col: ["bin_cusum"]}, alarms_per_month=args.bin_budget / CHECKS,
            events_per_month=RATE * SECONDS_PER_MONTH,
        )  # fmt: skip
        h["bin_cusum"] = other[col]["bin_cusum"].h
    plan = build_plan(profile, tests, {col: h})
    rounded = {t: round(v, 2) for t, v in h.items()}
    budgets = f"{args.budget:,.0f}" + (
        f" (bin_cusum {args.bin_budget:,.0f})" if args.bin_budget is not None else ""
    )
    print(f"{col} column: driftmon at {budgets}/month, weights {split.to_json()} "
          f"(h {rounded}), ADWIN delta {args.delta:g}; "
          f"{args.events:,} events a stream\n")  # fmt: skip
    print("| stream | driftmon (cusum + bin_cusum) | ADWIN |\n|---|---:|---:|")
    total = {"driftmon": 0, "ADWIN": 0}
    for seed in args.seeds if args.events > 0 else ():
        detectors = SequentialDetectors(plan)
        adwin = drift.ADWIN(delta=args.delta)
        ours = {"cusum": 0, "bin_cusum": 0}
        theirs = 0
        rng = np.random.default_rng(seed)
        for start in range(0, args.events, CHUNK):
            size = min(CHUNK, args.events - start)
            x = rng.normal(size=size) if col == "normal" else rng.choice(5, size, p=SHARES)
            for a in detectors.run(*columns(col, x)):
                ours[a.test] += 1
            if not args.no_adwin:
                theirs += alarm_count(adwin, ((x - mean) / sd).tolist())
        n = sum(ours.values())
        total["driftmon"] += n
        total["ADWIN"] += theirs
        print(f"| seed {seed} | {n} ({ours['cusum']} + {ours['bin_cusum']}) | {theirs} |",
              flush=True)  # fmt: skip
    cells = [f"{k} ({garwood(k)[0]:.1f}-{garwood(k)[1]:.1f})" for k in total.values()]
    print(f"| all {len(args.seeds)} | {cells[0]} | {cells[1]} |")
    if args.change_seeds:
        delays(plan, col, (mean, sd), args.delta, args.change_seeds, not args.no_adwin)


def columns(col: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The detectors' numeric and code columns of one column's values."""
    if col == "normal":
        return x[:, None], np.zeros((x.size, 0), np.int64)
    return np.zeros((x.size, 0)), x.astype(np.int64)[:, None]


def delays(
    plan: SequentialPlan,
    col: str,
    moments: tuple[float, float],
    delta: float,
    seeds: int,
    adwin: bool,
) -> None:
    """Median delays of both detectors on the Gaussian column's changes, each with a
    distribution-free 95 % interval of the median (order statistics), and on how many of
    the same streams driftmon alarmed first."""
    print(f"\nmedian delay [95 % interval of the median], {seeds} seeds:\n"
          "| change | driftmon | ADWIN | driftmon first / ties / ADWIN first |\n"
          "|---|---:|---:|---:|")  # fmt: skip
    for name, change in changes().items():
        ours: list[float] = []
        theirs: list[float] = []
        for seed in range(seeds):
            srng = np.random.default_rng(1000 + seed)
            before = draw(srng, LEAD)
            after = draw(srng, 200_000)
            if change(srng, after) != col:
                break
            x = np.concatenate([before[col], after[col]])
            found = SequentialDetectors(plan).run(*columns(col, x))
            late = [a.row - LEAD for a in found if a.row >= LEAD]
            ours.append(late[0] if late else np.inf)
            if adwin:
                values = ((x - moments[0]) / moments[1]).tolist()
                at = first_alarm(lambda: drift.ADWIN(delta=delta), values, LEAD)
                theirs.append(at - LEAD if at >= 0 else np.inf)
            else:
                theirs.append(np.inf)
        if ours:
            cells = [median_cell(d) for d in (ours, theirs)]
            a, b = np.array(ours), np.array(theirs)
            wins = f"{int(np.sum(a < b))} / {int(np.sum(a == b))} / {int(np.sum(a > b))}"
            print(f"| {name} | {' | '.join(cells)} | {wins} |", flush=True)


def median_cell(delays: list[float]) -> str:
    """The median with the order statistics that bound it at 95 % (binomial, n >= 6)."""
    d = np.sort(np.array(delays))
    n = d.size

    def fmt(x: float) -> str:
        return "> 200,000" if np.isinf(x) else f"{x:,.0f}"

    if n < 6:
        return fmt(float(np.median(d)))
    r = max(int(stats.binom.ppf(0.025, n, 0.5)), 1)  # ranks r and n + 1 - r (1-based)
    return f"{fmt(float(np.median(d)))} [{fmt(d[r - 1])}-{fmt(d[n - r])}]"


if __name__ == "__main__":
    main()
