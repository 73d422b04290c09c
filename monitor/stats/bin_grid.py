"""A value's bin in O(1): a uniform grid over a feature's edges, then a short exact scan.

Per numeric feature, ``G`` equal cells span its first to last edge; a value's cell is
``int(clamp((x - offset) * scale, 0, G - 1))`` (:func:`_cell`). That map is monotone in
``x`` for every non-NaN double (each float operation rounds monotonically and the clamp
keeps order, infinities included), so an edge whose cell is below ``x``'s cell is below
``x``, and one whose cell is above is above it. ``table[c]`` counts the edges whose cell is
below ``c``; the bin of ``x`` (the number of edges ``<= x``, ``searchsorted(side="right")``)
is then in ``[table[c], table[c + 1]]``, and a scan over the few edges sharing the cell
finds it. Rounding can shift which cell a value falls in but never the bin: exactness
rests only on monotonicity, and the table is built with the same compiled :func:`_cell`.

A feature whose edges crowd one cell past :data:`MAX_SPAN` even at :data:`MAX_CELLS`
cells (a heavy tail stretching the grid), or that has non-finite edges, gets no grid
(``top < 0``) and keeps the binary search.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

#: The most cells a feature's grid gets (2 bytes each).
MAX_CELLS = 4096
#: A grid is kept when no cell holds more edges than this; cells are doubled until none
#: holds more than :data:`_DENSE` (or :data:`MAX_CELLS` is reached).
MAX_SPAN = 4
_DENSE = 2
#: A table entry counts at most MAX_CELLS * MAX_SPAN edges: two bytes hold it, half the
#: memory and cache of four (20 normal features: 10 KiB a model).
TABLE_DTYPE = np.uint16


class BinGrid(NamedTuple):
    """The grids of a profile's numeric features (rows in the layout's order)."""

    offset: np.ndarray  # (F,) float64: the first edge
    scale: np.ndarray  # (F,) float64: cells per unit of value
    top: np.ndarray  # (F,) float64: the last cell's index; -1: no grid, binary search
    steps: np.ndarray  # (F,) int64: the most edges one cell holds
    start: np.ndarray  # (F,) int64: where the feature's table starts in ``table``
    table: np.ndarray  # uint16: per feature, G + 1 counts of edges in cells below each


@njit(cache=True, nogil=True, inline="always")
def _cell(x: float, offset: float, scale: float, top: float) -> int:  # pragma: no cover
    """The grid cell of ``x`` (any double; NaN lands in the last cell)."""
    t = (x - offset) * scale
    t = t if t < top else top
    t = t if t > 0.0 else 0.0
    return int(t)


@njit(cache=True, nogil=True)
def _fit(
    padded: np.ndarray,
    n_edges: np.ndarray,
    offset: np.ndarray,
    scale: np.ndarray,
    top: np.ndarray,
    steps: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Each feature's grid: from the first power of two at least twice its edges, cells
    doubled until no cell holds more than ``_DENSE`` edges (or ``MAX_CELLS``); no grid
    (``top`` -1) when one still holds more than ``MAX_SPAN`` or an edge is not finite or
    out of order."""
    count = np.empty(MAX_CELLS, np.int64)
    for f in range(n_edges.shape[0]):
        k = n_edges[f]
        e = padded[f]
        top[f] = -1.0
        ok = True
        for j in range(k):
            ok = ok and abs(e[j]) < math.inf and (j == 0 or e[j] >= e[j - 1])
        if not ok:
            continue
        off = e[0] if k else 0.0
        width = e[k - 1] - off if k else 0.0  # inf when it overflows
        cells = 1
        if width > 0.0 and width < math.inf:
            while cells < 2 * k and cells < MAX_CELLS:
                cells *= 2
        while True:
            sc = cells / width if cells > 1 else 0.0
            if cells > 1 and not (sc > 0.0 and sc < math.inf):  # inf * 0 would be NaN
                cells, sc = 1, 0.0
            last = float(cells - 1)
            count[:cells] = 0
            for j in range(k):
                count[_cell(e[j], off, sc, last)] += 1
            widest = count[:cells].max()
            if widest <= _DENSE or cells >= MAX_CELLS or cells == 1:
                break
            cells *= 2
        if widest <= MAX_SPAN:
            offset[f], scale[f], top[f], steps[f] = off, sc, last, widest


@njit(cache=True, nogil=True)
def _fill(
    padded: np.ndarray,
    n_edges: np.ndarray,
    grid_offset: np.ndarray,
    grid_scale: np.ndarray,
    grid_top: np.ndarray,
    start: np.ndarray,
    table: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Each gridded feature's table: per cell, the edges whose cell is below it."""
    for f in range(n_edges.shape[0]):
        if grid_top[f] < 0:
            continue
        cells = int(grid_top[f]) + 1
        t = table[start[f] : start[f] + cells + 1]
        t[:] = 0
        for j in range(n_edges[f]):
            t[_cell(padded[f, j], grid_offset[f], grid_scale[f], grid_top[f]) + 1] += 1
        for c in range(1, cells + 1):
            t[c] += t[c - 1]


def build_grid(padded_edges: np.ndarray, n_edges: np.ndarray) -> BinGrid:
    """The grids of features x padded edges (``n_edges`` real ones a row)."""
    nf = n_edges.shape[0]
    padded = np.ascontiguousarray(padded_edges, np.float64)
    counts = np.ascontiguousarray(n_edges, np.int64)
    offset, scale, top = np.zeros(nf), np.zeros(nf), np.zeros(nf)
    steps = np.zeros(nf, np.int64)
    _fit(padded, counts, offset, scale, top, steps)
    sizes = np.where(top >= 0, top + 2, 0).astype(np.int64)
    start = np.zeros(nf, np.int64)
    np.cumsum(sizes[:-1], out=start[1:])
    table = np.zeros(int(sizes.sum()), TABLE_DTYPE)
    _fill(padded, counts, offset, scale, top, start, table)
    return BinGrid(offset, scale, top, steps, start, table)


@njit(cache=True, nogil=True, inline="always")
def grid_column(
    v: np.ndarray,
    e: np.ndarray,
    k: int,
    offset: float,
    scale: float,
    top: float,
    steps: int,
    tab: np.ndarray,
    t: np.ndarray,
    lo: float,
    hi: float,
) -> tuple[float, float]:  # pragma: no cover - compiled
    """Bin one feature's values ``v`` into counts ``t`` (last column: NaN) through its
    grid (``e``: its ``k`` edges, padded or not; ``tab``: its table; ``steps``: the most
    edges a cell holds); the running finite extremes returned, as ``min``/``max`` would
    keep them."""
    one = np.uint64(1)
    last = np.uint64(max(k - 1, 0))  # reads stay on real edges: a row may hold no padding
    miss = np.uint64(t.shape[0] - 1)
    for r in range(v.shape[0]):
        x = v[r]
        # Unsigned indices: Numba wraps negative signed ones, a compare and select a load.
        c = np.uint64(_cell(x, offset, scale, top))
        b = np.uint64(tab[c])
        end = np.uint64(tab[c + one])
        for _ in range(steps):  # branch-free: a mispredicted early exit costs more
            b += np.uint64((b < end) & (e[min(b, last)] <= x))
        t[b if x == x else miss] += 1
        finite = abs(x) < math.inf
        lo = x if finite and x < lo else lo
        hi = x if finite and x > hi else hi
    return lo, hi
