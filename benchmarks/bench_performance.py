"""Performance monitoring: join throughput, memory per pending prediction, label delays.

* Join throughput: predictions and their labels (ids like ``req-0001a2f3``) through
  ``JoinStore`` in batches, in three orders: labels a few seconds after their predictions,
  labels first, and 10 % of predictions ever labelled (the rest expire). Figures are
  predictions + labels per second on one core, median over rounds.
* Memory per pending prediction: tracemalloc over a store holding N unlabelled predictions
  (the dict, the id strings and the slot arrays, all of it), for a score and for
  probability rows of 10 classes.
* Label delays in event time: exponential delays with a 30 s mean (clicks) and log-normal
  ones with a 3-day median (reviews, chargebacks) against ``max_delay_seconds`` of 7 days,
  generated as event timestamps and fed in event-time order; the joined rows' delays are
  summarised by percentiles, expired ones counted.
* Window evaluation: realised binary metrics and a CBPE estimate over 5,000 rows.

Run: ``python benchmarks/bench_performance.py [--events 400000] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from monitor.performance import JoinLimits, JoinStore, PerformanceEstimator, Task
from monitor.performance.metrics import binary_metrics

DAY = 86_400.0


def ids_for(n: int, start: int = 0) -> list[str]:
    return [f"req-{i:08x}" for i in range(start, start + n)]


def run_join(order: str, n: int, batch: int) -> float:
    """Seconds to push n predictions and their labels through one store."""
    rng = np.random.default_rng(0)
    ids = ids_for(n)
    scores = rng.random(n)
    ts = np.arange(n, dtype=np.float64) / 1000.0  # 1,000 predictions per second
    labels = (rng.random(n) < scores).astype(np.float64)
    store = JoinStore(JoinLimits(max_delay_seconds=3600.0, max_pending=2_000_000))
    lag = 5 * batch  # labels trail predictions by five batches
    start = time.perf_counter()
    if order == "labels_after":
        for b in range(0, n + lag, batch):
            if b < n:
                store.add_predictions(ids[b : b + batch], scores[b : b + batch], ts[b : b + batch])
            c = b - lag
            if c >= 0:
                store.add_labels(ids[c : c + batch], labels[c : c + batch], ts[c : c + batch] + 5)
    elif order == "labels_first":
        for b in range(0, n + lag, batch):
            if b < n:
                store.add_labels(ids[b : b + batch], labels[b : b + batch], ts[b : b + batch])
            c = b - lag
            if c >= 0:
                store.add_predictions(ids[c : c + batch], scores[c : c + batch], ts[c : c + batch])
    else:  # 10 % labelled, max_delay 60 s: most predictions expire
        store = JoinStore(JoinLimits(max_delay_seconds=60.0, max_pending=2_000_000))
        for b in range(0, n, batch):
            store.add_predictions(ids[b : b + batch], scores[b : b + batch], ts[b : b + batch])
            sub = slice(b, b + batch, 10)
            store.add_labels(ids[sub], labels[sub], ts[sub] + 2)
    elapsed = time.perf_counter() - start
    total = store.predictions_total + store.labels_total
    assert store.joined_total == (n if order != "sparse" else len(range(0, n, 10)))
    return total / elapsed


def memory_per_pending(n: int, width: int) -> tuple[float, float]:
    """(bytes per pending prediction in total, of which numpy arrays)."""
    rng = np.random.default_rng(1)
    values = rng.random((n, width))
    ts = np.arange(n, dtype=np.float64)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    ids = ids_for(n)  # the strings the store keeps as keys are counted with it
    store = JoinStore(JoinLimits(max_delay_seconds=1e12, max_pending=10_000_000), width=width)
    for b in range(0, n, 5000):
        store.add_predictions(ids[b : b + 5000], values[b : b + 5000], ts[b : b + 5000])
    del ids
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert store.pending_predictions == n
    return used / n, store.nbytes() / n


def delays(kind: str, n: int) -> dict[str, float]:
    rng = np.random.default_rng(2)
    pred_ts = np.sort(rng.uniform(0, 30 * DAY, n))
    if kind == "seconds":
        label_ts = pred_ts + rng.exponential(30.0, n)
    else:
        label_ts = pred_ts + rng.lognormal(np.log(3 * DAY), 1.0, n)
    ids = ids_for(n)
    store = JoinStore(JoinLimits(max_delay_seconds=7 * DAY, max_pending=2_000_000))
    # merge both streams in event-time order, in batches of 5,000 events
    events = np.concatenate([pred_ts, label_ts])
    side = np.concatenate([np.zeros(n, np.int8), np.ones(n, np.int8)])
    row = np.concatenate([np.arange(n), np.arange(n)])
    order = np.argsort(events, kind="stable")
    got: list[np.ndarray] = []
    for b in range(0, 2 * n, 5000):
        chunk = order[b : b + 5000]
        for s in (0, 1):
            rows = row[chunk[side[chunk] == s]]
            keys = [ids[r] for r in rows]
            if s == 0:
                j = store.add_predictions(keys, np.zeros(rows.size), pred_ts[rows])
            else:
                j = store.add_labels(keys, np.ones(rows.size), label_ts[rows])
            got.append(j.delay_seconds)
    d = np.concatenate(got)
    q = np.percentile(d, [50, 90, 99, 100])
    return {
        "joined": float(d.size),
        "expired": float(store.evicted["expired"]),
        "p50": float(q[0]),
        "p90": float(q[1]),
        "p99": float(q[2]),
        "max": float(q[3]),
    }


def timed(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pending", type=int, default=500_000)
    args = parser.parse_args()

    print("join throughput, predictions + labels per second (median)")
    for order in ("labels_after", "labels_first", "sparse"):
        rates = [run_join(order, args.events, args.batch) for _ in range(args.rounds)]
        print(f"  {order:13s} {statistics.median(rates):>12,.0f}  (min {min(rates):,.0f})")

    print(f"memory per pending prediction ({args.pending:,} pending, ids of 12 chars)")
    for width in (1, 10):
        total, arrays = memory_per_pending(args.pending, width)
        print(f"  width {width:2d}: {total:6.0f} B total, {arrays:5.0f} B in numpy arrays")

    print("label delays in event time (max_delay 7 days)")
    for kind in ("seconds", "days"):
        s = delays(kind, 200_000)
        unit, scale = ("s", 1.0) if kind == "seconds" else ("d", DAY)
        print(
            f"  {kind:7s}: joined {s['joined']:,.0f}, expired {s['expired']:,.0f}; "
            + ", ".join(f"{k} {s[k] / scale:.2f}{unit}" for k in ("p50", "p90", "p99", "max"))
        )

    rng = np.random.default_rng(3)
    p = rng.random(5000)
    y = (rng.random(5000) < p).astype(np.float64)
    est = PerformanceEstimator.fit(Task.BINARY, p, y)
    binary_metrics(y, p)
    est.estimate(p)
    m = timed(lambda: binary_metrics(y, p), 21)
    e = timed(lambda: est.estimate(p), 21)
    print(
        f"window of 5,000: realised binary metrics {m * 1e3:.2f} ms, CBPE estimate {e * 1e3:.2f} ms"
    )


if __name__ == "__main__":
    main()
