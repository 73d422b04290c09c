"""Numba kernels that add a batch of rows to per-feature bin and category counts (called
once per batch by :class:`monitor.stats.window.SlotWindow`, never per event)."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import numpy as np
from numba import njit

from monitor.stats.bin_grid import build_grid, grid_column

#: Rows binned per block, feature by feature (a block of 20 features is 80 KiB).
_BLOCK = 512


@njit(cache=True, nogil=True, inline="always")
def _finite_or(x: float, other: float) -> float:  # pragma: no cover - compiled
    return x if abs(x) < math.inf else other


@njit(cache=True, nogil=True, inline="always")
def _bin_column(
    v: np.ndarray, e: np.ndarray, k: int, t: np.ndarray, depth: int, lo: float, hi: float
) -> tuple[float, float]:  # pragma: no cover - compiled
    """Bin one feature's values; ``depth`` is a constant of the calling kernel, so the
    search unrolls. Four values advance through the search together: their loads are independent,
    so the CPU overlaps them instead of waiting on one chain of dependent loads."""
    miss = t.shape[0] - 1
    n = v.shape[0]
    r = 0
    while r + 4 <= n:
        a = v[r]
        b = v[r + 1]
        c = v[r + 2]
        d = v[r + 3]
        pa = 0
        pb = 0
        pc = 0
        pd = 0
        s = 1 << depth
        for _ in range(depth):
            s >>= 1
            pa += s * (e[pa + s - 1] <= a)
            pb += s * (e[pb + s - 1] <= b)
            pc += s * (e[pc + s - 1] <= c)
            pd += s * (e[pd + s - 1] <= d)
        pa += e[pa] <= a
        pb += e[pb] <= b
        pc += e[pc] <= c
        pd += e[pd] <= d
        # +inf also passes the +inf padding: clamp to the last bin; NaN goes to `miss`.
        t[min(pa, k) if a == a else miss] += 1
        t[min(pb, k) if b == b else miss] += 1
        t[min(pc, k) if c == c else miss] += 1
        t[min(pd, k) if d == d else miss] += 1
        lo = min(lo, _finite_or(a, lo), _finite_or(b, lo), _finite_or(c, lo), _finite_or(d, lo))
        hi = max(hi, _finite_or(a, hi), _finite_or(b, hi), _finite_or(c, hi), _finite_or(d, hi))
        r += 4
    while r < n:
        a = v[r]
        pa = 0
        s = 1 << depth
        for _ in range(depth):
            s >>= 1
            pa += s * (e[pa + s - 1] <= a)
        pa += e[pa] <= a
        t[min(pa, k) if a == a else miss] += 1
        lo = min(lo, _finite_or(a, lo))
        hi = max(hi, _finite_or(a, hi))
        r += 1
    return lo, hi


#: Edges are padded to at least this width (``+inf`` after the last edge), so every profile
#: of up to 128 bins (the default is 100) shares one binning kernel: a width is a
#: compile-time constant of its kernel (see :func:`numeric_kernel`).
MIN_WIDTH = 128


def padded_width(n_edges: int) -> int:
    """The padded edge width of a profile whose features have at most ``n_edges`` edges: a
    power of two, at least :data:`MIN_WIDTH`.

    >>> padded_width(0), padded_width(99), padded_width(128), padded_width(129)
    (128, 128, 128, 256)
    """
    return max(MIN_WIDTH, 1 << max(0, n_edges - 1).bit_length())


def bins_width(bins: int) -> int:
    """The padded edge width of profiles built with ``bins`` bins (at most ``bins - 1``
    edges): what the warm-up compiles for a configured ``bins``."""
    return padded_width(bins - 1)


@cache
def numeric_kernel(width: int) -> Callable[..., None]:
    """The binning kernel for edges padded to ``width`` columns (a power of two).

    ``kernel(values, edges, n_edges, *grid, out, low, high)`` adds rows x features
    ``values`` to per-feature bin counts (``grid``: the edges' :class:`~monitor.stats.
    bin_grid.BinGrid`, built once per profile). The bin of ``x`` is the number of edges
    ``<= x`` (``searchsorted(side="right")``): bins are ``(-inf, e0), [e0, e1), ...,
    [e_{k-1}, +inf)``. It is found through the feature's grid: one cell lookup and a
    fixed few compare-and-add steps (:func:`~monitor.stats.bin_grid.grid_column`); a
    feature without a grid takes a branch-free binary search over its edges padded with
    ``+inf`` to ``width``: ``log2(width) + 1`` compare-and-add steps and no
    data-dependent branch. The last column of ``out`` counts NaN (missing);
    ``-inf``/``+inf`` land in the outer bins. ``low``/``high`` track the smallest and
    largest finite values (Wasserstein support of the outer bins).

    The search depth is a constant of the kernel (a closure variable Numba freezes), so
    the search unrolls; one kernel per width, compiled on first use and cached on disk
    (the cache keys a closure by its variables). A single kernel taking the depth at run
    time was 5-10x slower, and three specialised copies in one kernel tripled its
    compile time.
    """
    if width < 1 or width & (width - 1):
        raise ValueError(f"width must be a power of two, got {width}")
    depth = (width - 1).bit_length()

    @njit(cache=True, nogil=True)
    def _bin_numeric(
        values: np.ndarray,
        edges: np.ndarray,
        n_edges: np.ndarray,
        offset: np.ndarray,
        scale: np.ndarray,
        top: np.ndarray,
        steps: np.ndarray,
        start: np.ndarray,
        table: np.ndarray,
        out: np.ndarray,
        low: np.ndarray,
        high: np.ndarray,
    ) -> None:  # pragma: no cover - compiled
        # (f8[:, ::1], f8[:, ::1], i8[::1], BinGrid's five arrays, i8[:, ::1], f8[::1], f8[::1])
        # Feature-major over blocks of rows read in place (no transposed copy of the
        # batch): a block's values, and one feature's edges, table and counts, stay in cache.
        n = values.shape[0]
        for r0 in range(0, n, _BLOCK):
            r1 = min(n, r0 + _BLOCK)
            for f in range(values.shape[1]):
                v = values[r0:r1, f]
                if top[f] >= 0:
                    lo, hi = grid_column(
                        v, edges[f], n_edges[f], offset[f], scale[f], top[f], steps[f],
                        table[start[f] :], out[f], low[f], high[f],
                    )  # fmt: skip
                else:
                    lo, hi = _bin_column(v, edges[f], n_edges[f], out[f], depth, low[f], high[f])
                low[f] = lo
                high[f] = hi

    return _bin_numeric


def bin_numeric(
    values: np.ndarray,
    edges: np.ndarray,
    n_edges: np.ndarray,
    out: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
) -> None:
    """:func:`numeric_kernel` for ``edges``' width, called once (the grids built here; a
    window's come with its layout)."""
    grid = build_grid(edges, n_edges)
    numeric_kernel(edges.shape[1])(values, edges, n_edges, *grid, out, low, high)


@njit(cache=True, nogil=True)
def _count_codes(codes: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    # (i8[:, ::1], i8[:, ::1])
    """Add rows x features categorical codes to per-feature counts; ``-1`` (missing) goes
    to the last column of ``out``."""
    n_rows, n_features = codes.shape
    miss = out.shape[1] - 1
    for r in range(n_rows):
        for f in range(n_features):
            c = codes[r, f]
            out[f, c if c >= 0 else miss] += 1
