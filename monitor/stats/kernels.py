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

from monitor.stats.ks_law import (  # re-exported: tests and drift read them here
    KS_EXACT_MAX_N as KS_EXACT_MAX_N,
)
from monitor.stats.ks_law import (
    SMIRNOV_MAX_N as SMIRNOV_MAX_N,
)
from monitor.stats.ks_law import (
    _kolmogorov_sf as _kolmogorov_sf,
)
from monitor.stats.ks_law import (
    _ks_equal_sf as _ks_equal_sf,
)
from monitor.stats.ks_law import (
    _ks_exact_sf as _ks_exact_sf,
)
from monitor.stats.ks_law import (
    _ks_limit_sf as _ks_limit_sf,
)
from monitor.stats.ks_law import (
    _ks_p_value as _ks_p_value,
)
from monitor.stats.ks_law import (
    _ks_p_values as _ks_p_values,
)
from monitor.stats.ks_law import (
    _ks_unequal_sf as _ks_unequal_sf,
)
from monitor.stats.ks_law import (
    _smirnov_sf as _smirnov_sf,
)
from monitor.stats.ks_law import (
    ks_p_value_decided as ks_p_value_decided,
)

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

# Per-feature values that ``_evaluate_model`` reports and checks against thresholds.
V_PSI = 0
V_KS = 1
V_KL = 2
V_JS = 3
V_WASSERSTEIN = 4
V_CHI2 = 5
V_KS_P = 6
V_CHI2_P = 7
V_MISSING = 8  # window missing share minus the reference's
V_COLUMNS = 9


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


@njit(cache=True, nogil=True)
def _gammaincc(a: float, x: float) -> float:  # pragma: no cover - compiled
    """Regularized upper incomplete gamma ``Q(a, x) = Gamma(a, x) / Gamma(a)``, ``a > 0``.

    ``x < a + 1``: ``1 - P(a, x)`` with ``P`` from its power series
    ``x^a e^-x / Gamma(a + 1) sum_k x^k / ((a + 1) ... (a + k))`` (then ``Q >= 0.3``,
    so the subtraction costs no relative accuracy); otherwise the continued fraction of
    ``Q`` evaluated with the modified Lentz method (Press et al., Numerical Recipes, 3rd ed.,
    section 6.2). The prefactor is taken in log space, so ``Q`` underflows only where it
    is below the smallest double.
    """
    if not (a == a and x == x) or a <= 0.0:
        return math.nan
    if x <= 0.0:
        return 1.0
    if x == math.inf:
        return 0.0
    log_pre = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        term = 1.0 / a
        total = term
        ap = a
        for _ in range(10_000):
            ap += 1.0
            term *= x / ap
            total += term
            if term < total * 1e-17:
                break
        return max(1.0 - math.exp(log_pre + math.log(total)), 0.0)
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < tiny:
            d = tiny
        c = b + an / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return math.exp(log_pre + math.log(h))


@njit(cache=True, nogil=True)
def _chi2_sf(dof: float, stat: float) -> float:  # pragma: no cover - compiled
    """``P(X >= stat)`` for ``X ~ chi-square(dof)``: ``Q(dof / 2, stat / 2)``; 1 for
    ``dof <= 0`` (a table with one non-empty column carries no evidence), NaN stays NaN."""
    if not (dof == dof and stat == stat):
        return math.nan
    if dof <= 0.0:
        return 1.0
    return _gammaincc(0.5 * dof, 0.5 * stat)


# Bits of ``plan[t, 4]``: what ``_evaluate_model`` computes for feature ``t`` (only what
# its selected tests need).
NEED_KS = 1  # the KS statistic
NEED_KS_P = 2  # and its p-value
NEED_DIV = 4  # PSI, KL and JS
NEED_W1 = 8  # Wasserstein
NEED_CHI2 = 16  # chi-square statistic and p-value
PLAN_HEAD = 5  # [row, n_scores, n_p_values, n_checks, needs]


@njit(cache=True, nogil=True, inline="always")
def _numeric_values(
    ref_num: np.ndarray,
    win_num: np.ndarray,
    n_bins: np.ndarray,
    bucket: np.ndarray,
    n_buckets: np.ndarray,
    mids: np.ndarray,
    ref_points: np.ndarray,
    first_edge: np.ndarray,
    last_edge: np.ndarray,
    scale: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    r: int,
    need: int,
    ks_limit: float,
    eps: float,
    p: np.ndarray,
    q: np.ndarray,
    div: np.ndarray,
    num: np.ndarray,
    vals: np.ndarray,
) -> tuple[float, float, bool]:  # pragma: no cover - compiled
    """The ``V_*`` values numeric row ``r`` needs into ``vals``; (count, missing, enough)."""
    k = n_bins[r]
    enough = _numeric_row(
        ref_num, win_num, r, k, bucket, n_buckets[r], p, q, div, eps, num,
        (need & (NEED_KS | NEED_KS_P)) != 0, (need & NEED_DIV) != 0,
    )  # fmt: skip
    n = num[r, NUM_N_WIN]
    if enough:
        if need & NEED_DIV:
            vals[V_PSI] = num[r, NUM_PSI]
            vals[V_KL] = num[r, NUM_KL]
            vals[V_JS] = num[r, NUM_JS]
        if need & (NEED_KS | NEED_KS_P):
            vals[V_KS] = num[r, NUM_KS_D]
        if need & NEED_KS_P:
            vals[V_KS_P] = ks_p_value_decided(
                num[r, NUM_KS_D], num[r, NUM_KS_NUM], int(num[r, NUM_N_REF]), int(n), ks_limit
            )
        if need & NEED_W1:
            w1 = _w1_shared(
                ref_num, win_num, r, k, mids, ref_points, first_edge, last_edge, low, high,
                1.0 / num[r, NUM_N_REF], 1.0 / n,
            )  # fmt: skip
            vals[V_WASSERSTEIN] = w1 / scale[r]
    return n, float(win_num[r, win_num.shape[1] - 1]), enough


