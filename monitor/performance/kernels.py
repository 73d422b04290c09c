"""Private Numba kernels of performance monitoring.

Every kernel takes contiguous ``float64``/``int64`` arrays and scalars only, does no argument
checking and runs once per evaluated window, never per event. The typed wrappers in
:mod:`monitor.performance.metrics` and :mod:`monitor.performance.estimate` validate and
prepare the inputs. ``fastmath`` is off: the realised metrics are compared against
scikit-learn to a few ulps, and NaN keeps its IEEE meaning (an undefined metric).

Output layouts are fixed by the ``BIN_*`` and ``MC_*`` indices below.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Columns of the ``_binary_metrics`` output.
BIN_ACCURACY = 0
BIN_PRECISION = 1
BIN_RECALL = 2
BIN_F1 = 3
BIN_ROC_AUC = 4
BIN_LOG_LOSS = 5
BIN_COLUMNS = 6

# Columns of the ``_multiclass_metrics`` and ``_expected_multiclass`` outputs.
MC_ACCURACY = 0
MC_PRECISION = 1
MC_RECALL = 2
MC_F1 = 3
MC_LOG_LOSS = 4  # realised only
MC_ROC_AUC = 4  # expected only (macro one-vs-rest)
MC_COLUMNS = 5


@njit(cache=True, nogil=True)
def _rank_auc(y: np.ndarray, s: np.ndarray) -> float:  # pragma: no cover - compiled
    """ROC AUC of scores ``s`` for 0/1 labels ``y`` by sort and mid-ranks.

    The Mann-Whitney form ``(R1 - n1 (n1 + 1) / 2) / (n1 n0)``, with tied scores given the
    mean of their ranks, equals the trapezoidal area under the ROC curve that scikit-learn
    computes (ties become diagonal segments). NaN when one class is absent.
    """
    n = s.shape[0]
    order = np.argsort(s, kind="mergesort")
    n1 = 0.0
    for i in range(n):
        n1 += y[i]
    n0 = n - n1
    if n1 == 0.0 or n0 == 0.0:
        return math.nan
    r1 = 0.0
    i = 0
    while i < n:
        j = i
        v = s[order[i]]
        while j + 1 < n and s[order[j + 1]] == v:
            j += 1
        rank = 0.5 * (i + j) + 1.0  # mean of the 1-based ranks i+1 .. j+1
        pos = 0.0
        for t in range(i, j + 1):
            pos += y[order[t]]
        r1 += rank * pos
        i = j + 1
    return float((r1 - n1 * (n1 + 1.0) / 2.0) / (n1 * n0))


@njit(cache=True, nogil=True)
def _binary_metrics(
    y: np.ndarray, p: np.ndarray, threshold: float, eps: float, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    # (f8[::1], f8[::1], f8, f8, f8[::1])
    """Accuracy, precision, recall, F1, ROC AUC and log loss of positive-class scores.

    ``y`` holds 0.0/1.0; the predicted class is ``p >= threshold``. Zero divisions give 0
    (scikit-learn's ``zero_division=0``); log loss clips the probability of the true class
    to ``[eps, 1 - eps]`` as scikit-learn does.
    """
    n = y.shape[0]
    tp = 0.0
    fp = 0.0
    fn = 0.0
    tn = 0.0
    loss = 0.0
    for i in range(n):
        hat = p[i] >= threshold
        if y[i] == 1.0:
            if hat:
                tp += 1.0
            else:
                fn += 1.0
            q = p[i]
        else:
            if hat:
                fp += 1.0
            else:
                tn += 1.0
            q = 1.0 - p[i]
        loss -= math.log(min(max(q, eps), 1.0 - eps))
    out[BIN_ACCURACY] = (tp + tn) / n
    out[BIN_PRECISION] = tp / (tp + fp) if tp + fp > 0.0 else 0.0
    out[BIN_RECALL] = tp / (tp + fn) if tp + fn > 0.0 else 0.0
    out[BIN_F1] = 2.0 * tp / (2.0 * tp + fp + fn) if tp + fp + fn > 0.0 else 0.0
    out[BIN_ROC_AUC] = _rank_auc(y, p)
    out[BIN_LOG_LOSS] = loss / n


@njit(cache=True, nogil=True)
def _multiclass_metrics(
    y: np.ndarray, hat: np.ndarray, proba: np.ndarray, k: int, eps: float, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    # (i8[::1], i8[::1], f8[:, ::1], i8, f8, f8[::1])
    """Accuracy, macro precision/recall/F1 and log loss of class predictions ``hat``.

    Macro averages run over the classes present in ``y`` or ``hat`` (scikit-learn's
    default label set); per-class zero divisions give 0. ``proba`` has ``k`` columns, or
    zero columns when only hard predictions exist (log loss is then NaN).
    """
    n = y.shape[0]
    tp = np.zeros(k)
    pred = np.zeros(k)
    true = np.zeros(k)
    correct = 0.0
    loss = 0.0
    with_proba = proba.shape[1] == k
    for i in range(n):
        a = y[i]
        b = hat[i]
        true[a] += 1.0
        pred[b] += 1.0
        if a == b:
            tp[a] += 1.0
            correct += 1.0
        if with_proba:
            loss -= math.log(min(max(proba[i, a], eps), 1.0 - eps))
    present = 0.0
    sp = 0.0
    sr = 0.0
    sf = 0.0
    for c in range(k):
        if true[c] == 0.0 and pred[c] == 0.0:
            continue
        present += 1.0
        sp += tp[c] / pred[c] if pred[c] > 0.0 else 0.0
        sr += tp[c] / true[c] if true[c] > 0.0 else 0.0
        sf += 2.0 * tp[c] / (pred[c] + true[c])
    out[MC_ACCURACY] = correct / n
    out[MC_PRECISION] = sp / present
    out[MC_RECALL] = sr / present
    out[MC_F1] = sf / present
    out[MC_LOG_LOSS] = loss / n if with_proba else math.nan


@njit(cache=True, nogil=True)
def _ovr_auc(y: np.ndarray, proba: np.ndarray, k: int) -> float:  # pragma: no cover - compiled
    # (i8[::1], f8[:, ::1], i8)
    """Macro one-vs-rest ROC AUC of probability rows, as scikit-learn's
    ``roc_auc_score(multi_class="ovr")``: the mean over classes of the binary AUC of
    column ``c`` for ``y == c``. NaN when a class is absent from ``y`` (its AUC is
    undefined; scikit-learn refuses the window).
    """
    n = y.shape[0]
    total = 0.0
    for c in range(k):
        yc = np.zeros(n)
        for i in range(n):
            if y[i] == c:
                yc[i] = 1.0
        auc = _rank_auc(yc, np.ascontiguousarray(proba[:, c]))
        if math.isnan(auc):
            return math.nan
        total += auc
    return total / k


@njit(cache=True, nogil=True)
def _pav(y: np.ndarray, w: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Isotonic (non-decreasing) least-squares fit of ``y`` with weights ``w``.

    Pool-adjacent-violators over values already ordered by the predictor: blocks are
    merged while a block's mean exceeds the next one's. Returns the fitted value per input.
    """
    n = y.shape[0]
    mean = np.empty(n)
    weight = np.empty(n)
    size = np.empty(n, np.int64)
    top = -1
    for i in range(n):
        top += 1
        mean[top] = y[i]
        weight[top] = w[i]
        size[top] = 1
        while top > 0 and mean[top - 1] >= mean[top]:
            total = weight[top - 1] + weight[top]
            mean[top - 1] = (mean[top - 1] * weight[top - 1] + mean[top] * weight[top]) / total
            weight[top - 1] = total
            size[top - 1] += size[top]
            top -= 1
    fitted = np.empty(n)
    pos = 0
    for b in range(top + 1):
        for _ in range(size[b]):
            fitted[pos] = mean[b]
            pos += 1
    return fitted


@njit(cache=True, nogil=True)
def _expected_auc(c: np.ndarray, s: np.ndarray) -> float:  # pragma: no cover - compiled
    """Expected ROC AUC when row ``i`` is positive with probability ``c[i]``.

    Sorting by score, the expected positives and negatives at and above every distinct
    score trace an expected ROC curve; its trapezoidal area is returned (tied scores make
    one diagonal step). NaN when the expected count of either class is zero.
    """
    n = s.shape[0]
    order = np.argsort(-s, kind="mergesort")
    pos = 0.0
    for i in range(n):
        pos += c[i]
    neg = n - pos
    if pos <= 0.0 or neg <= 0.0:
        return math.nan
    area = 0.0
    tp = 0.0
    fp = 0.0
    i = 0
    while i < n:
        v = s[order[i]]
        dtp = 0.0
        dfp = 0.0
        while i < n and s[order[i]] == v:
            dtp += c[order[i]]
            dfp += 1.0 - c[order[i]]
            i += 1
        area += dfp * (tp + 0.5 * dtp)
        tp += dtp
        fp += dfp
    return float(area / (pos * neg))


@njit(cache=True, nogil=True)
def _expected_binary(
    c: np.ndarray, p: np.ndarray, threshold: float, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    # (f8[::1], f8[::1], f8, f8[::1])
    """Expected confusion-matrix metrics of decisions ``p >= threshold`` when row ``i`` is
    positive with calibrated probability ``c[i]``; ratios of expected counts."""
    n = c.shape[0]
    tp = 0.0
    fp = 0.0
    fn = 0.0
    tn = 0.0
    for i in range(n):
        if p[i] >= threshold:
            tp += c[i]
            fp += 1.0 - c[i]
        else:
            fn += c[i]
            tn += 1.0 - c[i]
    out[BIN_ACCURACY] = (tp + tn) / n
    out[BIN_PRECISION] = tp / (tp + fp) if tp + fp > 0.0 else 0.0
    out[BIN_RECALL] = tp / (tp + fn) if tp + fn > 0.0 else 0.0
    out[BIN_F1] = 2.0 * tp / (2.0 * tp + fp + fn) if tp + fp + fn > 0.0 else 0.0
    out[BIN_ROC_AUC] = _expected_auc(c, p)
    out[BIN_LOG_LOSS] = math.nan


@njit(cache=True, nogil=True)
def _expected_multiclass(
    cal: np.ndarray, proba: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    # (f8[:, ::1], f8[:, ::1], f8[::1])
    """Expected accuracy, macro precision/recall/F1 and macro one-vs-rest ROC AUC.

    ``cal[i, c]`` is the calibrated probability that row ``i`` is of class ``c``; the
    prediction is the arg-max of the model's own ``proba`` row. Macro averages run over
    the classes with a non-zero expected count (true or predicted).
    """
    n, k = proba.shape
    tp = np.zeros(k)
    pred = np.zeros(k)
    true = np.zeros(k)
    correct = 0.0
    for i in range(n):
        b = 0
        for c in range(1, k):
            if proba[i, c] > proba[i, b]:
                b = c
        pred[b] += 1.0
        tp[b] += cal[i, b]
        correct += cal[i, b]
        for c in range(k):
            true[c] += cal[i, c]
    present = 0.0
    sp = 0.0
    sr = 0.0
    sf = 0.0
    auc = 0.0
    aucs = 0.0
    for c in range(k):
        a = _expected_auc(np.ascontiguousarray(cal[:, c]), np.ascontiguousarray(proba[:, c]))
        if a == a:
            auc += a
            aucs += 1.0
        if true[c] <= 0.0 and pred[c] == 0.0:
            continue
        present += 1.0
        sp += tp[c] / pred[c] if pred[c] > 0.0 else 0.0
        sr += tp[c] / true[c] if true[c] > 0.0 else 0.0
        sf += 2.0 * tp[c] / (pred[c] + true[c])
    out[MC_ACCURACY] = correct / n
    out[MC_PRECISION] = sp / present if present > 0.0 else 0.0
    out[MC_RECALL] = sr / present if present > 0.0 else 0.0
    out[MC_F1] = sf / present if present > 0.0 else 0.0
    out[MC_ROC_AUC] = auc / aucs if aucs > 0.0 else math.nan
