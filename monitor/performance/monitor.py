"""Performance monitoring of one model: join, windows, thresholds, evaluations.

:class:`PerformanceMonitor` takes the model's prediction and label batches, joins them in a
:class:`~monitor.performance.join.JoinStore`, feeds joined rows to a window of realised
metrics and (when a calibrated reference exists) every prediction to a window of
estimated metrics. At each slide of a full window it returns a
:class:`~monitor.performance.result.PerformanceResult` with the values, the thresholds
crossed (:mod:`monitor.performance.thresholds`) and the window's range.

What to monitor is :mod:`~monitor.performance.spec`; the reference values are
:mod:`~monitor.performance.reference`; a result becomes a webhook event in
:mod:`~monitor.performance.payload`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from monitor.errors import CheckpointError
from monitor.performance.estimate import PerformanceEstimator
from monitor.performance.join import JoinedRows, JoinStore
from monitor.performance.labels import encode_labels
from monitor.performance.metrics import PerformanceWindow, WindowSlide
from monitor.performance.reference import ReferencePerformance
from monitor.performance.result import PerformanceResult, PerformanceStatus
from monitor.performance.spec import EstimationSpec, PerformanceSpec
from monitor.performance.thresholds import crossings

__all__ = ["PerformanceMonitor"]


class PerformanceMonitor:
    """Join, windows and thresholds of one model's performance."""

    def __init__(
        self, model: str, spec: PerformanceSpec, reference: ReferencePerformance | None = None
    ) -> None:
        relative = [m for m, t in spec.thresholds.items() if t.relative]
        if spec.estimation is not None:
            relative += [
                f"estimation.{m}" for m, t in spec.estimation.thresholds.items() if t.relative
            ]
        if relative and reference is None:
            raise ValueError(
                f"performance.thresholds: {', '.join(relative)} compare with the reference "
                "performance; the reference needs labels and predictions"
            )
        self.model = model
        self.spec = spec
        self.reference = reference
        self.join = JoinStore(spec.join, spec.stored_width)
        self.window = PerformanceWindow(spec.window_events, spec.window_slide, spec.stored_width)
        self.estimator = reference.estimator if reference is not None else None
        est = spec.estimation
        self.estimate_window = (
            PerformanceWindow(est.window_events, est.window_slide, spec.prediction_width)
            if est is not None and self.estimator is not None
            else None
        )
        self.invalid_labels = 0
        #: predictions dropped because their predicted class was missing or unknown
        self.invalid_predicted_labels = 0
        self.values: dict[str, float] = {}
        self.estimated: dict[str, float] = {}

    @property
    def reference_values(self) -> Mapping[str, float]:
        return self.reference.values if self.reference is not None else {}

    def add_predictions(
        self,
        ids: Sequence[str | None],
        predictions: np.ndarray,
        ts: np.ndarray,
        *,
        advance: bool = True,
        predicted: np.ndarray | None = None,
    ) -> tuple[JoinedRows, list[PerformanceResult]]:
        """One batch of predictions (``(n,)`` or ``(n, width)``); returns the rows it
        joined (for the label-delay histogram) and the evaluations it completed.

        ``advance=False``: the batch's labels follow; call :meth:`advance` after them.
        ``predicted``: the model's own class indices (``performance.predicted_label``);
        rows where it is NaN (missing or not a class) are counted and dropped."""
        pred = np.asarray(predictions, dtype=np.float64).reshape(len(ids), -1)
        ts = np.asarray(ts, dtype=np.float64)
        if self.spec.predicted_label:
            if predicted is None:
                raise ValueError("this model's predictions carry a predicted class")
            hat = np.asarray(predicted, dtype=np.float64)
            ok = np.isfinite(hat)
            if not ok.all():
                self.invalid_predicted_labels += int((~ok).sum())
                ids = [i for i, keep in zip(ids, ok.tolist(), strict=True) if keep]
                pred, ts, hat = pred[ok], ts[ok], hat[ok]
        results: list[PerformanceResult] = []
        if self.estimate_window is not None and self.estimator is not None:
            nan = np.full(len(ids), math.nan)
            for slide in self.estimate_window.feed(pred, nan, ts, nan):
                if self.estimate_window.is_full:
                    results.append(self._evaluate_estimate(self.estimator, slide))
        stored = np.column_stack([pred, hat]) if self.spec.predicted_label else pred
        joined = self.join.add_predictions(ids, stored, ts, advance=advance)
        results.extend(self._feed(joined))
        return joined, results

    def add_labels(
        self,
        ids: Sequence[str | None],
        labels: Sequence[Any] | np.ndarray,
        ts: np.ndarray,
        *,
        advance: bool = True,
    ) -> tuple[JoinedRows, list[PerformanceResult]]:
        """One batch of labels: raw values (see :func:`encode_labels`) or encoded float64."""
        if isinstance(labels, np.ndarray) and labels.dtype.kind == "f":
            encoded = labels.astype(np.float64, copy=False)
        else:
            encoded = encode_labels(list(labels), self.spec)
        ok = np.isfinite(encoded)
        ts = np.asarray(ts, dtype=np.float64)
        if not ok.all():
            self.invalid_labels += int((~ok).sum())
            ids = [i for i, keep in zip(ids, ok.tolist(), strict=True) if keep]
            encoded, ts = encoded[ok], ts[ok]
        joined = self.join.add_labels(ids, encoded, ts, advance=advance)
        return joined, self._feed(joined)

    def advance(self) -> None:
        """End of a batch added with ``advance=False``: move the join's watermark."""
        self.join.advance()

    def _feed(self, joined: JoinedRows) -> list[PerformanceResult]:
        if not len(joined):
            return []
        results = []
        for slide in self.window.feed(
            joined.predictions, joined.labels, joined.prediction_ts, joined.label_ts
        ):
            if self.window.is_full:
                values = self.window.metrics(
                    self.spec.task,
                    n_classes=self.spec.n_classes,
                    threshold=self.spec.decision_threshold,
                    predicted_label=self.spec.predicted_label,
                )
                values = {m: values[m] for m in self.spec.metrics}
                crossed = crossings(
                    values, self.spec.thresholds, self.reference_values, self.values
                )
                self.values = values
                results.append(
                    PerformanceResult(
                        self.model,
                        "realised",
                        slide,
                        values,
                        self.reference_values,
                        crossed,
                        self.spec.thresholds,
                    )
                )
        return results

    def _evaluate_estimate(
        self, estimator: PerformanceEstimator, slide: WindowSlide
    ) -> PerformanceResult:
        est = self.spec.estimation or EstimationSpec()
        pred, _ = self.estimate_window.rows() if self.estimate_window else (np.empty(0), None)
        values = estimator.estimate(pred)
        values = {m: values[m] for m in est.metrics}
        crossed = crossings(values, est.thresholds, self.reference_values, self.estimated)
        self.estimated = values
        return PerformanceResult(
            self.model, "estimated", slide, values, self.reference_values, crossed, est.thresholds
        )

    def alert_thresholds(
        self, kind: Literal["realised", "estimated"] = "realised"
    ) -> dict[str, dict[str, float]]:
        """Threshold values keyed like :meth:`PerformanceResult.as_drift_result`'s
        pseudo-features, for ``Alerting(model, rule, thresholds)``."""
        if kind == "realised":
            thresholds = self.spec.thresholds
        else:
            thresholds = self.spec.estimation.thresholds if self.spec.estimation else {}
        return {f"{kind}.{m}": dict(t.items()) for m, t in thresholds.items()}

    def status(self) -> PerformanceStatus:
        j = self.join
        return PerformanceStatus(
            model=self.model,
            values=dict(self.values),
            estimated=dict(self.estimated),
            reference=dict(self.reference_values),
            labels_total=j.labels_total,
            labels_joined_total=j.joined_total,
            predictions_total=j.predictions_total,
            pending_predictions=j.pending_predictions,
            pending_labels=j.pending_labels,
            evicted=j.evicted,
            evicted_predictions=dict(j.evicted_predictions),
            evicted_labels=dict(j.evicted_labels),
            duplicate_labels=j.duplicate_labels,
            invalid_labels=self.invalid_labels,
            window_events=self.window.events,
            window_capacity=self.spec.window_events,
        )

    def state_dict(self) -> dict[str, Any]:
        """Flat: numpy arrays and scalars (prefixed ``join.``, ``window.``, ``estimate.``);
        the last values are JSON-ready dicts."""
        state: dict[str, Any] = {f"join.{k}": v for k, v in self.join.state_dict().items()}
        state.update({f"window.{k}": v for k, v in self.window.state_dict().items()})
        if self.estimate_window is not None:
            state.update({f"estimate.{k}": v for k, v in self.estimate_window.state_dict().items()})
        state["invalid_labels"] = self.invalid_labels
        state["invalid_predicted_labels"] = self.invalid_predicted_labels
        state["values"] = dict(self.values)
        state["estimated"] = dict(self.estimated)
        return state

    @classmethod
    def from_state_dict(
        cls,
        model: str,
        spec: PerformanceSpec,
        reference: ReferencePerformance | None,
        state: Mapping[str, Any],
    ) -> PerformanceMonitor:
        """Rebuild with the running config; raises ``CheckpointError`` when it does not fit."""
        mon = cls(model, spec, reference)

        def part(prefix: str) -> dict[str, Any]:
            return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}

        mon.join = JoinStore.from_state_dict(spec.join, part("join."))
        if mon.join.width != spec.stored_width:
            raise CheckpointError("performance state has another prediction width")
        mon.window = PerformanceWindow.from_state_dict(
            spec.window_events, spec.window_slide, spec.stored_width, part("window.")
        )
        if mon.estimate_window is not None and spec.estimation is not None:
            saved = part("estimate.")
            if saved:
                mon.estimate_window = PerformanceWindow.from_state_dict(
                    spec.estimation.window_events,
                    spec.estimation.window_slide,
                    spec.prediction_width,
                    saved,
                )
        try:
            mon.invalid_labels = int(state["invalid_labels"])
            # absent in checkpoints written before predicted_label existed
            mon.invalid_predicted_labels = int(state.get("invalid_predicted_labels", 0))
            mon.values = {k: float(v) for k, v in state["values"].items()}
            mon.estimated = {k: float(v) for k, v in state["estimated"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"performance state is incomplete: {exc}") from exc
        return mon
