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
5. Evaluation cost against window and reference size: the median per evaluation of 20
   numeric features (3 shifted by 0.1 sd) for several reference/window sizes and test
   selections, and the replay rate of a 2,000/500 window over a 5,000-row reference
   (20 numeric features, tests psi/ks/js). ``--before ROOT`` measures the same in a
   checkout of an earlier revision, in child processes interleaved with this one's, and
   prints both with their ratio (``--only sizes`` runs this section alone).
"""

from __future__ import annotations

import argparse
import json
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

# DRIFTMON_BENCH_ROOT: measure another checkout's code (the --before comparison)
sys.path.insert(0, os.environ.get("DRIFTMON_BENCH_ROOT") or str(Path(__file__).parents[1]))

from monitor.stats import CountWindowSpec, FeatureKind, SlotWindow, build_profile, evaluate
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
    from monitor.stats.binning import numeric_kernel

    profile, _ = numeric_profile(20, 100_000)
    lay = layout_of(profile)
    x = np.random.default_rng(1).normal(size=(10_000, 20))
    empty = np.zeros((10_000, 0), np.int64)
    window = SlotWindow(profile, CountWindowSpec(events=10_000 * 1000, slide=10_000 * 100))
    out = np.zeros((20, lay.num_width), np.int64)
    lo, hi = np.full(20, np.inf), np.full(20, -np.inf)
    edges = [profile.features[n].edges for n in profile.numeric_names]  # type: ignore[union-attr]

    bin_numeric = numeric_kernel(lay.padded_edges.shape[1])

    def kernel() -> None:
        bin_numeric(x, lay.padded_edges, lay.n_edges, *lay.grid, out, lo, hi)

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


SIZES = ((5_000, 500), (5_000, 2_000), (10_000, 10_000), (100_000, 2_000), (100_000, 100_000))
SELECTIONS = {
    "all": ["psi", "ks", "kl", "js", "wasserstein"],
    "psi,ks,js": ["psi", "ks", "js"],
    "psi": ["psi"],
    "ks": ["ks"],
}


def adaptive_median(fn: Callable[[], object], budget: float = 0.3, most: int = 200) -> float:
    """Median of at least 3 runs, more while they fit in ``budget`` seconds."""
    times: list[float] = []
    spent = 0.0
    while len(times) < 3 or (spent < budget and len(times) < most):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        spent += times[-1]
    return statistics.median(times)


def evaluation_sizes() -> dict[str, float]:
    """Seconds per evaluation (median), keyed ``reference/window/selection``."""
    out: dict[str, float] = {}
    for ref_rows, events in SIZES:
        profile, _ = numeric_profile(20, ref_rows)
        cur = np.random.default_rng(3).normal(size=(events, 20))
        cur[:, :3] += 0.1
        window = SlotWindow(profile, CountWindowSpec(events=events, slide=events // 4))
        for _ in window.feed(cur, np.zeros((events, 0), np.int64)):
            pass
        for label, tests in SELECTIONS.items():
            evaluate(profile, window, tests=tests)
            out[f"{ref_rows}/{events}/{label}"] = adaptive_median(
                lambda p=profile, w=window, t=tests: evaluate(p, w, tests=t)  # type: ignore[misc]
            )
    return out


def small_window_replay(events: int = 60_000) -> float:
    """Events/s of ``replay`` (median of 3, in process, kernels warm): 20 numeric features,
    a {events: 2000, slide: 500} window over a 5,000-row reference, tests psi/ks/js."""
    from monitor.app.replay import replay
    from monitor.config import load_config
    from monitor.model.reference_file import load_references

    names = [f"x{j}" for j in range(20)]
    rng = np.random.default_rng(4)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        ref = rng.normal(size=(5_000, 20))
        build_profile(
            "small", dict(zip(names, ref.T, strict=True)),
            dict.fromkeys(names, FeatureKind.NUMERIC), source="bench",
        ).save(d / "small.json")  # fmt: skip
        rows = rng.normal(size=(events, 20)).round(4).tolist()
        lines = [
            json.dumps(
                {"model": "small", "ts": 1.7e9 + i, "features": dict(zip(names, r, strict=True))}
            )
            for i, r in enumerate(rows)
        ]
        (d / "events.jsonl").write_text("\n".join(lines) + "\n")
        features = "\n".join(f"      {n}: {{type: numeric}}" for n in names)
        (d / "small.yaml").write_text(
            "kafka: {bootstrap_servers: '127.0.0.1:9', group_id: bench, topics: [t]}\n"
            "models:\n  small:\n    reference: small.json\n"
            "    window: {events: 2000, slide: 500}\n    tests: [psi, ks, js]\n"
            f"    features:\n{features}\n"
        )
        config = load_config(d / "small.yaml")
        references = load_references(config)
        rates = [replay(config, references, d / "events.jsonl", None).events_per_second
                 for _ in range(3)]  # fmt: skip
    return statistics.median(rates)


def measure_sizes() -> dict[str, object]:
    return {"sizes": evaluation_sizes(), "replay": small_window_replay()}


def child_sizes(root: str) -> dict[str, object]:
    env = dict(os.environ, DRIFTMON_BENCH_ROOT=root, PYTHONPATH=root)
    out = subprocess.run(
        [sys.executable, __file__, "--sizes-json"], env=env, capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(f"measuring {root} failed:\n{out.stderr}")
    result: dict[str, object] = json.loads(out.stdout.splitlines()[-1])
    return result


def bench_sizes(before: str | None) -> None:
    """Section 5; with ``before``, two interleaved rounds of child processes per side."""
    here = str(Path(__file__).resolve().parents[1])
    sides: dict[str, list[dict[str, object]]] = {"after": []}
    if before:
        sides["before"] = []
        for _ in range(2):
            sides["before"].append(child_sizes(before))
            sides["after"].append(child_sizes(here))
    else:
        sides["after"].append(measure_sizes())

    def med(side: str, key: str | None) -> float:
        vals = [r["replay"] if key is None else r["sizes"][key] for r in sides[side]]  # type: ignore[index]
        return float(statistics.median(vals))  # type: ignore[type-var]

    load = os.getloadavg()
    print(
        f"## evaluation cost vs window and reference size, 20 numeric features (load {load[0]:.1f})"
    )
    head = "reference/window/tests"
    if before:
        print(f"{head:>34}  {'before':>10}  {'after':>10}  ratio")
    for ref_rows, events in SIZES:
        for label in SELECTIONS:
            key = f"{ref_rows}/{events}/{label}"
            after = med("after", key) * 1e6
            line = f"{key:>34}  "
            if before:
                b = med("before", key) * 1e6
                line += f"{b:8.1f}us  {after:8.1f}us  {b / after:6.1f}x"
            else:
                line += f"{after:8.1f} us"
            print(line)
    rate = med("after", None)
    if before:
        b = med("before", None)
        print(f"replay 2,000/500 over 5,000: before {b:,.0f} events/s, after {rate:,.0f}"
              f" ({rate / b:.1f}x)")  # fmt: skip
    else:
        print(f"replay 2,000/500 over 5,000: {rate:,.0f} events/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a checkout of an earlier revision to compare with")
    parser.add_argument("--only", choices=["sizes"], help="run one section")
    parser.add_argument("--sizes-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sizes_json:
        print(json.dumps(measure_sizes()))
        raise SystemExit(0)
    if args.only != "sizes":
        bench_binning()
        bench_evaluation()
        bench_cold_start()
        bench_memory()
    bench_sizes(args.before)
