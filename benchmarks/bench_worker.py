"""The worker thread's statistics cost per event: ``Pipeline.process``, binning, evaluation.

    python benchmarks/bench_worker.py [--events 200000] [--rounds 5] [--tree DIR] [--profile]

bench_e2e's events (one model, 20 numeric features and a numeric prediction, window
20,000/2,000, tests psi/ks/js) fed to ``Pipeline.process`` in batches of 20,000, with no
broker. Measured in thread CPU time (the worker's own), each the median over the rounds:

- ``process``: one batch's ``Pipeline.process`` (decode included), per event;
- ``stats``: the same with the batch decoded beforehand (``decoded=``), per event;
- ``binning``: the window's binning kernel over one decoded batch's values, per event;
- ``evaluate``: one evaluation of the full window (``evaluate(profile, window, tests)``);
- ``evaluator``: the model's whole evaluation of a slide (thresholds, alert and all).

``--tree DIR`` measures another copy of the package (``git archive REV monitor | tar -x -C
DIR``) in child processes interleaved with this tree's, and prints both and their ratio.
``--profile`` prints a cProfile of ``Pipeline.process`` (this tree) instead.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.environ.get("BENCH_WORKER_TREE") or str(Path(__file__).resolve().parents[1]))
sys.path.insert(1, str(Path(__file__).resolve().parent))

import numpy as np

BATCH = 20_000


def _setup(directory: Path, events: int) -> tuple[Any, list[list[bytes]]]:
    import bench_e2e

    from monitor.config import load_config
    from monitor.model.reference_file import load_references
    from monitor.pipeline import Pipeline
    from monitor.stats import warmup

    bench_e2e.write_profile(directory / "num.json")
    config_path = bench_e2e.write_config(directory, "127.0.0.1:9", "bench-worker")
    config = load_config(config_path)
    warmup()
    pipeline = Pipeline(config, load_references(config, config_path.parent))
    payloads = bench_e2e.numeric_events(events, seed=2)
    return pipeline, [payloads[i : i + BATCH] for i in range(0, len(payloads), BATCH)]


def _times(n: int) -> Any:
    return np.full(n, 1.7e12, np.int64)


def measure(events: int) -> dict[str, float]:
    from monitor.stats import SlideInfo, evaluate
    from monitor.stats.binning import numeric_kernel

    with tempfile.TemporaryDirectory() as tmp:
        pipeline, batches = _setup(Path(tmp), events)
        # Pass 1 fills the window (warm), pass 2..: timed.
        for batch in batches:
            pipeline.process(batch, _times(len(batch)))
        clock = time.thread_time
        process, stats = [], []
        for batch in batches:
            start = clock()
            pipeline.process(batch, _times(len(batch)))
            process.append((clock() - start) / len(batch))
        schema = pipeline.schema(None)
        decoded = [pipeline.decode(b, _times(len(b)), schema) for b in batches]
        for batch, dec in zip(batches, decoded, strict=True):
            start = clock()
            pipeline.process(batch, _times(len(batch)), decoded=dec)
            stats.append((clock() - start) / len(batch))
        evaluator = pipeline.models["num"].evaluator
        window = evaluator.window
        profile = evaluator.profile
        values = decoded[0].models["num"].numeric
        from monitor.stats.layout import layout_of

        lay = layout_of(profile)
        nf = lay.n_numeric
        num = np.ascontiguousarray(values[:, :nf], dtype=np.float64)
        out = np.zeros((nf, lay.num_width), np.int64)
        low, high = np.full(nf, np.inf), np.full(nf, -np.inf)
        binning = []
        kernel = numeric_kernel(lay.padded_edges.shape[1])
        for _ in range(30):
            start = clock()
            _bin_call(kernel, num, lay, out, low, high)
            binning.append((clock() - start) / num.shape[0])
        evaluation, whole = [], []
        slide = SlideInfo(0, window.events, None, 1.7e9)
        tests = evaluator._limits.tests  # noqa: SLF001 - the model's own tests
        evaluator.evaluate(slide, 0)
        for _ in range(200):
            start = clock()
            evaluate(profile, window, tests=tests)
            evaluation.append(clock() - start)
            start = clock()
            evaluator.evaluate(slide, 0)
            whole.append(clock() - start)
    return {
        "process": statistics.median(process) * 1e6,
        "stats": statistics.median(stats) * 1e6,
        "binning": statistics.median(binning) * 1e6,
        "evaluate": statistics.median(evaluation) * 1e6,
        "evaluator": statistics.median(whole) * 1e6,
    }


def _bin_call(kernel: Any, num: Any, lay: Any, out: Any, low: Any, high: Any) -> None:
    """The window's kernel call as the tree under test makes it (its grid, if it has one)."""
    grid = getattr(lay, "grid", None)
    if grid is None:
        kernel(num, lay.padded_edges, lay.n_edges, out, low, high)
    else:
        kernel(num, lay.padded_edges, lay.n_edges, *grid, out, low, high)


def profile_run(events: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pipeline, batches = _setup(Path(tmp), events)
        for batch in batches:
            pipeline.process(batch, _times(len(batch)))
        schema = pipeline.schema(None)
        decoded = [pipeline.decode(b, _times(len(b)), schema) for b in batches]
        prof = cProfile.Profile()
        prof.enable()
        for batch, dec in zip(batches, decoded, strict=True):
            pipeline.process(batch, _times(len(batch)), decoded=dec)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)


def child(tree: str | None, events: int) -> dict[str, float]:
    env = dict(os.environ)
    env.pop("BENCH_WORKER_TREE", None)
    if tree is not None:
        env["BENCH_WORKER_TREE"] = tree
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--events", str(events)],
        env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tree")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.events)))
        return
    if args.profile:
        profile_run(args.events)
        return
    sides: dict[str, list[dict[str, float]]] = {"this": [], "tree": []}
    for r in range(args.rounds):
        order = ["this", "tree"] if r % 2 == 0 else ["tree", "this"]
        for side in order:
            if side == "tree" and args.tree is None:
                continue
            sides[side].append(child(None if side == "this" else args.tree, args.events))
        print(f"  round {r + 1}: " + json.dumps({k: v[-1] for k, v in sides.items() if v}))
    print(f"load average {os.getloadavg()[0]:.2f}")
    for key in ("process", "stats", "binning", "evaluate", "evaluator"):
        unit = "us per event" if key in ("process", "stats", "binning") else "us an evaluation"
        mine = statistics.median(s[key] for s in sides["this"])
        line = f"{key:>9}: this {mine:8.3f} {unit}"
        if sides["tree"]:
            theirs = statistics.median(s[key] for s in sides["tree"])
            line += f", tree {theirs:8.3f} ({mine / theirs:.2f}x)"
        print(line)


if __name__ == "__main__":
    main()
