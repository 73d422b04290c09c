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

#: The most cells a feature's grid gets (4 bytes each).
MAX_CELLS = 4096
#: A grid is kept when no cell holds more edges than this; cells are doubled until none
#: holds more than :data:`_DENSE` (or :data:`MAX_CELLS` is reached).
MAX_SPAN = 4
_DENSE = 2


class BinGrid(NamedTuple):
    """The grids of a profile's numeric features (rows in the layout's order)."""

    offset: np.ndarray  # (F,) float64: the first edge
    scale: np.ndarray  # (F,) float64: cells per unit of value
    top: np.ndarray  # (F,) float64: the last cell's index; -1: no grid, binary search
    steps: np.ndarray  # (F,) int64: the most edges one cell holds
    start: np.ndarray  # (F,) int64: where the feature's table starts in ``table``
    table: np.ndarray  # int32: per feature, G + 1 counts of edges in cells below each


@njit(cache=True, nogil=True, inline="always")
def _cell(x: float, offset: float, scale: float, top: float) -> int:  # pragma: no cover
    """The grid cell of ``x`` (any double; NaN lands in the last cell)."""
    t = (x - offset) * scale
    t = t if t < top else top
    t = t if t > 0.0 else 0.0
    return int(t)


@njit(cache=True, nogil=True)
def _cells_of(
    edges: np.ndarray, offset: float, scale: float, top: float
) -> np.ndarray:  # pragma: no cover - compiled
    out = np.empty(edges.shape[0], np.int64)
    for j in range(edges.shape[0]):
        out[j] = _cell(edges[j], offset, scale, top)
    return out


_NONE = (0.0, 0.0, -1.0, 0, np.zeros(0, np.int32))


def _grid_of(edges: np.ndarray) -> tuple[float, float, float, int, np.ndarray]:
    """``(offset, scale, top, steps, table)`` of one feature's sorted edges (``top`` -1:
    no grid)."""
    k = edges.shape[0]
    if k and not (np.isfinite(edges).all() and (edges[1:] >= edges[:-1]).all()):
        return _NONE
    offset = float(edges[0]) if k else 0.0
    span_of_values = float(edges[-1]) - offset if k else 0.0  # inf on overflow
    cells = 1
    if span_of_values > 0.0 and math.isfinite(span_of_values):
        cells = min(MAX_CELLS, 1 << max(0, 2 * k - 1).bit_length())
    while True:
        scale = cells / span_of_values if cells > 1 else 0.0
        if not math.isfinite(scale):
            cells, scale = 1, 0.0
        top = float(cells - 1)
        found = _cells_of(np.ascontiguousarray(edges, np.float64), offset, scale, top)
        table = np.searchsorted(found, np.arange(cells + 1), side="left").astype(np.int32)
        widest = int(np.diff(table).max()) if cells else 0
        if widest <= _DENSE or cells >= MAX_CELLS or cells == 1:
            break
        cells *= 2
    if widest > MAX_SPAN:
        return _NONE
    return offset, scale, top, widest, table


def build_grid(padded_edges: np.ndarray, n_edges: np.ndarray) -> BinGrid:
    """The grids of features x padded edges (``n_edges`` real ones a row)."""
    grids = [_grid_of(padded_edges[f, : n_edges[f]]) for f in range(n_edges.shape[0])]
    sizes = [g[4].shape[0] for g in grids]
    start = np.zeros(len(grids), np.int64)
    if grids:
        np.cumsum(sizes[:-1], out=start[1:])
    return BinGrid(
        np.array([g[0] for g in grids], np.float64),
        np.array([g[1] for g in grids], np.float64),
        np.array([g[2] for g in grids], np.float64),
        np.array([g[3] for g in grids], np.int64),
        start,
        np.concatenate([g[4] for g in grids]) if grids else np.zeros(0, np.int32),
    )


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
