"""The scrape at 1,000 models x 20 features: ``/metrics`` cached per model vs the plain
encoder, and ``/status``, in one process and one run.

    python benchmarks/bench_many_scrape.py [--models 1000] [--features 20] [--rounds 5]

The startup benchmark's case (window 20/10; psi, ks, js; a reference file per model) fed
25 events a model on average (most models evaluated), then, interleaved per round:

* ``plain``: ``prometheus_client``'s encoder over the registry, every sample rendered (what
  ``/metrics`` did before the per-model cache; the baseline);
* ``cached, unchanged``: :func:`render_metrics` with nothing published since the last one;
* ``cached, counted``: after every model's hot counts moved (a batch of rows for each model,
  no evaluation: the usual picture between two scrapes of a busy daemon);
* ``cached, all evaluated``: after every model's status was published again (each model
  evaluated since the last scrape: everything rendered again, the worst case);
* ``/status``: ``models_document`` of every model, as JSON.

Every cached body is checked equal to the plain encoder's first.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import many_models as mm
from bench_many_startup import write_case
from prometheus_client import CollectorRegistry, generate_latest

from monitor.config import load_config
from monitor.ingest.decode import Reason
from monitor.model.reference_file import load_references
from monitor.model.status import HotCounts
from monitor.pipeline import Pipeline
from monitor.publish.health import Health
from monitor.publish.metrics import Metrics
from monitor.publish.metrics.exposition import render_metrics
from monitor.publish.status import models_document

KAFKA = "kafka:\n  bootstrap_servers: 127.0.0.1:1\n  topics: [many]\n  group_id: bench\n"


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        path = write_case(Path(tmp), args.models, args.features, KAFKA, 0)
        config = load_config(path)
        pipeline = Pipeline(config, load_references(config))
    feed = mm.events(25 * args.models, args.models, args.features, seed=9)
    for start in range(0, len(feed), 5000):
        chunk = feed[start : start + 5000]
        pipeline.process(chunk, np.zeros(len(chunk)))
    store = pipeline.results
    registry = CollectorRegistry(auto_describe=True)
    health = Health()
    Metrics(registry, store, health, invalid_reasons=[r.value for r in Reason],
            models=list(config.models))  # fmt: skip
    evaluated = sum(1 for s in store.snapshot().values() if s.evaluations)

    def count_all() -> None:
        store.count(
            (name, HotCounts(s.events_total + 1, s.late_events, s.window_events, 0.5))
            for name, s in store.snapshot().items()
        )

    def evaluate_all() -> None:
        snapshot = store.snapshot()
        store.publish(*(dataclasses.replace(snapshot[n], evaluations=snapshot[n].evaluations + 1)
                        for n in snapshot))  # fmt: skip

    plain = generate_latest(registry)
    assert render_metrics(registry, "")[0] == plain, "the cached body differs"
    times: dict[str, list[float]] = {
        k: [] for k in ("plain", "unchanged", "counted", "evaluated", "status")
    }
    for _ in range(args.rounds):
        times["plain"].append(timed(lambda: generate_latest(registry)))
        times["unchanged"].append(timed(lambda: render_metrics(registry, "")))
        count_all()
        times["counted"].append(timed(lambda: render_metrics(registry, "")))
        evaluate_all()
        times["evaluated"].append(timed(lambda: render_metrics(registry, "")))
        assert render_metrics(registry, "")[0] == generate_latest(registry)
        times["status"].append(
            timed(lambda: json.dumps(models_document(store, health, None), allow_nan=False))
        )
    load.append(os.getloadavg()[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"{args.models} models x {args.features} features, {evaluated} evaluated, /metrics "
        f"{len(plain) / 1e6:.1f} MB; medians of {args.rounds} (load average "
        f"{min(load):.1f}-{max(load):.1f}):"
    )
    for key, label in (
        ("plain", "plain encoder (before)"),
        ("unchanged", "cached, nothing changed"),
        ("counted", "cached, every model counted"),
        ("evaluated", "cached, every model evaluated"),
    ):
        print(
            f"  /metrics {label}: {med[key]:.3f} s "
            f"({', '.join(f'{t:.3f}' for t in times[key])}); / plain {med[key] / med['plain']:.3f}"
        )
    print(f"  /status, every model: {med['status']:.3f} s")


if __name__ == "__main__":
    main()
