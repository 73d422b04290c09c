"""Compile every kernel signature before the daemon reports ready."""

from __future__ import annotations

import time

import numpy as np

from monitor.stats.drift import categorical_statistics, evaluate, numeric_statistics
from monitor.stats.layout import layout_of
from monitor.stats.profile import FeatureKind, build_profile
from monitor.stats.window import CountWindowSpec, SlotWindow


def warmup() -> float:
    """Run every kernel once on tiny inputs; return the seconds spent.

    With ``NUMBA_CACHE_DIR`` holding a populated cache this only loads the compiled code;
    on an empty cache it compiles and writes it.
    """
    start = time.perf_counter()
    x = np.linspace(0.0, 1.0, 64)
    profile = build_profile(
        "warmup",
        {"x": x, "c": ["a", "b"] * 32},
        {"x": FeatureKind.NUMERIC, "c": FeatureKind.CATEGORICAL},
        bins=8,
    )
    window = SlotWindow(profile, CountWindowSpec(events=32, slide=32))
    num = x[:32, None].copy()
    cat = profile.features["c"].encode(["a", "b", None, "z"] * 8)[:, None]  # type: ignore[union-attr]
    for _ in window.feed(num, cat):
        # small n: exact KS kernel for unequal and equal sizes; chi-square path too
        evaluate(profile, window)
    # the statistics kernels on their own, as calibration calls them
    lay = layout_of(profile)
    numeric_statistics(lay, window.counts())
    categorical_statistics(lay, window.counts())
    # the other specialised search widths (64 and 128 edges) of the binning kernel
    for bins in (64, 100):
        wide = build_profile(
            "warmup", {"x": np.arange(256.0)}, {"x": FeatureKind.NUMERIC}, bins=bins
        )
        w = SlotWindow(wide, CountWindowSpec(events=16, slide=16))
        for _ in w.feed(np.arange(16.0)[:, None], np.zeros((16, 0), np.int64)):
            evaluate(wide, w)
    return time.perf_counter() - start
