"""The JSON scanner alone, one thread, on the events of bench_e2e (20 numeric features and
a numeric prediction, 4-5 decimals) and on bench_decode's mix (12 numeric, 8 categorical);
then bench_e2e's events with a null late in one in five (``nulls``: the scanner's template
fast path misses those) and with a different unmonitored key in each (``nofit``: no
template fits any).

Each round is a fresh subprocess per tree (this one and every ``--tree``), interleaved, so
before and after share the machine's load; a subprocess scans the same joined batch of
``--events`` messages ``--repeat`` times and reports its fastest pass in ns per event (the
least disturbed by other processes). The figure is the median of those over rounds.

Run: ``python benchmarks/bench_scan.py [--events 100000] [--rounds 7] [--tree DIR ...]``
(``--tree``: another copy of the package, ``git archive REV monitor | tar -x -C DIR``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import re, sys, time
import numpy as np
sys.path.insert(0, {bench!r})
from bench_e2e import numeric_events, N_FEATURES
from bench_decode import make_payloads, schema as mixed_schema
from monitor.ingest.decode import CategoryCodes, DecodeSchema, ModelSchema
from monitor.ingest.decode.columnar import _joined, scanner_for
from monitor.ingest.decode.scanner import _scan_rows, scan_messages

def numeric_schema():
    names = tuple(f"x{{j}}" for j in range(N_FEATURES))
    ms = ModelSchema("num", numeric=names, categorical=(), prediction="numeric", codes=())
    return DecodeSchema(models={{"num": ms}})

def changed(events, kind):
    out = []
    for i, event in enumerate(events):
        if kind == "nulls" and i % 5 == 0:
            event = re.sub(rb'"x18":[^,]*', b'"x18":null', event)
        elif kind == "nofit":
            event = event.replace(b'"x19":', b'"u%d":1,"x19":' % i)
        out.append(event)
    return out

n, repeat = {events}, {repeat}
numeric = numeric_events(n, 3)
for label, payloads, schema in (
    ("numeric", numeric, numeric_schema()),
    ("mixed", make_payloads(n), mixed_schema(codes=True)),
    ("nulls", changed(numeric, "nulls"), numeric_schema()),
    ("nofit", changed(numeric, "nofit"), numeric_schema()),
):
    scanner = scanner_for(schema)
    buf, starts, ends = _joined(payloads)
    out = scan_messages(scanner.tables, buf, starts[:10], ends[:10])
    best = float("inf")
    for _ in range(repeat):
        out = scan_messages(scanner.tables, buf, starts, ends)
        t0 = time.thread_time_ns()
        _scan_rows(scanner.tables, buf, starts, ends, out, 0, n)
        best = min(best, (time.thread_time_ns() - t0) / n)
    assert (out.status == 0).all(), label
    print(label, best, len(buf) / n)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tree", type=Path, action="append", default=[])
    args = parser.parse_args()
    trees = {"this tree": HERE.parent, **{str(t): t.resolve() for t in args.tree}}
    code = CHILD.format(bench=str(HERE), events=args.events, repeat=args.repeat)
    figures: dict[tuple[str, str], list[float]] = {}
    size: dict[str, float] = {}
    load = os.getloadavg()[0]
    for _ in range(args.rounds):
        for name, tree in trees.items():
            # bench_e2e puts its own checkout first on sys.path unless told the tree
            env = {**os.environ, "PYTHONPATH": str(tree), "BENCH_E2E_TREE": str(tree)}
            done = subprocess.run(
                [sys.executable, "-c", code], env=env, cwd=tree, check=True,
                capture_output=True, text=True,
            )  # fmt: skip
            for line in done.stdout.splitlines():
                label, ns, per = line.split()
                figures.setdefault((name, label), []).append(float(ns))
                size[label] = float(per)
    print(f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}, {args.rounds} rounds")
    for label in size:
        base = statistics.median(figures[("this tree", label)])
        print(f"{label} ({size[label]:.0f} bytes an event), median of fastest passes, ns/event:")
        for name in trees:
            runs = figures[(name, label)]
            med = statistics.median(runs)
            print(
                f"  {name:>24}: {med:7.1f} ({min(runs):.1f}-{max(runs):.1f})"
                f"  {med / size[label]:.2f} ns/byte  this/it {base / med:.3f}"
            )


if __name__ == "__main__":
    main()
