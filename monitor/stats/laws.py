"""The null laws behind the p-values, in Numba: the two-sample Kolmogorov-Smirnov law (the
exact distribution, the one-sample limits scipy uses above the exact range, and the p-value
an evaluation reports) and the chi-square survival function.

:func:`monitor.stats.drift.ks_p_values` gives the scipy-equal KS p-value;
:func:`ks_p_value_decided` is what :func:`monitor.stats.drift.evaluate` reports: exact only
where it is cheap or where the decision depends on it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


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


# ---------------------------------------------------------------------------- p-values

KS_EXACT_MAX_N = 10_000  # exact two-sample law up to this sample size, as scipy's "auto"
SMIRNOV_MAX_N = 10_000  # exact one-sample Smirnov sum up to this effective size
_KOLMOGOROV_CUTOVER = 0.82  # below it the Jacobi-theta form of the CDF converges faster


@njit(cache=True, nogil=True)
def _kolmogorov_sf(x: float) -> float:  # pragma: no cover - compiled
    """Kolmogorov's limiting survival function ``Q(x) = P(sqrt(n) D_n >= x)``, n -> inf.

    ``Q(x) = 2 sum_{k>=1} (-1)^(k-1) exp(-2 k^2 x^2)`` for ``x > 0.82``; below, ``1 - K(x)``
    with ``K(x) = sqrt(2 pi) / x sum_{k>=1} exp(-(2k-1)^2 pi^2 / (8 x^2))`` (Kolmogorov,
    1933; the same two series and cut-over as ``scipy.special.kolmogorov``).
    """
    if not x == x:
        return math.nan
    if x <= 0.0:
        return 1.0
    if x <= _KOLMOGOROV_CUTOVER:
        w = -(math.pi * math.pi) / (8.0 * x * x)
        cdf = 0.0
        k = 1
        while True:
            term = math.exp(w * (2 * k - 1) * (2 * k - 1))
            cdf += term
            if term <= cdf * 1e-17:
                break
            k += 1
        return 1.0 - math.sqrt(2.0 * math.pi) / x * cdf
    sf = 0.0
    sign = 1.0
    k = 1
    while True:
        term = math.exp(-2.0 * k * k * x * x)
        sf += sign * term
        if term <= abs(sf) * 1e-17 or term == 0.0:
            break
        sign = -sign
        k += 1
    return min(max(2.0 * sf, 0.0), 1.0)


@njit(cache=True, nogil=True)
def _smirnov_sf(n: int, x: float) -> float:  # pragma: no cover - compiled
    """Exact one-sided ``P(D_n^+ >= x)`` (Smirnov, 1944; Birnbaum and Tingey, 1951)::

        x sum_{j=0}^{floor(n (1 - x))} C(n, j) (x + j/n)^(j-1) (1 - x - j/n)^(n-j)

    Every term is positive, so the sum is taken term by term in log space with no
    cancellation (relative error about ``n`` ulps). The terms rise to one peak and then
    fall; the sum stops past the peak once a term is below ``e^-50`` of it.
    """
    if not x == x:
        return math.nan
    if x <= 0.0:
        return 1.0
    if x >= 1.0:
        return 0.0
    last = int(math.floor(n * (1.0 - x)))
    total = 0.0
    log_binom = 0.0  # log C(n, j)
    peak = -math.inf
    for j in range(last + 1):
        if j > 0:
            log_binom += math.log((n - j + 1) / j)
        up = x + j / n
        down = (n - j) / n - x
        if down <= 0.0:
            break
        t = log_binom + (j - 1) * math.log(up) + (n - j) * math.log(down)
        if t > peak:
            peak = t
        elif t < peak - 50.0:  # past the peak: the rest adds < n e^-50 of the sum
            break
        if t > -745.0:  # exp underflows to 0 below
            total += math.exp(t)
    return min(max(x * total, 0.0), 1.0)


@njit(cache=True, nogil=True)
def _ks_limit_sf(d: float, n: float) -> float:  # pragma: no cover - compiled
    """Two-sided one-sample ``P(D_n >= d)`` at effective size ``n`` (``kstwo.sf``) for
    two-sample p-values above the exact range; see :func:`monitor.stats.drift.ks_p_values`.
    """
    if not (d == d and n == n):
        return math.nan
    sq = math.sqrt(n)
    t = n * d
    nx2 = t * d
    if d >= 1.0:
        return 0.0
    if t <= 0.5:
        return 1.0
    if t >= n - 1.0:  # Ruben and Gambino (1982): exact near the top of the range
        return min(2.0 * math.pow(1.0 - d, n), 1.0)
    if n > 140 and nx2 >= 370.0:
        return 0.0
    closed = nx2 >= (4.0 if n <= 140 else 2.2) or d >= 0.5
    if closed and n <= SMIRNOV_MAX_N and nx2 < 370.0:
        return min(2.0 * _smirnov_sf(int(n), d), 1.0)
    return _kolmogorov_sf(d * (sq + 0.12 + 0.11 / sq))  # Stephens (1970)


@njit(cache=True, nogil=True)
def _ks_p_value(d: float, num: float, n1: int, n2: int) -> float:  # pragma: no cover
    """Two-sided p-value of the two-sample KS statistic ``d = num / (n1 n2)``, as
    ``scipy.stats.ks_2samp``: the exact law up to ``KS_EXACT_MAX_N`` (NaN from it falls
    back to the limit, as scipy's does), else :func:`_ks_limit_sf` at
    ``n_e = round(n1 n2 / (n1 + n2))``."""
    if not d == d or n1 <= 0 or n2 <= 0:
        return math.nan
    p = math.nan
    if max(n1, n2) <= KS_EXACT_MAX_N:
        g = math.gcd(n1, n2)
        h = int(round(num / g))  # d * lcm(n1, n2), an exact integer
        if h <= 0:
            p = 1.0
        elif n1 == n2:
            p = _ks_equal_sf(n1, h)
        else:
            p = _ks_unequal_sf(n1, n2, h)
    if not p == p:
        p = _ks_limit_sf(d, float(round(n1 * n2 / (n1 + n2))))
    return min(max(p, 0.0), 1.0)


@njit(cache=True, nogil=True)
def _ks_p_values(
    d: np.ndarray, num: np.ndarray, n1: np.ndarray, n2: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    # (f8[::1], f8[::1], f8[::1], f8[::1], f8[::1])
    """:func:`_ks_p_value` over arrays (sample sizes held in float64)."""
    for f in range(d.shape[0]):
        if n1[f] == n1[f] and n2[f] == n2[f]:
            out[f] = _ks_p_value(d[f], num[f], int(n1[f]), int(n2[f]))
        else:
            out[f] = math.nan


# ------------------------------------------------------------- the evaluation's p-value

#: Below this effective size ``n1 n2 / (n1 + n2)`` the evaluation always takes the
#: scipy-equal p-value: the error bound below was established from it upwards.
KS_APPROX_MIN_NE = 200.0
#: Error bound of the approximation ``a`` (Stephens-corrected Kolmogorov limit) against the
#: scipy-equal p-value ``e`` for ``n_e >= KS_APPROX_MIN_NE``: ``e <= KS_APPROX_FACTOR * a``
#: always, and ``e >= a / KS_APPROX_FACTOR`` where ``a >= KS_APPROX_MIN_P``. Measured worst
#: cases for n_e 200-5,000 (sizes 400-10,000: a grid of lattice statistics, and random sizes in
#: tests/unit/stats/test_laws.py): ``0.98 <= e / a <= 1.25`` (``e <= 1.25 a`` in the far tail).
KS_APPROX_FACTOR = 1.5
KS_APPROX_MIN_P = 1e-12
#: The exact law is taken whenever its lattice walk is at most this many cells (a few us).
KS_CHEAP_CELLS = 4096.0


@njit(cache=True, nogil=True)
def _ks_exact_cells(num: float, n1: int, n2: int) -> float:  # pragma: no cover - compiled
    """Cells the scipy-equal p-value visits: ``2 num`` for Hodges' band walk (``num = d n1
    n2``), ``n^2 / 2h`` terms for Gnedenko-Korolyuk (``h = d n``, at most ``27 sqrt(n)``
    of them before they underflow); inf above the exact range (the Smirnov sum)."""
    if max(n1, n2) > KS_EXACT_MAX_N:
        return math.inf
    if n1 != n2:
        return 2.0 * num
    h = max(num / n1, 1.0)
    top = min(float(n1), 27.0 * math.sqrt(n1))
    return top * top / (2.0 * h)


@njit(cache=True, nogil=True)
def ks_p_value_decided(d: float, num: float, n1: int, n2: int, limit: float) -> float:
    # pragma: no cover - compiled
    """The KS p-value an evaluation reports, at a cost independent of the sample sizes.

    The scipy-equal :func:`_ks_p_value` where it is cheap (:data:`KS_CHEAP_CELLS`), for
    ``n_e < KS_APPROX_MIN_NE``, and where the decision against ``limit`` (the feature's
    ``ks_p_value`` threshold; NaN for none) depends on it; elsewhere the approximation
    ``Q(d (sqrt(n_e) + 0.12 + 0.11 / sqrt(n_e)))`` (Stephens, 1970), which by the bound
    of :data:`KS_APPROX_FACTOR` lands on the same side of ``limit`` as the exact value.
    """
    if not d == d or n1 <= 0 or n2 <= 0:
        return math.nan
    ne = n1 * n2 / (n1 + n2)
    if ne < KS_APPROX_MIN_NE or _ks_exact_cells(num, n1, n2) <= KS_CHEAP_CELLS:
        return _ks_p_value(d, num, n1, n2)
    sq = math.sqrt(ne)
    a = _kolmogorov_sf(d * (sq + 0.12 + 0.11 / sq))
    if limit == limit:
        below = limit > KS_APPROX_FACTOR * a  # exact <= 1.5 a < limit: a hit either way
        above = a >= KS_APPROX_MIN_P and limit * KS_APPROX_FACTOR < a  # exact > limit
        if not (below or above):
            return _ks_p_value(d, num, n1, n2)
    return a


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


# ---------------------------------------------------------------------------- numpy API


def ks_p_values(d: np.ndarray, num: np.ndarray, n1: np.ndarray, n2: np.ndarray) -> np.ndarray:
    """Two-sided p-values of the two-sample KS test, as ``scipy.stats.ks_2samp``.

    ``d``: statistics; ``num``: their exact numerators ``d n1 n2``; ``n1``/``n2``: sample
    sizes (float arrays; NaN gives NaN). Computed in Numba (``_ks_p_value``):

    * ``max(n1, n2) <= 10000``: the exact distribution (Gnedenko and Korolyuk for equal
      sizes, Hodges' lattice-path count otherwise), as scipy's ``method="auto"``;
    * otherwise the one-sample distribution of D at ``n_e = round(n1 n2 / (n1 + n2))``
      that scipy uses (``kstwo``). Where scipy takes closed forms, so does this: for
      ``n_e <= 10,000``, ``2 * smirnov(n_e, D)`` for ``n_e D^2 >= 2.2`` (``>= 4`` when
      ``n_e <= 140``) with the exact one-sided Smirnov sum (``_smirnov_sf``,
      about 1e-11 relative to scipy and 50-200x faster), 0 above ``n_e D^2 = 370``, and
      the Ruben-Gambino forms at the ends: the same numbers. Elsewhere scipy runs Durbin's
      matrix algorithm (20-100 ms per call); this uses the Kolmogorov limit with Stephens'
      (1970) finite-n correction, ``Q(D (sqrt(n_e) + 0.12 + 0.11 / sqrt(n_e)))``: within
      0.005 absolute of scipy where ``p > 0.02`` (0.02 for ``n_e < 1000``), and within
      10 % relative below that down to ``p = 1e-10`` for ``n_e > 10,000`` (e.g. 0.00105
      for 0.001), and below 1e-9 where scipy is below 1e-10. Features flagged at the usual
      thresholds are the same as scipy's (checked in the tests and the benchmark).

    >>> ks_p_values(np.array([0.0, 0.5]), np.array([0.0, 100.0]), np.array([10.0, 10.0]),
    ...             np.array([20.0, 20.0])).round(6).tolist()  # exact law, as ks_2samp
    [1.0, 0.062289]
    """
    d, num, n1, n2 = (np.ascontiguousarray(a, dtype=np.float64) for a in (d, num, n1, n2))
    out = np.empty(d.shape[0])
    _ks_p_values(d, num, n1, n2, out)
    return out


def chi2_p_values(stat: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """``P(X >= stat)`` for ``X ~ chi-square(dof)``, the regularized upper incomplete
    gamma ``Q(dof / 2, stat / 2)`` (``scipy.special.chdtrc``, to about 1e-12 relative),
    computed in Numba; 1 where ``dof <= 0``.

    >>> chi2_p_values(np.array([3.841458820694124, 0.0]), np.array([1.0, 0.0])).round(9)
    array([0.05, 1.  ])
    """
    out = np.empty(np.shape(stat))
    for i, (s, k) in enumerate(zip(np.asarray(stat, float), np.asarray(dof, float), strict=True)):
        out[i] = _chi2_sf(float(k), float(s))
    return out
