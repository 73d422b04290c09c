"""Private Numba kernels of the statistics engine.

Every kernel takes contiguous ``float64``/``int64`` arrays and scalars only, does no argument
checking and is called once per batch (binning) or once per evaluation (statistics), never per
event or per feature. The typed wrappers in :mod:`monitor.stats.window` and
:mod:`monitor.stats.drift` validate and prepare the inputs. ``fastmath`` is off: NaN must keep
its IEEE meaning (it marks a missing value) and the statistics are compared against scipy to
the last few ulps.

Column layout of the statistics outputs is fixed by the ``NUM_*`` and ``CAT_*`` indices below.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Columns of the (features x NUM_COLUMNS) output of ``_numeric_stats``.
NUM_PSI = 0
NUM_KS_D = 1
NUM_KS_NUM = 2  # max |c1 * n2 - c2 * n1| as an exact integer held in a float64
NUM_KL = 3
NUM_JS = 4
NUM_W1 = 5
NUM_W1_NORMED = 6
NUM_N_REF = 7
NUM_N_WIN = 8
NUM_COLUMNS = 9

# Columns of the (features x CAT_COLUMNS) output of ``_categorical_stats``.
CAT_PSI = 0
CAT_KL = 1
CAT_JS = 2
CAT_CHI2 = 3
CAT_DOF = 4
CAT_N_REF = 5
CAT_N_WIN = 6
CAT_COLUMNS = 7


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


@njit(cache=True, nogil=True)
def _divergences(p: np.ndarray, q: np.ndarray, k: int, eps: float, out: np.ndarray) -> None:
    """PSI, KL(p || q) with the epsilon floor, and JS distance (base 2) of two count vectors.

    ``p`` and ``q`` hold raw counts in their first ``k`` entries (both sums > 0).
    Writes ``out[0] = PSI``, ``out[1] = KL``, ``out[2] = JS``.
    """
    sp = 0.0
    sq = 0.0
    for i in range(k):
        sp += p[i]
        sq += q[i]
    # Floored, renormalised probabilities for PSI and KL; raw ones for JS (finite with zeros).
    fp = 0.0
    fq = 0.0
    for i in range(k):
        fp += max(p[i] / sp, eps)
        fq += max(q[i] / sq, eps)
    psi = 0.0
    kl = 0.0
    js = 0.0
    for i in range(k):
        a = max(p[i] / sp, eps) / fp
        b = max(q[i] / sq, eps) / fq
        psi += (b - a) * math.log(b / a)
        kl += a * math.log(a / b)
        u = p[i] / sp
        v = q[i] / sq
        m = 0.5 * (u + v)
        if u > 0.0:
            js += u * math.log(u / m)
        if v > 0.0:
            js += v * math.log(v / m)
    out[0] = psi
    out[1] = kl
    out[2] = math.sqrt(max(js, 0.0) / (2.0 * math.log(2.0)))


@njit(cache=True, nogil=True)
def _numeric_stats(
    ref: np.ndarray,
    win: np.ndarray,
    n_bins: np.ndarray,
    bucket: np.ndarray,
    n_buckets: np.ndarray,
    ref_points: np.ndarray,
    win_points: np.ndarray,
    scale: np.ndarray,
    eps: float,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    # (i8[:, ::1], i8[:, ::1], i8[::1], i8[:, ::1], i8[::1], f8[:, ::1], f8[:, ::1],
    #  f8[::1], f8, f8[:, ::1])
    """All numeric drift statistics for all features of one model.

    Row ``f`` of ``ref``/``win`` holds the fine-bin counts of feature ``f`` in its first
    ``n_bins[f]`` entries; ``bucket[f, i]`` maps fine bin ``i`` to its PSI bucket. See
    :mod:`monitor.stats.drift` for the formulas. A feature with an empty side gets NaN.
    """
    n_features = ref.shape[0]
    width = ref.shape[1]
    p = np.zeros(width)
    q = np.zeros(width)
    div = np.zeros(3)
    for f in range(n_features):
        k = n_bins[f]
        n1 = 0
        n2 = 0
        for i in range(k):
            n1 += ref[f, i]
            n2 += win[f, i]
        out[f, NUM_N_REF] = n1
        out[f, NUM_N_WIN] = n2
        if n1 == 0 or n2 == 0:
            for c in range(NUM_N_REF):
                out[f, c] = math.nan
            continue
        # KS: sup over bin boundaries of |F1 - F2|, as an exact integer numerator.
        c1 = 0
        c2 = 0
        best = 0
        for i in range(k):
            c1 += ref[f, i]
            c2 += win[f, i]
            d = abs(c1 * n2 - c2 * n1)
            if d > best:
                best = d
        out[f, NUM_KS_NUM] = best
        out[f, NUM_KS_D] = best / (float(n1) * float(n2))
        # PSI, KL, JS over the PSI buckets (fine bins merged).
        nb = n_buckets[f]
        for j in range(nb):
            p[j] = 0.0
            q[j] = 0.0
        for i in range(k):
            p[bucket[f, i]] += ref[f, i]
            q[bucket[f, i]] += win[f, i]
        _divergences(p, q, nb, eps, div)
        out[f, NUM_PSI] = div[0]
        out[f, NUM_KL] = div[1]
        out[f, NUM_JS] = div[2]
        # Wasserstein-1: integral of |F - G| over the merged, sorted support points.
        i = 0
        j = 0
        cf = 0.0
        cg = 0.0
        prev = min(ref_points[f, 0], win_points[f, 0])
        w1 = 0.0
        while i < k or j < k:
            if j >= k or (i < k and ref_points[f, i] <= win_points[f, j]):
                x = ref_points[f, i]
                w1 += abs(cf - cg) * (x - prev)
                cf += ref[f, i] / n1
                i += 1
            else:
                x = win_points[f, j]
                w1 += abs(cf - cg) * (x - prev)
                cg += win[f, j] / n2
                j += 1
            prev = x
        out[f, NUM_W1] = w1
        out[f, NUM_W1_NORMED] = w1 / scale[f]


@njit(cache=True, nogil=True)
def _categorical_stats(
    ref: np.ndarray, win: np.ndarray, n_cats: np.ndarray, eps: float, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    # (i8[:, ::1], i8[:, ::1], i8[::1], f8, f8[:, ::1])
    """All categorical drift statistics (PSI, KL, JS, chi-square) for all features.

    Chi-square of homogeneity on the 2 x K' table (reference, window) after dropping the
    categories empty on both sides, with Yates' continuity correction when ``K' = 2``
    (one degree of freedom), as ``scipy.stats.chi2_contingency`` does by default.
    """
    n_features = ref.shape[0]
    width = ref.shape[1]
    p = np.zeros(width)
    q = np.zeros(width)
    div = np.zeros(3)
    for f in range(n_features):
        k = n_cats[f]
        n1 = 0
        n2 = 0
        kept = 0
        for i in range(k):
            n1 += ref[f, i]
            n2 += win[f, i]
            if ref[f, i] + win[f, i] > 0:
                kept += 1
        out[f, CAT_N_REF] = n1
        out[f, CAT_N_WIN] = n2
        if n1 == 0 or n2 == 0:
            for c in range(CAT_N_REF):
                out[f, c] = math.nan
            continue
        for i in range(k):
            p[i] = ref[f, i]
            q[i] = win[f, i]
        _divergences(p, q, k, eps, div)
        out[f, CAT_PSI] = div[0]
        out[f, CAT_KL] = div[1]
        out[f, CAT_JS] = div[2]
        dof = kept - 1
        total = float(n1 + n2)
        stat = 0.0
        if dof > 0:
            for i in range(k):
                col = ref[f, i] + win[f, i]
                if col == 0:
                    continue
                e1 = n1 * col / total
                e2 = n2 * col / total
                o1 = float(ref[f, i])
                o2 = float(win[f, i])
                if dof == 1:
                    # Yates: move each observed count towards its expectation by at most 1/2.
                    o1 += math.copysign(min(0.5, abs(e1 - o1)), e1 - o1)
                    o2 += math.copysign(min(0.5, abs(e2 - o2)), e2 - o2)
                stat += (o1 - e1) ** 2 / e1 + (o2 - e2) ** 2 / e2
        out[f, CAT_CHI2] = stat
        out[f, CAT_DOF] = dof


@njit(cache=True, nogil=True)
def _ks_equal_sf(n: int, h: int) -> float:  # pragma: no cover - compiled
    """``P(D_{n,n} >= h/n) = 2 sum_{k>=1} (-1)^(k+1) C(2n, n-kh) / C(2n, n)`` (Gnedenko and
    Korolyuk, 1951); each binomial ratio is a product of ``kh`` factors."""
    total = 0.0
    sign = 1.0
    a = h
    while a <= n:
        term = 1.0
        for j in range(a):
            term *= (n - j) / (n + 1.0 + j)
        if term == 0.0:
            break
        total += sign * term
        sign = -sign
        a += h
    return min(max(2.0 * total, 0.0), 1.0)


@njit(cache=True, nogil=True)
def _ks_unequal_sf(m: int, n: int, h: int) -> float:  # pragma: no cover - compiled
    """Share of the lattice paths (0, 0) -> (m, n) that leave the band ``|x n/g - y m/g| < h``
    (Hodges, 1958, "inside" method), carried as the share that has already left, which keeps
    small p-values accurate (Viehmann, 2021, arXiv:2102.08037). NaN if it fails."""
    if m < n:
        m, n = n, m
    g = math.gcd(m, n)
    mg = m // g
    ng = n // g
    # col[y]: share for (x, y); cells outside the band hold 1. Only the band is recomputed,
    # so a column costs O(band width), not O(n).
    col = np.ones(n + 1)
    for y in range(n + 1):
        if y * mg < h:
            col[y] = 0.0
    lo_prev = 0
    for x in range(1, m + 1):
        lo = max((x * ng - h) // mg + 1, 0)
        hi = min((x * ng + h - 1) // mg, n)
        if lo > n:
            return 1.0
        for y in range(lo_prev, lo):
            col[y] = 1.0
        lo_prev = lo
        for y in range(max(lo, 1), hi + 1):  # y = 0 is reached from the left only
            col[y] = (col[y] * x + col[y - 1] * y) / (x + y)
    p = col[n]
    return p if 0.0 <= p <= 1.0 else math.nan


@njit(cache=True, nogil=True)
def _ks_exact_sf(n1: np.ndarray, n2: np.ndarray, h: np.ndarray, out: np.ndarray) -> None:
    # (i8[::1], i8[::1], i8[::1], f8[::1])
    """Exact two-sided ``P(D_{m,n} >= h / lcm(m, n))`` of the two-sample KS statistic, per
    feature. NaN marks a failure; the caller then uses the asymptotic law, like scipy."""
    for f in range(n1.shape[0]):
        if h[f] <= 0:
            out[f] = 1.0
        elif n1[f] == n2[f]:
            out[f] = _ks_equal_sf(n1[f], h[f])
        else:
            out[f] = _ks_unequal_sf(n1[f], n2[f], h[f])
