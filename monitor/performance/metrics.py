"""Realised model performance over a window of the last N joined (labelled) predictions.

Definitions follow scikit-learn on the same rows, so a value exported by driftmon can be
reproduced offline with ``sklearn.metrics`` (the tests check every metric against it):

=================  =====================================================================
task               metrics (scikit-learn equivalent)
=================  =====================================================================
binary             ``accuracy`` (``accuracy_score``), ``precision`` / ``recall`` / ``f1``
                   (``*_score(zero_division=0)``), ``roc_auc`` (``roc_auc_score``),
                   ``log_loss`` (``log_loss(labels=[0, 1])``)
multiclass         ``accuracy``, ``precision`` / ``recall`` / ``f1`` with
                   ``average="macro", zero_division=0``, ``roc_auc``
                   (``roc_auc_score(multi_class="ovr")``: macro one-vs-rest),
                   ``log_loss(labels=range(k))``
regression         ``mae`` (``mean_absolute_error``), ``rmse``
                   (``root_mean_squared_error``), ``mape``
                   (``mean_absolute_percentage_error``), ``r2`` (``r2_score``)
=================  =====================================================================

Inputs and edge cases:

* Binary predictions are positive-class scores in ``[0, 1]`` (a hard 0/1 prediction is a
  score too); the predicted class is ``score >= threshold`` (default 0.5). Labels are 0/1.
* Multiclass predictions are probability rows over ``k`` classes (predicted class: the
  arg-max, first on ties, like ``numpy.argmax``) or class indices (then ``log_loss`` is
  NaN). Labels are class indices ``0..k-1``. Macro averages run over the classes present
  in the window's labels or predictions, which is scikit-learn's default label set.
* Zero division: a precision, recall or F1 whose denominator is zero is 0, exactly
  scikit-learn's ``zero_division=0``.
* ``roc_auc`` is NaN when the window holds one class only (it is undefined; scikit-learn
  warns and returns NaN too); multiclass, when a class is missing from the window's labels
  (scikit-learn refuses such a window) or the predictions are class indices (no scores).
  ``r2`` is NaN with fewer than two rows; with constant labels
  it is 1.0 for a perfect prediction and 0.0 otherwise (``force_finite=True``).
* ``log_loss`` clips the probability of the true class to ``[eps, 1 - eps]`` with the
  float64 machine epsilon; ``mape`` divides by ``max(|y|, eps)``, as scikit-learn does.
* An empty window gives NaN for every metric. NaN is never a threshold crossing.

The window is a ring buffer of joined rows (prediction, label and both event times), so
its memory is fixed by ``events`` and the prediction width; sliding costs nothing, and an
evaluation costs one pass over the window (plus a sort for ``roc_auc``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from monitor.errors import CheckpointError
from monitor.performance import kernels as k
from monitor.performance.kernels import _binary_metrics, _multiclass_metrics, _ovr_auc

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "PerformanceWindow",
    "Task",
    "WindowSlide",
    "binary_metrics",
    "compute_metrics",
    "multiclass_metrics",
    "regression_metrics",
]

EPS = float(np.finfo(np.float64).eps)


class Task(StrEnum):
    """What the model predicts (the ``task`` key of a model's configuration)."""

    BINARY = "binary_classification"
    MULTICLASS = "multiclass_classification"
    REGRESSION = "regression"


#: The realised metrics of each task, in export order.
METRICS: Mapping[Task, tuple[str, ...]] = {
    Task.BINARY: ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"),
    Task.MULTICLASS: ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"),
    Task.REGRESSION: ("mae", "rmse", "mape", "r2"),
}

#: Metrics where a larger value is better; the others (losses and errors) are the reverse.
HIGHER_IS_BETTER = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "r2"})

_BINARY_ORDER = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
_MULTICLASS_ORDER = ("accuracy", "precision", "recall", "f1", "log_loss")


