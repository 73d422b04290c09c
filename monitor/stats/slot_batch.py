"""Many windows' rows of one batch counted into their open slots by one kernel call.

With hundreds of models on a topic, a batch brings each model a few rows; feeding every
window on its own pays a kernel dispatch and about ten numpy calls per model. When a
model's rows all fit in its window's open slot (no slot closes, so nothing is evaluated),
:func:`count_open_slots` bins every such window's rows in one Numba call against a table of
the profiles' edges stacked once (:class:`EdgeTable`) and adds each window's share with
:meth:`~monitor.stats.window.SlotWindow.add_counted`: the same counts and extremes as
:meth:`~monitor.stats.window.SlotWindow.feed` of the same rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache

import numpy as np
from numba import njit

from monitor.stats.binning import _bin_column
from monitor.stats.layout import Layout
from monitor.stats.window import SlotWindow


@cache
def many_kernel(width: int) -> Callable[..., None]:
    """The kernel binning several windows' rows for edges padded to ``width`` (a power of
    two; one compiled kernel per width, as :func:`~monitor.stats.binning.numeric_kernel`).

    Per window ``m``: ``rows[m]`` rows of ``nf[m]`` values (row-major in ``values`` from
    ``vstart[m]``) binned against table rows ``erow[m]...`` into ``out`` rows ``orow[m]...``
    (``nw[m]`` columns, the last one missing); its codes (``nc[m]`` a row from
    ``cstart[m]``) checked against ``n_cats`` and counted into ``cout`` rows
    ``corow[m]...`` (``cw[m]`` columns); its times' min and max (NaN if one is NaN, as
    ``np.min``). ``ok[m]`` is 0 when a code is out of range: that window counts nothing.
    """
    if width < 1 or width & (width - 1):
        raise ValueError(f"width must be a power of two, got {width}")
    depth = (width - 1).bit_length()

    @njit(cache=True, nogil=True)
    def _bin_many(
        values: np.ndarray, vstart: np.ndarray, rows: np.ndarray, nf: np.ndarray,
        erow: np.ndarray, orow: np.ndarray, nw: np.ndarray,
        edges: np.ndarray, n_edges: np.ndarray, out: np.ndarray,
        low: np.ndarray, high: np.ndarray,
        codes: np.ndarray, cstart: np.ndarray, nc: np.ndarray, crow: np.ndarray,
        corow: np.ndarray, cw: np.ndarray, n_cats: np.ndarray, cout: np.ndarray,
        ts: np.ndarray, tstart: np.ndarray, tmin: np.ndarray, tmax: np.ndarray,
        ok: np.ndarray,
    ) -> None:  # pragma: no cover - compiled  # fmt: skip
        col = np.empty(0)
        for m in range(rows.shape[0]):
            n = rows[m]
            c0, k = cstart[m], nc[m]
            good = True
            for i in range(n * k):
                code = codes[c0 + i]
                if code < -1 or code >= n_cats[crow[m] + i % k]:
                    good = False
            ok[m] = good
            if not good:
                continue
            if col.shape[0] < n:
                col = np.empty(n)
            v0, f_n = vstart[m], nf[m]
            for f in range(f_n):
                for r in range(n):
                    col[r] = values[v0 + r * f_n + f]
                e, o = erow[m] + f, orow[m] + f
                lo, hi = _bin_column(
                    col[:n], edges[e], n_edges[e], out[o, : nw[m]], depth, low[o], high[o]
                )
                low[o] = lo
                high[o] = hi
            miss = cw[m] - 1
            for i in range(n * k):
                code = codes[c0 + i]
                cout[corow[m] + i % k, code if code >= 0 else miss] += 1
            lo, hi, nan = math.inf, -math.inf, False
            for r in range(tstart[m], tstart[m] + n):
                t = ts[r]
                if t != t:
                    nan = True
                lo = min(lo, t)
                hi = max(hi, t)
            tmin[m] = math.nan if nan else lo
            tmax[m] = math.nan if nan else hi

    return _bin_many


class EdgeTable:
    """Every layout's padded edges, bin counts and category sizes stacked, per width: each
    layout is copied in once (when first counted), so a batch passes one table."""

    def __init__(self) -> None:
        # width -> (layouts kept alive so their ids stay theirs, id -> (edge row, cat row))
        self._rows: dict[int, dict[int, tuple[Layout, int, int]]] = {}
        self._edges: dict[int, list[np.ndarray]] = {}
        self._cats: dict[int, list[np.ndarray]] = {}
        self._stacked: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def rows_of(self, lay: Layout) -> tuple[int, int]:
        """The table rows of ``lay``'s first numeric feature and first categorical one."""
        width = int(lay.padded_edges.shape[1])
        known = self._rows.setdefault(width, {})
        found = known.get(id(lay))
        if found is None:
            edges = self._edges.setdefault(width, [])
            cats = self._cats.setdefault(width, [])
            found = (lay, sum(len(e) for e in edges), sum(len(c) for c in cats))
            known[id(lay)] = found
            edges.append(lay.padded_edges)
            cats.append(lay.n_cats)
            self._stacked.pop(width, None)
        return found[1], found[2]

    def stacked(self, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(padded edges, edge counts, category sizes)`` of every layout of ``width``."""
        table = self._stacked.get(width)
        if table is None:
            edges = self._edges[width]
            n_edges = [self._rows[width][i][0].n_edges for i in self._rows[width]]
            table = self._stacked[width] = (
                np.ascontiguousarray(np.concatenate(edges)) if edges else np.empty((0, width)),
                np.concatenate(n_edges).astype(np.int64),
                np.concatenate(self._cats[width]).astype(np.int64),
            )
        return table


def count_open_slots(
    table: EdgeTable,
    windows: Sequence[SlotWindow],
    numeric: Sequence[np.ndarray],
    codes: Sequence[np.ndarray],
    ts: Sequence[np.ndarray],
) -> list[bool]:
    """Count each window's rows (``numeric``/``codes`` in its profile's order, ``ts``) into
    its open slot, windows of one edge width per kernel call; every window must have
    :meth:`~SlotWindow.open_room` for its rows. Per window: whether it was counted
    (``False``: a category code out of range; feed it for the error)."""
    counted = [False] * len(windows)
    by_width: dict[int, list[int]] = {}
    for i, window in enumerate(windows):
        by_width.setdefault(window.layout.padded_edges.shape[1], []).append(i)
    for width, picked in by_width.items():
        done = _count_width(table, width, picked, windows, numeric, codes, ts)
        for i, good in zip(picked, done, strict=True):
            counted[i] = good
    return counted


def _count_width(
    table: EdgeTable,
    width: int,
    picked: list[int],
    windows: Sequence[SlotWindow],
    numeric: Sequence[np.ndarray],
    codes: Sequence[np.ndarray],
    ts: Sequence[np.ndarray],
) -> list[bool]:
    lays = [windows[i].layout for i in picked]
    places = np.array([table.rows_of(lay) for lay in lays], np.int64).reshape(-1, 2)
    edges, n_edges, n_cats = table.stacked(width)
    shape = np.array(
        [(len(ts[i]), lay.n_numeric, lay.num_width, lay.n_categorical, lay.cat_width)
         for i, lay in zip(picked, lays, strict=True)], np.int64,
    ).reshape(-1, 5)  # fmt: skip
    rows, nf, nw, nc, cw = shape.T
    orow = np.concatenate(([0], np.cumsum(nf)[:-1]))
    corow = np.concatenate(([0], np.cumsum(nc)[:-1]))
    out = np.zeros((int(nf.sum()), int(nw.max())), np.int64)
    cout = np.zeros((int(nc.sum()), int(cw.max())), np.int64)
    # each window's open slot's extremes so far: the kernel carries them on
    low = np.concatenate([windows[i].open_extremes()[0] for i in picked] + [np.empty(0)])
    high = np.concatenate([windows[i].open_extremes()[1] for i in picked] + [np.empty(0)])
    tmin, tmax = np.empty(len(picked)), np.empty(len(picked))
    ok = np.zeros(len(picked), np.bool_)
    values = np.concatenate([numeric[i].reshape(-1) for i in picked] + [np.empty(0)])
    flat_codes = np.concatenate([codes[i].reshape(-1) for i in picked] + [np.empty(0, np.int64)])
    times = np.concatenate([ts[i] for i in picked]).astype(np.float64, copy=False)
    many_kernel(width)(
        values, np.concatenate(([0], np.cumsum(rows * nf)[:-1])), rows, nf,
        places[:, 0].copy(), orow, nw, edges, n_edges, out, low, high,
        flat_codes.astype(np.int64, copy=False), np.concatenate(([0], np.cumsum(rows * nc)[:-1])),
        nc, places[:, 1].copy(), corow, cw, n_cats, cout,
        times, np.concatenate(([0], np.cumsum(rows)[:-1])), tmin, tmax, ok,
    )  # fmt: skip
    good = ok.tolist()
    for j, i in enumerate(picked):
        if good[j]:
            o, c, f, k = int(orow[j]), int(corow[j]), int(nf[j]), int(nc[j])
            windows[i].add_counted(
                out[o : o + f, : nw[j]], low[o : o + f], high[o : o + f],
                cout[c : c + k, : cw[j]], int(rows[j]), float(tmin[j]), float(tmax[j]),
            )  # fmt: skip
    return [bool(g) for g in good]
