"""Private Numba kernels of the statistics engine.

Every kernel takes contiguous ``float64``/``int64`` arrays and scalars only, does no argument
checking and is called once per evaluation or calibration draw, never per event or per feature
(the binning kernels, called once per batch, are in :mod:`monitor.stats.binning`; the
evaluation kernel in :mod:`monitor.stats.evaluation_kernel`; the null laws in
:mod:`monitor.stats.laws`). The typed wrappers in :mod:`monitor.stats.window` and
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
    isp = 1.0 / sp
    isq = 1.0 / sq
    fp = 0.0
    fq = 0.0
    for i in range(k):
        fp += max(p[i] * isp, eps)
        fq += max(q[i] * isq, eps)
    psi = 0.0
    kl = 0.0
    js = 0.0
    for i in range(k):
        u = p[i] * isp
        v = q[i] * isq
        a = max(u, eps) / fp
        b = max(v, eps) / fq
        log_ba = math.log(b / a)
        psi += (b - a) * log_ba
        kl -= a * log_ba
        m = 0.5 * (u + v)
        if u > 0.0:
            js += u * math.log(u / m)
        if v > 0.0:
            js += v * math.log(v / m)
    out[0] = psi
    out[1] = kl
    out[2] = math.sqrt(max(js, 0.0) / (2.0 * math.log(2.0)))


@njit(cache=True, nogil=True, inline="always")
def _numeric_row(
    ref: np.ndarray,
    win: np.ndarray,
    f: int,
    k: int,
    bucket: np.ndarray,
    nb: int,
    p: np.ndarray,
    q: np.ndarray,
    div: np.ndarray,
    eps: float,
    out: np.ndarray,
    need_ks: bool = True,
    need_div: bool = True,
) -> bool:  # pragma: no cover - compiled
    """Sample sizes, KS (``need_ks``), PSI, KL and JS (``need_div``) of numeric row ``f``
    into ``out[f]``; False (and NaN statistics) when a side is empty. Wasserstein is left
    to the caller. Statistics not needed are left as they are."""
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
        return False
    if need_ks:
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
    if not need_div:
        return True
    # PSI, KL, JS over the PSI buckets (fine bins merged).
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
    return True


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
    """All numeric drift statistics for all features of one model, for any two sorted
    rows of support points (the general merge; :func:`_numeric_stats_shared` is the fast
    path for the profile's own points).

    Row ``f`` of ``ref``/``win`` holds the fine-bin counts of feature ``f`` in its first
    ``n_bins[f]`` entries (``win`` may carry more columns, e.g. the missing count);
    ``bucket[f, i]`` maps fine bin ``i`` to its PSI bucket. See :mod:`monitor.stats.drift`
    for the formulas. A feature with an empty side gets NaN.
    """
    n_features = ref.shape[0]
    width = ref.shape[1]
    p = np.zeros(width)
    q = np.zeros(width)
    div = np.zeros(3)
    for f in range(n_features):
        k = n_bins[f]
        if not _numeric_row(ref, win, f, k, bucket, n_buckets[f], p, q, div, eps, out):
            continue
        # Wasserstein-1: integral of |F - G| over the merged, sorted support points.
        i = 0
        j = 0
        cf = 0.0
        cg = 0.0
        in1 = 1.0 / out[f, NUM_N_REF]
        in2 = 1.0 / out[f, NUM_N_WIN]
        prev = min(ref_points[f, 0], win_points[f, 0])
        w1 = 0.0
        while i < k or j < k:
            if j >= k or (i < k and ref_points[f, i] <= win_points[f, j]):
                x = ref_points[f, i]
                w1 += abs(cf - cg) * (x - prev)
                cf += ref[f, i] * in1
                i += 1
            else:
                x = win_points[f, j]
                w1 += abs(cf - cg) * (x - prev)
                cg += win[f, j] * in2
                j += 1
            prev = x
        out[f, NUM_W1] = w1
        out[f, NUM_W1_NORMED] = w1 / scale[f]


@njit(cache=True, nogil=True, inline="always")
def _w1_shared(
    ref: np.ndarray,
    win: np.ndarray,
    f: int,
    k: int,
    mids: np.ndarray,
    ref_points: np.ndarray,
    first_edge: np.ndarray,
    last_edge: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    in1: float,
    in2: float,
) -> float:  # pragma: no cover - compiled
    """Wasserstein-1 of numeric row ``f`` on the profile's support points, one pass (see
    :func:`_numeric_stats_shared`); ``in1``/``in2``: the reciprocal sample sizes."""
    lo = math.inf
    hi = -math.inf
    for s in range(low.shape[0]):
        lo = min(lo, low[s, f])
        hi = max(hi, high[s, f])
    seen = lo < math.inf
    if k == 1:
        w_first = 0.5 * (lo + hi) if seen else first_edge[f]
        w_last = w_first
    else:
        w_first = min(lo, first_edge[f]) if seen else first_edge[f]
        w_last = max(hi, last_edge[f]) if seen else last_edge[f]
    cf = 0.0
    cg = 0.0
    w1 = 0.0
    # left outer points (the only points of a one-bin feature)
    r = ref_points[f, 0]
    if r <= w_first:
        cf += ref[f, 0] * in1
        w1 += abs(cf - cg) * (w_first - r)
        cg += win[f, 0] * in2
        prev = w_first
    else:
        cg += win[f, 0] * in2
        w1 += abs(cf - cg) * (r - w_first)
        cf += ref[f, 0] * in1
        prev = r
    if k > 1:
        for i in range(1, k - 1):
            x = mids[f, i]
            w1 += abs(cf - cg) * (x - prev)
            cf += ref[f, i] * in1
            cg += win[f, i] * in2
            prev = x
        r = ref_points[f, k - 1]
        if r <= w_last:
            w1 += abs(cf - cg) * (r - prev)
            cf += ref[f, k - 1] * in1
            w1 += abs(cf - cg) * (w_last - r)
        else:
            w1 += abs(cf - cg) * (w_last - prev)
            cg += win[f, k - 1] * in2
            w1 += abs(cf - cg) * (r - w_last)
    return float(w1)


@njit(cache=True, nogil=True)
def _numeric_stats_shared(
    ref: np.ndarray,
    win: np.ndarray,
    n_bins: np.ndarray,
    bucket: np.ndarray,
    n_buckets: np.ndarray,
    mids: np.ndarray,
    ref_points: np.ndarray,
    first_edge: np.ndarray,
    last_edge: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    scale: np.ndarray,
    eps: float,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    # (i8[:, ::1], i8[:, ::1], i8[::1], i8[:, ::1], i8[::1], f8[:, ::1], f8[:, ::1],
    #  f8[::1], f8[::1], f8[:, ::1], f8[:, ::1], f8[::1], f8, f8[:, ::1])
    """:func:`_numeric_stats` on the profile's support points, Wasserstein in one pass.

    The window's support points are the profile's bin midpoints ``mids`` with the outer
    bins at the window's smallest and largest finite value, widened to the outer edges (a
    one-bin feature at the window's midrange); ``low``/``high`` are its per-slot extremes
    (slots x features). The reference's points (``ref_points``) share every interior point,
    and both sides' outer points lie outside ``[e_0, e_{k-1}]``, which holds the interior
    ones. So the sorted merge is: the two left outer points in order, then each interior
    point once (reference and window mass together), then the two right outer points.
    Where the general merge meets equal points it adds ``|F - G| * 0``, an exact no-op,
    so the result is bit-identical to :func:`_numeric_stats` on the same points.
    """
    n_features = ref.shape[0]
    width = ref.shape[1]
    p = np.zeros(width)
    q = np.zeros(width)
    div = np.zeros(3)
    for f in range(n_features):
        k = n_bins[f]
        if not _numeric_row(ref, win, f, k, bucket, n_buckets[f], p, q, div, eps, out):
            continue
        w1 = _w1_shared(
            ref, win, f, k, mids, ref_points, first_edge, last_edge, low, high,
            1.0 / out[f, NUM_N_REF], 1.0 / out[f, NUM_N_WIN],
        )  # fmt: skip
        out[f, NUM_W1] = w1
        out[f, NUM_W1_NORMED] = w1 / scale[f]


@njit(cache=True, nogil=True, inline="always")
def _categorical_row(
    ref: np.ndarray,
    win: np.ndarray,
    f: int,
    k: int,
    p: np.ndarray,
    q: np.ndarray,
    div: np.ndarray,
    eps: float,
    out: np.ndarray,
    need_div: bool = True,
    need_chi2: bool = True,
) -> None:  # pragma: no cover - compiled
    """Sample sizes, PSI, KL and JS (``need_div``) and chi-square (``need_chi2``) of
    categorical row ``f`` into ``out[f]`` (see :func:`_categorical_stats`)."""
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
        return
    if need_div:
        for i in range(k):
            p[i] = ref[f, i]
            q[i] = win[f, i]
        _divergences(p, q, k, eps, div)
        out[f, CAT_PSI] = div[0]
        out[f, CAT_KL] = div[1]
        out[f, CAT_JS] = div[2]
    if not need_chi2:
        return
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
        _categorical_row(ref, win, f, n_cats[f], p, q, div, eps, out)