@njit(cache=True, nogil=True, inline="always")
def _categorical_values(
    ref_cat: np.ndarray,
    win_cat: np.ndarray,
    n_cats: np.ndarray,
    r: int,
    need: int,
    eps: float,
    p: np.ndarray,
    q: np.ndarray,
    div: np.ndarray,
    cat: np.ndarray,
    vals: np.ndarray,
) -> tuple[float, float, bool]:  # pragma: no cover - compiled
    """The ``V_*`` values categorical row ``r`` needs into ``vals``; (count, missing,
    enough)."""
    _categorical_row(
        ref_cat, win_cat, r, n_cats[r], p, q, div, eps, cat,
        (need & NEED_DIV) != 0, (need & NEED_CHI2) != 0,
    )  # fmt: skip
    n = cat[r, CAT_N_WIN]
    enough = n > 0 and cat[r, CAT_N_REF] > 0
    if enough:
        if need & NEED_DIV:
            vals[V_PSI] = cat[r, CAT_PSI]
            vals[V_KL] = cat[r, CAT_KL]
            vals[V_JS] = cat[r, CAT_JS]
        if need & NEED_CHI2:
            vals[V_CHI2] = cat[r, CAT_CHI2]
            vals[V_CHI2_P] = _chi2_sf(cat[r, CAT_DOF], cat[r, CAT_CHI2])
    return n, float(win_cat[r, win_cat.shape[1] - 1]), enough


@njit(cache=True, nogil=True)
def _evaluate_model(
    ref_num: np.ndarray,
    win_num: np.ndarray,
    n_bins: np.ndarray,
    bucket: np.ndarray,
    n_buckets: np.ndarray,
    mids: np.ndarray,
    ref_points: np.ndarray,
    first_edge: np.ndarray,
    last_edge: np.ndarray,
    scale: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    ref_cat: np.ndarray,
    win_cat: np.ndarray,
    n_cats: np.ndarray,
    ref_missing: np.ndarray,
    events: int,
    eps: float,
    plan: np.ndarray,
    limits: np.ndarray,
    ks_limit: np.ndarray,
    info: np.ndarray,
    scores: np.ndarray,
    p_values: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """The selected statistics, p-values and threshold checks of one model, in one call.

    ``win_num``/``win_cat``: the window's summed counts, missing count in the last column;
    ``low``/``high``: its per-slot extremes (slots x numeric features). ``plan`` row ``t``
    (features in profile order) is ``[row, n_scores, n_p_values, n_checks, needs]``
    followed by three blocks as wide as ``scores``, ``p_values`` and ``limits``: the
    ``V_*`` value of each score, each p-value and each check. ``row`` is the numeric row,
    or ``n_numeric +`` the categorical row; ``needs`` the ``NEED_*`` bits of what to
    compute, so the cost is that of the selected tests only. Check ``c`` hits when its
    value is above ``limits[t, c]`` (a score) or below it (``V_KS_P``, ``V_CHI2_P``),
    both only with enough data; the missing-ratio check (``V_MISSING``) needs no data.
    ``ks_limit[t]``: the ``ks_p_value`` threshold (NaN for none), where the KS p-value
    must be exact (:func:`monitor.stats.ks_law.ks_p_value_decided`). ``info`` row ``t``:
    window count, missing ratio, enough data (1.0/0.0) and the bit mask of the checks hit.
    """
    nf = ref_num.shape[0]
    num = np.empty((max(nf, 1), NUM_COLUMNS))
    cat = np.empty((max(ref_cat.shape[0], 1), CAT_COLUMNS))
    width = max(ref_num.shape[1], ref_cat.shape[1], 1)
    p = np.zeros(width)
    q = np.zeros(width)
    div = np.zeros(3)
    ws = scores.shape[1]
    wp = p_values.shape[1]
    vals = np.empty(V_COLUMNS)
    for t in range(plan.shape[0]):
        for c in range(V_COLUMNS):
            vals[c] = math.nan
        r = plan[t, 0]
        if r < nf:
            n, missing, enough = _numeric_values(
                ref_num, win_num, n_bins, bucket, n_buckets, mids, ref_points, first_edge,
                last_edge, scale, low, high, r, plan[t, 4], ks_limit[t], eps, p, q, div, num,
                vals,
            )  # fmt: skip
        else:
            n, missing, enough = _categorical_values(
                ref_cat, win_cat, n_cats, r - nf, plan[t, 4], eps, p, q, div, cat, vals
            )
        ratio = missing / events if events > 0 else math.nan
        vals[V_MISSING] = ratio - ref_missing[t]
        h = PLAN_HEAD
        for j in range(ws):
            scores[t, j] = vals[plan[t, h + j]] if j < plan[t, 1] else math.nan
        for j in range(wp):
            p_values[t, j] = vals[plan[t, h + ws + j]] if j < plan[t, 2] else math.nan
        mask = 0
        for j in range(plan[t, 3]):
            col = plan[t, h + ws + wp + j]
            value = vals[col]
            if col == V_MISSING:
                hit = value > limits[t, j]
            elif col == V_KS_P or col == V_CHI2_P:
                hit = enough and value < limits[t, j]
            else:
                hit = enough and value > limits[t, j]
            if hit:
                mask |= 1 << j
        info[t, 0] = n
        info[t, 1] = ratio
        info[t, 2] = 1.0 if enough else 0.0
        info[t, 3] = mask
