"""Verify the sequential tests' false-alarm budget on long stationary streams.

    python benchmarks/detection/verify_budget.py [--events N] [--budgets B ...]

A budget of one false alarm a month is invisible in any stream one can run, so this
verifies budgets large enough to expect alarms: the stationary stream of ``--events`` rows
(default 20,000,000) is declared to be one month, and for each budget ``B`` (default 36
and 9 alarms a month, split over the 9 sequential checks of five columns: ``cusum`` on
four numeric ones, ``bin_cusum`` on all five) the thresholds are calibrated from the
reference profile (:func:`monitor.stats.sequential_calibration.calibrate_sequential`)
and the detectors run over the stream. Measured alarms are compared with ``B`` (95 %
Poisson interval, Garwood). Columns as in ``sequential.py``: Gaussian, Student t(3),
gamma(2), Poisson(3), a categorical of five categories; 50,000-row references.
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
from monitor.stats.sequential_calibration import calibrate_sequential  # noqa: E402

CHUNK = 2_000_000
SEQUENTIAL_CHECKS = 9


def garwood(k: int) -> tuple[float, float]:
    lo = 0.0 if k == 0 else float(stats.chi2.ppf(0.025, 2 * k) / 2)
    return lo, float(stats.chi2.ppf(0.975, 2 * k + 2) / 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--budgets", type=float, nargs="+", default=[36.0, 9.0])
    parser.add_argument("--seed", type=int, default=0, help="added to the streams' seeds")
    args = parser.parse_args()
    rng = np.random.default_rng(20261203)
    ref = draw(rng, REFERENCE)
    kinds = {c: FeatureKind.NUMERIC for c in NUMERIC} | {"category": FeatureKind.CATEGORICAL}
    values = {c: ref[c] for c in NUMERIC} | {"category": [str(i) for i in ref["category"]]}
    profile = build_profile("verify", values, kinds)
    # codes follow the profile's category order (most frequent first: 0, 1, 2, ...)
    assert profile.features["category"].categories == ("0", "1", "2", "3", "4")  # type: ignore[union-attr]
    tests = {c: (["cusum", "bin_cusum"] if c in NUMERIC else ["bin_cusum"]) for c in COLUMNS}
    print(f"{args.events:,} stationary events = one month; 9 sequential checks\n")
    print("| budget / month | per check | alarms measured | 95 % interval | CPU s |")
    print("|---:|---:|---:|---|---:|")
    for budget in args.budgets:
        found = calibrate_sequential(
            profile, tests, alarms_per_month=budget / SEQUENTIAL_CHECKS,
            events_per_month=float(args.events), seed=1,
        )  # fmt: skip
        thresholds = {c: {t: s.h for t, s in v.items()} for c, v in found.items()}
        ours = Driftmon(profile, thresholds)
        detectors = None
        alarms = 0
        by_check: dict[str, int] = {}
        cpu = 0.0
        stream = np.random.default_rng(int(budget * 1000) + args.seed)
        for start in range(0, args.events, CHUNK):
            cols = draw(stream, min(CHUNK, args.events - start))
            t0 = time.process_time()
            if detectors is None:
                from monitor.stats.sequential import SequentialDetectors

                detectors = SequentialDetectors(ours.plan)
            numeric = np.column_stack([cols[c] for c in NUMERIC])
            codes = cols["category"].reshape(-1, 1).astype(np.int64)
            for a in detectors.run(numeric, codes):
                alarms += 1
                by_check[f"{a.feature}/{a.test}"] = by_check.get(f"{a.feature}/{a.test}", 0) + 1
            cpu += time.process_time() - t0
        lo, hi = garwood(alarms)
        print(
            f"| {budget:g} | {budget / SEQUENTIAL_CHECKS:.2f} | {alarms} | "
            f"{lo:.1f} - {hi:.1f} | {cpu:.1f} |",
            flush=True,
        )
        print(f"   by check (feature/test: alarms): {dict(sorted(by_check.items()))}")


if __name__ == "__main__":
    main()