def _nan(names: Sequence[str]) -> dict[str, float]:
    return dict.fromkeys(names, math.nan)


def binary_metrics(
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    threshold: float = 0.5,
    predicted: np.ndarray | None = None,
) -> dict[str, float]:
    """Binary metrics of positive-class ``scores`` against 0/1 ``labels``.

    >>> import numpy as np
    >>> m = binary_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]))
    >>> m["accuracy"], m["precision"], m["roc_auc"]
    (0.5, 0.5, 0.75)
    """
    y = np.ascontiguousarray(labels, dtype=np.float64)
    p = np.ascontiguousarray(scores, dtype=np.float64)
    if y.ndim != 1 or p.shape != y.shape:
        raise ValueError("binary labels and scores must be 1-D arrays of equal length")
    if y.size == 0:
        return _nan(_BINARY_ORDER)
    out = np.empty(k.BIN_COLUMNS)
    _binary_metrics(y, p, float(threshold), EPS, out)
    values = dict(zip(_BINARY_ORDER, out.tolist(), strict=True))
    if predicted is not None:  # the model's own classes replace score >= threshold
        values.update(_class_metrics(y, np.asarray(predicted, dtype=np.float64)))
    return values


def _class_metrics(y: np.ndarray, hat: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of 0/1 classes (``zero_division=0``)."""
    pos, said = y == 1.0, hat == 1.0
    tp = float(np.count_nonzero(pos & said))
    fp = float(np.count_nonzero(~pos & said))
    fn = float(np.count_nonzero(pos & ~said))
    return {
        "accuracy": float(np.count_nonzero(pos == said)) / y.size,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
    }


def multiclass_metrics(
    labels: np.ndarray,
    predictions: np.ndarray,
    *,
    n_classes: int,
    predicted: np.ndarray | None = None,
) -> dict[str, float]:
    """Multiclass metrics; ``predictions`` are probability rows (n x k) or class indices.

    >>> import numpy as np
    >>> proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    >>> m = multiclass_metrics(np.array([0, 1, 2, 1]), proba, n_classes=3)
    >>> m["accuracy"], round(m["f1"], 4)
    (0.75, 0.7778)
    """
    y = np.ascontiguousarray(labels, dtype=np.int64)
    pred = np.asarray(predictions)
    if y.ndim != 1 or pred.shape[0] != y.shape[0]:
        raise ValueError("multiclass labels and predictions must have the same length")
    if y.size == 0:
        return _nan((*_MULTICLASS_ORDER, "roc_auc"))
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"multiclass labels must be class indices 0..{n_classes - 1}")
    if pred.ndim == 2:
        if pred.shape[1] != n_classes:
            raise ValueError(f"probability rows must have {n_classes} columns")
        proba = np.ascontiguousarray(pred, dtype=np.float64)
        chosen = np.argmax(proba, axis=1) if predicted is None else predicted
        hat = np.ascontiguousarray(chosen, dtype=np.int64)
        if hat.min() < 0 or hat.max() >= n_classes:
            raise ValueError(f"predicted classes must be indices 0..{n_classes - 1}")
    else:
        hat = np.ascontiguousarray(pred, dtype=np.int64)
        if hat.min() < 0 or hat.max() >= n_classes:
            raise ValueError(f"predicted classes must be indices 0..{n_classes - 1}")
        proba = np.empty((y.size, 0))
    out = np.empty(k.MC_COLUMNS)
    _multiclass_metrics(y, hat, proba, int(n_classes), EPS, out)
    values = dict(zip(_MULTICLASS_ORDER, out.tolist(), strict=True))
    # one-vs-rest needs scores: hard class predictions have no ROC AUC
    values["roc_auc"] = _ovr_auc(y, proba, int(n_classes)) if proba.shape[1] else math.nan
    return values


def regression_metrics(labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, MAPE and R² (numpy reductions in scikit-learn's order of operations).

    >>> import numpy as np
    >>> m = regression_metrics(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0]))
    >>> m["mae"], round(m["r2"], 4)
    (0.5, 0.7321)
    """
    y = np.asarray(labels, dtype=np.float64).reshape(-1, 1)
    yhat = np.asarray(predictions, dtype=np.float64).reshape(-1, 1)
    if y.shape != yhat.shape:
        raise ValueError("regression labels and predictions must have the same length")
    names = METRICS[Task.REGRESSION]
    if y.shape[0] == 0:
        return _nan(names)
    err = yhat - y
    mae = float(np.average(np.abs(err), axis=0)[0])
    rmse = float(np.sqrt(np.average(err**2, axis=0))[0])
    mape = float(np.average(np.abs(err) / np.maximum(np.abs(y), EPS), axis=0)[0])
    if y.shape[0] < 2:
        r2 = math.nan
    else:
        num = float(np.sum(1.0 * (y - yhat) ** 2, axis=0)[0])
        den = float(np.sum(1.0 * (y - np.average(y, axis=0)) ** 2, axis=0)[0])
        if num == 0.0:
            r2 = 1.0
        elif den == 0.0:
            r2 = 0.0
        else:
            r2 = 1.0 - num / den
    return {"mae": mae, "rmse": rmse, "mape": mape, "r2": r2}


def compute_metrics(
    task: Task,
    labels: np.ndarray,
    predictions: np.ndarray,
    *,
    n_classes: int = 2,
    threshold: float = 0.5,
    predicted: np.ndarray | None = None,
) -> dict[str, float]:
    """Every realised metric of ``task`` on one set of joined rows; ``predicted``: the
    model's own class indices, when it sends them (else threshold or arg-max)."""
    if task is Task.BINARY:
        scores = np.asarray(predictions, dtype=np.float64)
        if scores.ndim == 2:  # [p0, p1] rows: the positive class is the second column
            scores = scores[:, -1]
        return binary_metrics(labels, scores, threshold=threshold, predicted=predicted)
    if task is Task.MULTICLASS:
        return multiclass_metrics(labels, predictions, n_classes=n_classes, predicted=predicted)
    return regression_metrics(labels, predictions)


@dataclass(frozen=True)
class WindowSlide:
    """One slide of a performance window.

    ``slide_index`` counts slides from 0, like the drift windows;
    ``first_event``/``last_event`` are 1-based positions in the model's stream of joined
    rows; the ``*_ts`` fields are the event-time ranges of the window's predictions and
    labels (NaN for an empty window).
    """

    slide_index: int
    window_events: int
    first_event: int
    last_event: int
    first_prediction_ts: float
    last_prediction_ts: float
    first_label_ts: float
    last_label_ts: float


class PerformanceWindow:
    """Ring buffer of the last ``events`` joined rows, evaluated every ``slide`` rows.

    ``width`` is the prediction width: 1 for scores, values and class indices, ``k`` for
    probability rows. Memory: ``events x (width + 3) x 8`` bytes.
    """

    def __init__(self, events: int, slide: int, width: int = 1) -> None:
        if slide < 1 or events < slide or events % slide:
            raise ValueError("window events must be a positive multiple of slide")
        if width < 1:
            raise ValueError("prediction width must be >= 1")
        self.events_capacity = events
        self.slide = slide
        self.width = width
        self._pred = np.zeros((events, width))
        self._label = np.zeros(events)
        self._pred_ts = np.zeros(events)
        self._label_ts = np.zeros(events)
        self._seen = 0

    @property
    def events(self) -> int:
        """Joined rows currently in the window."""
        return min(self._seen, self.events_capacity)

    @property
    def events_seen(self) -> int:
        """Joined rows fed since the window was created."""
        return self._seen

    @property
    def is_full(self) -> bool:
        return self._seen >= self.events_capacity

    def feed(
        self,
        predictions: np.ndarray,
        labels: np.ndarray,
        prediction_ts: np.ndarray,
        label_ts: np.ndarray,
    ) -> Iterator[WindowSlide]:
        """Append joined rows, yielding at every ``slide`` rows.

        The generator is suspended with the window holding exactly the rows up to that
        slide, so the caller evaluates that window; then the rest of the batch goes in.
        """
        pred = np.asarray(predictions, dtype=np.float64).reshape(len(labels), self.width)
        rows = pred.shape[0]
        start = 0
        cap = self.events_capacity
        while start < rows:
            to_slide = self.slide - self._seen % self.slide
            stop = min(rows, start + to_slide)
            pos = self._seen % cap
            n = stop - start
            # A chunk never crosses a slide boundary, and cap is a multiple of slide,
            # so it never wraps around the ring either.
            self._pred[pos : pos + n] = pred[start:stop]
            self._label[pos : pos + n] = labels[start:stop]
            self._pred_ts[pos : pos + n] = prediction_ts[start:stop]
            self._label_ts[pos : pos + n] = label_ts[start:stop]
            self._seen += n
            start = stop
            if self._seen % self.slide == 0:
                yield self.current_slide()

    def current_slide(self) -> WindowSlide:
        """The window as it is now, described as a slide."""
        n = self.events
        if n:
            pts, lts = self._pred_ts[:n], self._label_ts[:n]
            ranges = (pts.min(), pts.max(), lts.min(), lts.max())
        else:
            ranges = (math.nan,) * 4
        return WindowSlide(
            slide_index=self._seen // self.slide - 1,  # 0-based, like the drift windows
            window_events=n,
            first_event=self._seen - n + 1,
            last_event=self._seen,
            first_prediction_ts=float(ranges[0]),
            last_prediction_ts=float(ranges[1]),
            first_label_ts=float(ranges[2]),
            last_label_ts=float(ranges[3]),
        )

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """``(predictions, labels)`` of the window in ring order (metrics ignore order).

        Predictions are ``(n,)`` for width 1 and ``(n, width)`` otherwise; both are views.
        """
        n = self.events
        pred = self._pred[:n]
        return (pred[:, 0] if self.width == 1 else pred), self._label[:n]

    def metrics(
        self,
        task: Task,
        *,
        n_classes: int = 2,
        threshold: float = 0.5,
        predicted_label: bool = False,
    ) -> dict[str, float]:
        """Every realised metric of ``task`` over the current window; with
        ``predicted_label`` the last prediction column is the model's own class."""
        pred, labels = self.rows()
        predicted = None
        if predicted_label:
            full = self._pred[: self.events]
            predicted = full[:, -1]
            pred = full[:, 0] if self.width == 2 else full[:, :-1]
        return compute_metrics(
            task, labels, pred, n_classes=n_classes, threshold=threshold, predicted=predicted
        )

    def state_dict(self) -> dict[str, Any]:
        """Plain numpy arrays and ints, enough to rebuild the window exactly."""
        return {
            "pred": self._pred.copy(),
            "label": self._label.copy(),
            "pred_ts": self._pred_ts.copy(),
            "label_ts": self._label_ts.copy(),
            "seen": self._seen,
        }

    @classmethod
    def from_state_dict(
        cls, events: int, slide: int, width: int, state: Mapping[str, Any]
    ) -> PerformanceWindow:
        """Rebuild a window; raise ``CheckpointError`` when the state does not fit."""
        win = cls(events, slide, width)
        for key, arr in (
            ("pred", win._pred),
            ("label", win._label),
            ("pred_ts", win._pred_ts),
            ("label_ts", win._label_ts),
        ):
            got = np.asarray(state.get(key))
            if got.shape != arr.shape:
                raise CheckpointError(
                    f"performance window state {key!r} has shape {got.shape}, expected "
                    f"{arr.shape}: the checkpoint belongs to another window size"
                )
            arr[...] = got
        try:
            win._seen = int(state["seen"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"performance window state is incomplete: {exc}") from exc
        return win
