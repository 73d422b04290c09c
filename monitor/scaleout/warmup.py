"""Compile (or load) stage 2's kernels before ready: counting binned rows into a window
(codes of one byte and of two) and the release order's tie pass."""

from __future__ import annotations

import time

import numpy as np

from monitor.scaleout.order import release_order
from monitor.stats import CountWindowSpec, SlotWindow
from monitor.stats.binned import BinnedRows
from monitor.stats.warmup import tiny_profile


def warmup() -> float:
    """Run each kernel once on tiny inputs; the seconds spent."""
    started = time.perf_counter()
    profile = tiny_profile()
    for dtype in (np.uint8, np.uint16):
        window = SlotWindow(profile, CountWindowSpec(events=4, slide=2))
        rows = BinnedRows(
            np.array([[1, 1], [3, 0], [8, 2], [0, 4]], dtype),
            np.array([0]),
            np.array([1]),
            np.array([0], np.int32),
            np.array([0], np.int32),
            np.array([-1.0]),
        )
        for _ in window.feed_binned(rows, np.arange(4.0)):
            pass
    ts = np.array([2.0, 1.0, 1.0])
    release_order(ts, np.array([1, 0, 0], np.int32), np.array([0, 1, 0], np.int64), 3.0)
    return time.perf_counter() - started
