"""Numba kernels that add a batch of rows to per-feature bin and category counts (called
once per batch by :class:`monitor.stats.window.SlotWindow`, never per event)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _finite_or(x: float, other: float) -> float:  # pragma: no cover - compiled
    return x if abs(x) < math.inf else other


@njit(cache=True, nogil=True, inline="always")
def _bin_column(
    v: np.ndarray, e: np.ndarray, k: int, t: np.ndarray, depth: int, lo: float, hi: float
) -> tuple[float, float]:  # pragma: no cover - compiled
    """Bin one feature's values; ``depth`` is a literal at every call site so the search
    unrolls. Four values advance through the search together: their loads are independent,
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


@njit(cache=True, nogil=True)
def _bin_numeric(
    values: np.ndarray,
    edges: np.ndarray,
    n_edges: np.ndarray,
    out: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
) -> None:  # pragma: no cover - compiled
    # (f8[:, ::1], f8[:, ::1], i8[::1], i8[:, ::1], f8[::1], f8[::1])
    """Add rows x features values to per-feature bin counts.

    The bin of ``x`` is the number of edges ``<= x`` (``searchsorted(side="right")``): bins
    are ``(-inf, e0), [e0, e1), ..., [e_{k-1}, +inf)``. It is found by a branch-free binary
    search over the feature's edges padded with ``+inf`` to a power of two ``P``:
    ``log2(P) + 1`` compare-and-add steps and no data-dependent branch. The last column of
    ``out`` counts NaN (missing); ``-inf``/``+inf`` land in the outer bins. ``low``/``high``
    track the smallest and largest finite values (Wasserstein support of the outer bins).
    """
    width = edges.shape[1]
    depth = 0
    while (1 << depth) < width:
        depth += 1
    # Feature-major pass over a transposed copy: one feature's edges and counts stay hot.
    vt = np.ascontiguousarray(values.T)
    for f in range(vt.shape[0]):
        e = edges[f]
        k = n_edges[f]
        t = out[f]
        v = vt[f]
        lo = low[f]
        hi = high[f]
        # A literal depth lets the search unroll: specialised for the default 100 bins
        # (P = 128) and for 64; other widths run the same search with a loop.
        if depth == 7:
            lo, hi = _bin_column(v, e, k, t, 7, lo, hi)
        elif depth == 6:
            lo, hi = _bin_column(v, e, k, t, 6, lo, hi)
        else:
            lo, hi = _bin_column(v, e, k, t, depth, lo, hi)
        low[f] = lo
        high[f] = hi


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
