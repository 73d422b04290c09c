"""The one Numba kernel an evaluation runs: the selected statistics, p-values and threshold
checks of every feature of a model (see :func:`monitor.stats.drift.evaluate`)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from monitor.stats.kernels import (
    CAT_CHI2,
    CAT_COLUMNS,
    CAT_DOF,
    CAT_JS,
    CAT_KL,
    CAT_N_REF,
    CAT_N_WIN,
    CAT_PSI,
    NUM_COLUMNS,
    NUM_JS,
    NUM_KL,
    NUM_KS_D,
    NUM_KS_NUM,
    NUM_N_REF,
    NUM_N_WIN,
    NUM_PSI,
    _categorical_row,
    _numeric_row,
    _w1_shared,
)
from monitor.stats.laws import _chi2_sf, ks_p_value_decided

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
    must be exact (:func:`monitor.stats.laws.ks_p_value_decided`). ``info`` row ``t``:
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
