"""Statistics engine: binning throughput, evaluation time, cold start and memory.

    python benchmarks/bench_stats.py

1. Histogram update: 10,000 rows x 20 numeric features at the default 100 bins, through
   ``SlotWindow.feed`` and through the bare kernel, next to ``numpy.searchsorted`` +
   ``numpy.bincount`` per feature on the same data (median of several runs each).
2. Full evaluation of 20 numeric features x all tests from the window sketches (from a
   ``WindowCounts`` snapshot and straight from the ``SlotWindow``), next to
   ``scipy.stats.ks_2samp`` looped over the same 20 features of 100k-row reference and
   window samples; the features flagged at p < 0.001 are compared.
3. Cold start: a new process importing the engine and running ``warmup()`` with a
   populated Numba cache, and with an empty cache directory (first-start JIT cost).
4. Memory: window bytes per numeric feature, and for 50 features x 12 slots.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.stats import CountWindowSpec, FeatureKind, SlotWindow, build_profile, evaluate
from monitor.stats.kernels import _bin_numeric
from monitor.stats.layout import layout_of


def median_seconds(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def numeric_profile(features: int, rows: int, seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(rows, features))
    names = [f"f{i}" for i in range(features)]
    profile = build_profile(
        "bench", dict(zip(names, ref.T, strict=True)), dict.fromkeys(names, FeatureKind.NUMERIC)
    )
    return profile, ref


def bench_binning() -> None:
    profile, _ = numeric_profile(20, 100_000)
    lay = layout_of(profile)
    x = np.random.default_rng(1).normal(size=(10_000, 20))
    empty = np.zeros((10_000, 0), np.int64)
    window = SlotWindow(profile, CountWindowSpec(events=10_000 * 1000, slide=10_000 * 100))
    out = np.zeros((20, lay.num_width), np.int64)
    lo, hi = np.full(20, np.inf), np.full(20, -np.inf)
    edges = [profile.features[n].edges for n in profile.numeric_names]  # type: ignore[union-attr]

    def kernel() -> None:
        _bin_numeric(x, lay.padded_edges, lay.n_edges, out, lo, hi)

    def feed() -> None:
        for _ in window.feed(x, empty):
            pass

    def numpy_way() -> None:
        for i, e in enumerate(edges):
            np.bincount(np.searchsorted(e, x[:, i], side="right"), minlength=e.size + 1)

    kernel()
    feed()
    values = x.size
    rates: dict[str, list[float]] = {}
    for _ in range(3):  # interleave rounds: the box is shared, compare within a round
        for name, fn in (("kernel", kernel), ("feed", feed), ("numpy", numpy_way)):
            rates.setdefault(name, []).append(values / median_seconds(fn, 15))
    med = {k: statistics.median(v) for k, v in rates.items()}
    print("## histogram update, 10,000 rows x 20 numeric features, 100 bins")
    for name in ("kernel", "feed", "numpy"):
        print(
            f"{name:>7}: {med[name] / 1e6:8.1f} M values/s"
            f"   ({med[name] / med['numpy']:.1f}x numpy)"
        )


def bench_evaluation() -> None:
    profile, ref = numeric_profile(20, 100_000)
    rng = np.random.default_rng(2)
    cur = rng.normal(size=(100_000, 20))
    cur[:, [3, 7, 11]] += 0.05
    window = SlotWindow(profile, CountWindowSpec(events=100_000, slide=10_000))
    for _ in window.feed(cur, np.zeros((100_000, 0), np.int64)):
        pass
    counts = window.counts()
    from monitor.stats.drift import numeric_statistics

    lay = layout_of(profile)
    evaluate(profile, counts)
    evaluate(profile, window)
    times: dict[str, list[float]] = {}
    for _ in range(5):  # interleave rounds: the box is shared, compare within a round
        for name, fn in (
            ("kernel", lambda: numeric_statistics(lay, counts)),
            ("counts", lambda: evaluate(profile, counts)),
            ("window", lambda: evaluate(profile, window)),
        ):
            times.setdefault(name, []).append(median_seconds(fn, 400))
    t_kernel, t_eval, t_window = (
        statistics.median(times[k]) for k in ("kernel", "counts", "window")
    )
    res = evaluate(profile, counts)
    mine = {f.name for f in res.features if "ks_p_value" in f.crossed}
    scipy_runs = []
    for _ in range(3):
        start = time.perf_counter()
        pvals = [stats.ks_2samp(ref[:, i], cur[:, i]).pvalue for i in range(20)]
        scipy_runs.append(time.perf_counter() - start)
    t_scipy = statistics.median(scipy_runs)
    theirs = {f"f{i}" for i, p in enumerate(pvals) if p < 0.001}
    print(
        "## evaluation, 20 numeric features x all tests"
        " (psi, ks, kl, js, wasserstein), 100k-row windows"
    )
    print(f"statistics kernel + support points:  {t_kernel * 1e6:8.1f} us")
    print(f"evaluate(profile, WindowCounts):     {t_eval * 1e6:8.1f} us")
    print(f"evaluate(profile, SlotWindow):       {t_window * 1e6:8.1f} us")
    print(f"scipy ks_2samp x 20 (median of 3):   {t_scipy * 1e3:8.1f} ms")
    print(f"ratio (scipy / evaluate, counts):    {t_scipy / t_eval:8.0f}x")
    print(f"ratio (scipy / evaluate, window):    {t_scipy / t_window:8.0f}x")
    print(
        f"flagged (p < 0.001): driftmon {sorted(mine)}, scipy {sorted(theirs)},"
        f" same={mine == theirs}"
    )


def bench_cold_start() -> None:
    script = (
        "import time; t = time.perf_counter(); from monitor.stats import warmup; s = warmup(); "
        "print(f'{time.perf_counter() - t:.3f} {s:.3f}')"
    )
    root = str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=root)

        def run() -> tuple[float, float, float]:
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True
            )
            ready, warm = (float(v) for v in out.stdout.split())
            return time.perf_counter() - start, ready, warm

        cold = run()
        warm = [run() for _ in range(3)]
    best = min(warm, key=lambda r: r[0])
    print("## cold start (new process: import + warmup())")
    print(
        f"empty cache: process {cold[0]:.2f} s, import+warmup {cold[1]:.2f} s"
        f" (warmup {cold[2]:.2f} s)"
    )
    print(
        f"warm cache:  process {best[0]:.2f} s, import+warmup {best[1]:.2f} s"
        f" (warmup {best[2]:.3f} s)"
    )


def bench_memory() -> None:
    profile, _ = numeric_profile(50, 20_000)
    window = SlotWindow(profile, CountWindowSpec(events=12_000, slide=1_000))
    lay = layout_of(profile)
    layout_bytes = sum(v.nbytes for v in vars(lay).values() if isinstance(v, np.ndarray))
    print("## memory, 100 bins")
    print(
        f"window, 50 features x 12 slots: {window.nbytes:,} bytes"
        f" ({window.nbytes / 50:,.0f} per feature)"
    )
    print(
        f"profile layout (kernel arrays): {layout_bytes:,} bytes"
        f" ({layout_bytes / 50:,.0f} per feature)"
    )


if __name__ == "__main__":
    bench_binning()
    bench_evaluation()
    bench_cold_start()
    bench_memory()
