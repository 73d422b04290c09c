"""Compile (or load) the statistics kernels before the daemon reports ready: all of them, or
only those a config needs."""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from monitor.stats.bin_grid import build_grid
from monitor.stats.binning import MIN_WIDTH, numeric_kernel
from monitor.stats.drift import categorical_statistics, evaluate, numeric_statistics
from monitor.stats.layout import layout_of
from monitor.stats.profile import FeatureKind, ReferenceProfile, build_profile
from monitor.stats.slot_batch import EdgeTable, count_open_slots, many_kernel
from monitor.stats.window import CountWindowSpec, SlotWindow


def tiny_profile(rows: int = 64, bins: int = 8) -> ReferenceProfile:
    """The profile every warm-up runs its kernels on: one numeric feature (``rows``
    values evenly over [0, 1], ``bins`` bins) and one categorical (``a``, ``b``)."""
    return build_profile(
        "warmup",
        {"x": np.linspace(0.0, 1.0, rows), "c": ["a", "b"] * (rows // 2)},
        {"x": FeatureKind.NUMERIC, "c": FeatureKind.CATEGORICAL},
        bins=bins,
    )


def warmup(widths: Iterable[int] = (MIN_WIDTH,), *, calibration: bool = True) -> float:
    """Run every kernel a window and its evaluation need once on tiny inputs; return the
    seconds spent.

    ``widths``: the padded edge widths to bin for (:func:`monitor.stats.binning.bins_width`
    of each configured ``bins``; the default covers up to 128 bins). ``calibration``: also
    the statistics kernels a false-alarm budget's calibration calls, which a config
    without a budget never runs. With ``NUMBA_CACHE_DIR`` holding a populated cache this
    only loads the compiled code; on an empty cache it compiles and writes it.
    """
    start = time.perf_counter()
    for width in sorted(set(widths)):
        # the window's call: rows x features values, features x width edges, counts
        edges, n_edges = np.full((1, width), np.inf), np.zeros(1, np.int64)
        numeric_kernel(width)(
            np.zeros((4, 1)),
            edges,
            n_edges,
            *build_grid(edges, n_edges),
            np.zeros((1, 2), np.int64),
            np.full(1, np.inf),
            np.full(1, -np.inf),
        )
    x = np.linspace(0.0, 1.0, 64)
    _warm_slot_batch(widths)
    profile = tiny_profile()
    window = SlotWindow(profile, CountWindowSpec(events=32, slide=32))
    num = x[:32, None].copy()
    cat = profile.features["c"].encode(["a", "b", None, "z"] * 8)[:, None]  # type: ignore[union-attr]
    for _ in window.feed(num, cat):
        # small n: exact KS kernel for unequal and equal sizes; chi-square path too
        evaluate(profile, window)
    if calibration:
        warmup_calibration()
    return time.perf_counter() - start


def _warm_slot_batch(widths: Iterable[int]) -> None:
    """Many windows' rows in one call (:mod:`monitor.stats.slot_batch`), per width."""
    profile = tiny_profile(rows=16, bins=4)
    for width in sorted(set(widths)):
        window = SlotWindow(profile, CountWindowSpec(events=8, slide=8))
        list(window.feed(np.zeros((1, 1)), np.zeros((1, 1), np.int64), np.zeros(1)))
        table, z = EdgeTable(), np.zeros(0, np.int64)
        lay = window.layout
        table.rows_of(lay)
        edges, n_edges, n_cats, grid = table.stacked(lay.padded_edges.shape[1])
        # the kernel for `width`, on a window that is not touched (no rows)
        many_kernel(width)(
            np.zeros(0), z, z, np.zeros((0, 4), np.int64), z, np.full((1, width), np.inf),
            n_edges, *grid, z, z, z, n_cats, np.zeros(0), z, np.zeros((0, 11), np.int64),
            np.zeros(0, np.bool_), np.zeros(0),
        )  # fmt: skip
        count_open_slots(table, [window], [np.ones((1, 1))], [np.zeros((1, 1), np.int64)],
                         [np.ones(1)])  # fmt: skip


def warmup_calibration() -> float:
    """Only the statistics kernels a budget's calibration calls; the seconds spent."""
    start = time.perf_counter()
    profile = tiny_profile()
    window = SlotWindow(profile, CountWindowSpec(events=32, slide=32))
    lay = layout_of(profile)
    numeric_statistics(lay, window.counts())
    categorical_statistics(lay, window.counts())
    return time.perf_counter() - start


def warmup_sequential(widths: Iterable[int] = (MIN_WIDTH,)) -> float:
    """Only the sequential detectors' kernels (``cusum``, ``bin_cusum``), for the padded
    edge widths of the configured bins; the seconds spent."""
    from monitor.stats.sequential import SequentialDetectors, build_plan, cells_kernel

    start = time.perf_counter()
    for width in sorted(set(widths)):
        cells_kernel(width)(
            np.zeros((1, 4)), np.zeros((4, 1), np.int64), np.full((1, width), np.inf),
            np.full(1, 2, np.int64),
        )  # fmt: skip
    profile = tiny_profile()
    tests = {"x": ["cusum", "bin_cusum"], "c": ["bin_cusum"]}
    detectors = SequentialDetectors(build_plan(profile, tests, {}))
    cells = np.zeros((2, 4), np.int32)
    detectors.run_cells(cells)
    return time.perf_counter() - start
