"""Verify the sequential tests' false-alarm budget on long stationary streams.

    python benchmarks/detection/verify_budget.py [--events N] [--budgets B ...] [--seed S]
        [--reference-seed R] [--weights CUSUM BIN_CUSUM] [--window-checks W]

A budget of one false alarm a month is invisible in any stream one can run, so this
verifies budgets large enough to expect alarms: the stationary stream of ``--events`` rows
(default 20,000,000) is declared to be one month, and for each budget ``B`` (default 36
and 9 alarms a month) the budget is split as the product splits it
(:class:`monitor.stats.budget_split.BudgetSplit`, the default weights unless
``--weights``) over the 9 sequential checks of five columns (``cusum`` on four numeric
ones, ``bin_cusum`` on all five) and ``--window-checks`` window checks (default 0: the
window checks' share is not run here, so 0 puts the whole budget where it is measured);
the thresholds are calibrated from the reference profile
(:func:`monitor.stats.sequential_calibration.calibrate_sequential`) and the detectors run
over the stream. Measured alarms are compared with the sequential checks' share of ``B``,
in all and per family (95 % Poisson interval, Garwood). Columns as in ``sequential.py``:
Gaussian, Student t(3), gamma(2), Poisson(3), a categorical of five categories; a
50,000-row reference drawn from the true laws (``--reference-seed``; the calibration aims
at the mean over references, so several reference seeds verify it best).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
try:
    import monitor  # noqa: F401
except ImportError:
    sys.path.insert(0, str(HERE.parents[1]))

from sequential import COLUMNS, NUMERIC, REFERENCE, Driftmon, draw  # noqa: E402

from monitor.stats import FeatureKind, build_profile  # noqa: E402
from monitor.stats.budget_split import DEFAULT_WEIGHTS, BudgetSplit  # noqa: E402
from monitor.stats.sequential import SequentialDetectors  # noqa: E402
from monitor.stats.sequential_calibration import calibrate_sequential  # noqa: E402

CHUNK = 2_000_000
#: Sequential checks of the five columns, per test.
COUNTS = {"cusum": len(NUMERIC), "bin_cusum": len(COLUMNS)}


def garwood(k: int) -> tuple[float, float]:
    lo = 0.0 if k == 0 else float(stats.chi2.ppf(0.025, 2 * k) / 2)
    return lo, float(stats.chi2.ppf(0.975, 2 * k + 2) / 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--budgets", type=float, nargs="+", default=[36.0, 9.0])
    parser.add_argument("--seed", type=int, default=0, help="added to the streams' seeds")
    parser.add_argument("--reference-seed", type=int, default=20261203)
    parser.add_argument("--weights", type=float, nargs=2, default=None,
                        metavar=("CUSUM", "BIN_CUSUM"),
                        help="budget weights of the two tests (window weight 1)")  # fmt: skip
    parser.add_argument("--window-checks", type=int, default=0)
    args = parser.parse_args()
    split = (
        DEFAULT_WEIGHTS
        if args.weights is None
        else BudgetSplit(cusum=args.weights[0], bin_cusum=args.weights[1])
    )
    rng = np.random.default_rng(args.reference_seed)
    ref = draw(rng, REFERENCE)
    kinds = {c: FeatureKind.NUMERIC for c in NUMERIC} | {"category": FeatureKind.CATEGORICAL}
    values = {c: ref[c] for c in NUMERIC} | {"category": [str(i) for i in ref["category"]]}
    profile = build_profile("verify", values, kinds)
    # codes follow the profile's category order (most frequent first: 0, 1, 2, ...)
    assert profile.features["category"].categories == ("0", "1", "2", "3", "4")  # type: ignore[union-attr]
    tests = {c: (["cusum", "bin_cusum"] if c in NUMERIC else ["bin_cusum"]) for c in COLUMNS}
    print(f"{args.events:,} stationary events = one month; weights {split.to_json()}, "
          f"{args.window_checks} window checks; reference seed {args.reference_seed}, "
          f"stream seed +{args.seed}\n")  # fmt: skip
    print("| budget / month | sequential share | alarms measured | 95 % interval | "
          "cusum: share / alarms | bin_cusum: share / alarms | CPU s |")  # fmt: skip
    print("|---:|---:|---:|---|---:|---:|---:|")
    for budget in args.budgets:
        shares = split.sequential_shares(budget, args.window_checks, COUNTS)
        found = calibrate_sequential(
            profile, tests, alarms_per_month=shares, events_per_month=float(args.events), seed=1
        )  # fmt: skip
        thresholds = {c: {t: s.h for t, s in v.items()} for c, v in found.items()}
        detectors = SequentialDetectors(Driftmon(profile, thresholds).plan)
        by_check: dict[str, int] = {}
        by_test = dict.fromkeys(COUNTS, 0)
        cpu = 0.0
        stream = np.random.default_rng(int(budget * 1000) + args.seed)
        for start in range(0, args.events, CHUNK):
            cols = draw(stream, min(CHUNK, args.events - start))
            t0 = time.process_time()
            numeric = np.column_stack([cols[c] for c in NUMERIC])
            codes = cols["category"].reshape(-1, 1).astype(np.int64)
            for a in detectors.run(numeric, codes):
                by_test[a.test] += 1
                by_check[f"{a.feature}/{a.test}"] = by_check.get(f"{a.feature}/{a.test}", 0) + 1
            cpu += time.process_time() - t0
        alarms = sum(by_test.values())
        lo, hi = garwood(alarms)
        share = {t: shares[t] * n for t, n in COUNTS.items()}
        family = [f"{share[t]:.2f} / {by_test[t]}" for t in COUNTS]
        print(
            f"| {budget:g} | {sum(share.values()):.2f} | {alarms} | {lo:.1f} - {hi:.1f} | "
            f"{' | '.join(family)} | {cpu:.1f} |",
            flush=True,
        )
        rounded = {c: {t: round(h, 2) for t, h in v.items()} for c, v in thresholds.items()}
        print(f"   thresholds: {rounded}")
        print(f"   by check (feature/test: alarms): {dict(sorted(by_check.items()))}")


if __name__ == "__main__":
    main()
