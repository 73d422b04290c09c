"""Stage 2 of one model: prepared binned rows applied per second, against one process.

    python benchmarks/bench_scaleout.py [--rows 1000000] [--repeats 5]

A 13-feature model (10 numeric, 3 categorical), rows spread over 6 source partitions with
event-time jitter, arriving in stage-1 batches of 2,000 rows per source, interleaved, one
release per six messages (one consume of 12,000 rows, the size the baseline feeds at once):

1. one process (the baseline): ``SlotWindow.feed`` of the same rows already decoded and
   time-sorted, which is what a single process does after decoding;
2. stage 2: decode the wire bytes, dedup, lateness, watermark, sort, and count the codes
   into the same window (``SlotWindow.feed_binned``, as ``ModelStage.step`` does);
3. the window part of stage 2 alone: the baseline's time-sorted rows, binned beforehand,
   counted into the same window in the same chunks (``feed_binned``);
4. the wire size per row.

Medians of ``--repeats`` runs; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.scaleout.codec import RowBatch, RowCodec, decode_rows, encode_rows, source_id
from monitor.scaleout.reorder import Marker, ReorderBuffer
from monitor.stats import CountWindowSpec, FeatureKind, SlotWindow, build_profile
from monitor.stats.binned import BinnedRows

NUMERIC = [f"x{j}" for j in range(10)]
CATEGORICAL = [f"c{j}" for j in range(3)]
SOURCES = 6
BATCH = 2000
NUM_COLS = np.arange(len(NUMERIC))
CAT_COLS = np.arange(len(NUMERIC), len(NUMERIC) + len(CATEGORICAL))


def profile():
    rng = np.random.default_rng(0)
    columns: dict[str, object] = {n: rng.normal(size=20000) for n in NUMERIC}
    columns.update(
        {n: rng.choice([f"v{i}" for i in range(12)], 20000).tolist() for n in CATEGORICAL}
    )
    kinds = {n: FeatureKind.NUMERIC for n in NUMERIC} | {
        n: FeatureKind.CATEGORICAL for n in CATEGORICAL
    }
    return build_profile("wide", columns, kinds, bins=100, max_categories=50)  # type: ignore[arg-type]


def prepared(rows: int, codec: RowCodec) -> tuple[list[bytes], np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    per = rows // SOURCES
    messages: list[tuple[int, bytes]] = []
    all_num, all_codes, all_ts = [], [], []
    for p in range(SOURCES):
        ts = 1.7e9 + np.arange(per) * 0.006 + rng.normal(0, 0.5, per)
        num = rng.normal(0.1, 1.1, (per, len(NUMERIC)))
        codes = rng.integers(-1, 14, (per, len(CATEGORICAL)))
        offsets = np.arange(per)
        s = source_id(0, p)
        for a in range(0, per, BATCH):
            b = min(per, a + BATCH)
            batch = codec.bin(num[a:b], codes[a:b], ts[a:b], np.full(b - a, s), offsets[a:b],
                              np.array([[s, a, b - 1]]))  # fmt: skip
            messages.append((a, encode_rows(batch)))
        all_num.append(num)
        all_codes.append(codes)
        all_ts.append(ts)
    messages.sort(key=lambda m: m[0])  # sources interleaved batch by batch
    ts = np.concatenate(all_ts)
    order = np.argsort(ts, kind="stable")
    return (
        [m for _, m in messages],
        np.concatenate(all_num)[order],
        np.concatenate(all_codes)[order],
        ts[order],
    )


def one_process(prof, num: np.ndarray, codes: np.ndarray, ts: np.ndarray) -> float:
    win = SlotWindow(prof, CountWindowSpec(events=20000, slide=2000))
    started = time.perf_counter()
    for a in range(0, ts.shape[0], BATCH * SOURCES):
        b = a + BATCH * SOURCES
        for _ in win.feed(num[a:b], codes[a:b], ts[a:b]):
            pass
    return time.perf_counter() - started


def counted(prof, rows: RowBatch) -> float:
    """The window part of stage 2 alone: the same time-sorted rows as the baseline, binned
    beforehand and cut into the same chunks, counted into the window (``feed_binned``)."""
    win = SlotWindow(prof, CountWindowSpec(events=20000, slide=2000))
    chunks = []
    for a in range(0, rows.rows, BATCH * SOURCES):
        part = rows.take(np.arange(a, min(rows.rows, a + BATCH * SOURCES)))
        chunks.append((BinnedRows(part.codes, NUM_COLS, CAT_COLS, part.outer_row,
                                  part.outer_col, part.outer_value), part.ts))  # fmt: skip
    started = time.perf_counter()
    for binned, ts in chunks:
        for _ in win.feed_binned(binned, ts):
            pass
    return time.perf_counter() - started


def stage2(prof, codec: RowCodec, messages: list[bytes]) -> tuple[float, int]:
    win = SlotWindow(prof, CountWindowSpec(events=20000, slide=2000))
    sources = [source_id(0, p) for p in range(SOURCES)]
    buffer = ReorderBuffer("wide", "fp", codec.width, sources, allowed_lateness_seconds=5.0,
                           max_buffered_rows=10**7)  # fmt: skip
    applied = 0
    started = time.perf_counter()
    for i, data in enumerate(messages):
        buffer.push(decode_rows(data))
        if (i + 1) % SOURCES:
            continue  # one release per consumed batch of messages, as the daemon does
        applied += feed(win, buffer.release())
    for s in sources:
        buffer.mark(Marker(s, 0, idle=True))
    applied += feed(win, buffer.release())
    return time.perf_counter() - started, applied


def feed(win: SlotWindow, rows: RowBatch) -> int:
    """Released rows into the window as ``ModelStage.step`` feeds them: codes counted."""
    if rows.rows:
        binned = BinnedRows(rows.codes, NUM_COLS, CAT_COLS, rows.outer_row, rows.outer_col,
                            rows.outer_value)  # fmt: skip
        for _ in win.feed_binned(binned, rows.ts):
            pass
    return rows.rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    prof = profile()
    codec = RowCodec("wide", prof, NUMERIC, CATEGORICAL, "fp")
    messages, num, codes, ts = prepared(args.rows, codec)
    rows = ts.shape[0]
    n = ts.shape[0]
    sorted_rows = codec.bin(num, codes, ts, np.zeros(n), np.arange(n), np.zeros((0, 3)))
    # compile / load every kernel before timing
    one_process(prof, num[:20000], codes[:20000], ts[:20000])
    counted(prof, sorted_rows.take(np.arange(20000)))
    stage2(prof, codec, messages[:60])
    base, bins, staged = [], [], []
    applied = 0
    for _ in range(args.repeats):
        base.append(one_process(prof, num, codes, ts))
        bins.append(counted(prof, sorted_rows))
        seconds, applied = stage2(prof, codec, messages)
        staged.append(seconds)
    b, c, s = statistics.median(base), statistics.median(bins), statistics.median(staged)
    wire = sum(len(m) for m in messages) / rows
    print(f"rows: {rows:,} ({len(NUMERIC)} numeric, {len(CATEGORICAL)} categorical), "
          f"{SOURCES} sources, {len(messages)} row batches; applied {applied:,}")  # fmt: skip
    print(
        f"one process, window feed of sorted rows: {rows / b / 1e6:.2f} M rows/s (median {b:.3f} s)"
    )
    print(
        f"window part of stage 2, binned rows counted: {rows / c / 1e6:.2f} M rows/s "
        f"(median {c:.3f} s; {b / c:.2f}x the window feed of values)"
    )
    print(
        f"stage 2, decode+dedup+watermark+sort+window: {rows / s / 1e6:.2f} M rows/s "
        f"(median {s:.3f} s)"
    )
    print(f"stage 2 / one process time: {s / b:.2f}x; wire bytes per row: {wire:.1f}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
