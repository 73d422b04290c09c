"""One model's performance monitoring inside the pipeline: config, rows, alerts, state.

:class:`ModelPerformance` wraps a :class:`~monitor.performance.PerformanceMonitor` for the
pipeline. From a model's decoded columns it takes the rows that carry a prediction (and an
id) as predictions and the rows that carry a label as labels; a row carrying both is both.
Every full-window result goes through an :class:`~monitor.model.alerting.Alerting` of its own
kind (realised, estimated), so a performance threshold crossing runs the same
ok/pending/firing/resolved lifecycle, ``consecutive`` count and ``cooldown_seconds`` as
drift (from the model's ``alert:`` section; one crossed metric is enough). A confirmed
crossing becomes a :class:`~monitor.webhooks.event.DriftEvent` with ``kind="performance"``
and the payload of :func:`~monitor.performance.performance_payload`.

Reference performance lives in the reference profile file under the top-level key
``performance`` (``driftmon baseline`` writes it when the input carries predictions and
labels); :mod:`monitor.model.reference_file` reads and writes it.

Label-only events (``{"model", "id", "label", "ts"}``) are decoded like any other event
and feed the join only.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import orjson

from monitor.config import ModelConfig
from monitor.errors import CheckpointError
from monitor.ingest.decode import ModelColumns
from monitor.model.alerting import (
    Alerting,
    AlertOutcome,
    AlertRule,
    AlertState,
    AlertStatus,
    RetrainGrace,
)
from monitor.model.state import alert_from_json, alert_to_json, put_core_state, take_core_state
from monitor.model.status import PerformanceReport
from monitor.performance import (
    LABEL_DELAY_BUCKETS,
    EstimationSpec,
    JoinedRows,
    JoinLimits,
    PerformanceMonitor,
    PerformanceResult,
    PerformanceSpec,
    ReferencePerformance,
    Task,
    Threshold,
    encode_labels,
    performance_event,
)
from monitor.webhooks.event import DriftEvent

logger = logging.getLogger(__name__)

__all__ = [
    "ModelPerformance",
    "PerformanceEvaluation",
    "label_only_rows",
    "performance_spec",
    "predicted_column",
    "prediction_names",
    "split_label_rows",
]

Kind = Literal["realised", "estimated"]
_KINDS: tuple[Kind, ...] = ("realised", "estimated")


# ------------------------------------------------------------------------------ config


def prediction_names(config: ModelConfig) -> tuple[str, ...]:
    """The decoded numeric columns holding the prediction (``prediction`` or one
    ``prediction.<class>`` per class)."""
    pred = config.prediction
    if pred is None or pred.type == "categorical":
        return ()
    if pred.type == "probabilities":
        return tuple(f"prediction.{c}" for c in pred.classes or ())
    return ("prediction",)


def performance_spec(config: ModelConfig, *, estimation: bool | None = None) -> PerformanceSpec:
    """The core's spec for a model's ``task`` and ``performance`` sections.

    ``estimation=True`` asks for an estimator even when the config has no ``estimation``
    section (``driftmon baseline`` calibrates one whenever the task allows it, so turning
    estimation on later needs no new baseline); ``None`` follows the config.
    """
    perf, task = config.performance, config.task
    if perf is None or task is None:
        raise ValueError("the model has no performance section")
    pred = config.prediction
    classes = tuple(pred.classes or ()) if pred is not None else ()
    est_spec: EstimationSpec | None = None
    if perf.estimation is not None:
        est = perf.estimation
        est_spec = EstimationSpec(
            metrics=perf.estimated_names(),
            window_events=est.window.events,
            window_slide=est.window.slide,
            thresholds={m: Threshold(**t.model_dump()) for m, t in est.thresholds.items()},
        )
    elif estimation and task != "regression":
        est_spec = EstimationSpec()
    return PerformanceSpec(
        task=Task(task),
        metrics=perf.metric_names(task),
        window_events=perf.window.events,
        window_slide=perf.window.slide,
        thresholds={m: Threshold(**t.model_dump()) for m, t in perf.thresholds.items()},
        join=JoinLimits(
            perf.join.max_delay_seconds, perf.join.max_pending, perf.join.max_pending_bytes
        ),
        classes=classes,
        prediction_width=max(1, len(prediction_names(config))),
        decision_threshold=perf.decision_threshold,
        estimation=est_spec,
        predicted_label=perf.predicted_label is not None,
    )


def predicted_column(
    config: ModelConfig, numeric: Sequence[str], categorical: Sequence[str]
) -> tuple[Literal["numeric", "categorical"], int] | None:
    """Where the decoded columns hold ``performance.predicted_label`` (a feature)."""
    name = config.performance.predicted_label if config.performance else None
    if name is None:
        return None
    if name in numeric:
        return "numeric", list(numeric).index(name)
    return "categorical", list(categorical).index(name)


# ------------------------------------------------------------------------- label events


def label_only_rows(columns: ModelColumns, prediction_index: Sequence[int]) -> np.ndarray | None:
    """Rows that are label events (a label, no prediction, no feature value), or ``None``
    when the batch has none. They feed the join only, never the drift windows. Rows binned
    by scale-out's stage 1 are read from their codes (the values are not rebuilt)."""
    labels = columns.labels
    if labels is None:
        return None
    mask = np.fromiter((v is not None for v in labels), dtype=bool, count=len(labels))
    if not mask.any():
        return None
    binned = columns.binned
    if binned is not None:  # scale-out's binned rows: every column's code 0 is missing
        mask &= ~binned.codes.any(axis=1)
        return mask if mask.any() else None
    if columns.numeric.shape[1]:
        mask &= np.isnan(columns.numeric).all(axis=1)
    for values in columns.categorical:
        mask &= np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    return mask if mask.any() else None


def split_label_rows(
    columns: ModelColumns, prediction_index: Sequence[int]
) -> tuple[ModelColumns, np.ndarray | None]:
    """The rows for the drift windows, and the mask of label-only rows in ``columns``."""
    mask = label_only_rows(columns, prediction_index)
    if mask is None:
        return columns, None
    keep = np.flatnonzero(~mask)
    if keep.size == 0 or keep[-1] == keep.size - 1:  # label events only at the end
        return columns.slice_rows(0, keep.size), mask
    return columns.take(keep), mask


# ----------------------------------------------------------------------------- monitor


@dataclass(frozen=True)
class PerformanceEvaluation:
    """One evaluated performance window of one model and what it did to its alert."""

    model: str
    result: PerformanceResult
    alert: AlertOutcome
    duration_seconds: float

    @property
    def kind(self) -> Kind:
        return self.result.kind

    @property
    def drift_event(self) -> DriftEvent | None:
        """The ``kind="performance"`` event to hand to the webhooks, if the alert fired."""
        return self.alert.event


def _alert_state(status: AlertStatus) -> str:
    return AlertState(status.state).name.lower()


class ModelPerformance:
    """Join, windows, alerts, delay histogram and checkpoint state of one model.

    ``grace``: the model's retrain grace, shared with its drift alert (a trigger of either
    holds back both; the pipeline checkpoints it).
    """

    def __init__(
        self,
        model: str,
        config: ModelConfig,
        reference: ReferencePerformance | None,
        *,
        prediction_index: Sequence[int],
        grace: RetrainGrace | None = None,
        predicted_column: tuple[Literal["numeric", "categorical"], int] | None = None,
    ) -> None:
        self.model = model
        # where the model's own predicted class is decoded (`performance.predicted_label`)
        self.predicted_column = predicted_column
        self._warned_at = -math.inf
        self.config = config
        self.spec = performance_spec(config)
        self.reference = reference
        self.prediction_index = np.asarray(prediction_index, dtype=np.int64)
        self.monitor = PerformanceMonitor(model, self.spec, reference)
        if self.spec.estimation is not None and self.monitor.estimate_window is None:
            logger.warning(
                "performance estimation configured but the reference has no calibration: "
                "rebuild the profile with `driftmon baseline` from labelled predictions",
                extra={"model": model},
            )
        rule = AlertRule(
            min_features=1,
            consecutive=config.alert.consecutive,
            cooldown_seconds=config.alert.cooldown_seconds,
        )
        self.alerting: dict[Kind, Alerting] = {
            kind: Alerting(model, rule, self.monitor.alert_thresholds(kind), grace=grace)
            for kind in _KINDS
        }
        self.evaluations = 0
        self.triggers = 0
        self.delay_counts = np.zeros(len(LABEL_DELAY_BUCKETS) + 1, dtype=np.int64)
        self.delay_sum = 0.0

    @property
    def fingerprint_data(self) -> bytes:
        """What the checkpoint fingerprint must cover beyond the model config."""
        ref = self.reference.to_dict() if self.reference is not None else None
        return hashlib.sha256(orjson.dumps(ref, option=orjson.OPT_SORT_KEYS)).digest()

    # -- feeding -----------------------------------------------------------------------

    def ingest(
        self, columns: ModelColumns, label_only: np.ndarray | None = None
    ) -> list[PerformanceEvaluation]:
        """Feed a batch's predictions, then its labels; evaluate every completed slide.

        The join's watermark moves only after both, so a batch spanning more than
        ``max_delay_seconds`` expires nothing that one of its own rows still joins."""
        results: list[PerformanceResult] = []
        rows = len(columns.ts)
        if rows == 0:
            return []
        if self.prediction_index.size:
            pred = columns.numeric[:, self.prediction_index]
            has_pred = np.isfinite(pred).all(axis=1)
            if label_only is not None:
                has_pred &= ~label_only
            if has_pred.any():
                keep = has_pred.tolist()
                ids = [i for i, k in zip(columns.ids, keep, strict=True) if k]
                joined, found = self.monitor.add_predictions(
                    ids,
                    pred[has_pred],
                    columns.ts[has_pred],
                    advance=False,
                    predicted=self._predicted(columns, has_pred),
                )
                self._observe_delays(joined)
                results += found
        labels = columns.labels
        if labels is not None:
            has_label = [v is not None for v in labels]
            if any(has_label):
                ids = [i for i, k in zip(columns.ids, has_label, strict=True) if k]
                values = [v for v in labels if v is not None]
                ts = columns.ts[np.asarray(has_label, dtype=bool)]
                joined, found = self.monitor.add_labels(ids, values, ts, advance=False)
                self._observe_delays(joined)
                results += found
        self.monitor.advance()
        return [self._alert(res) for res in results]

    def _predicted(self, columns: ModelColumns, rows: np.ndarray) -> np.ndarray | None:
        """The model's own predicted class index of ``rows`` (NaN: missing or unknown)."""
        if self.predicted_column is None:
            return None
        kind, index = self.predicted_column
        values: list[Any]
        if kind == "numeric":
            values = columns.numeric[rows, index].tolist()
        else:
            values = [
                v for v, k in zip(columns.categorical[index], rows.tolist(), strict=True) if k
            ]
        hat = encode_labels(values, self.spec)
        bad = int(np.count_nonzero(np.isnan(hat)))
        now = time.monotonic()
        if bad and now - self._warned_at >= 60.0:  # at most once a minute
            self._warned_at = now
            logger.warning(
                "predictions without a usable predicted class dropped from performance",
                extra={
                    "model": self.model,
                    "field": self.config.performance.predicted_label
                    if self.config.performance is not None
                    else None,
                    "count": bad,
                },
            )
        return hat

    def _observe_delays(self, joined: JoinedRows) -> None:
        if not len(joined):
            return
        delays = np.maximum(joined.delay_seconds, 0.0)
        index = np.searchsorted(np.asarray(LABEL_DELAY_BUCKETS), delays, side="left")
        self.delay_counts += np.bincount(index, minlength=self.delay_counts.size)
        self.delay_sum += float(delays.sum())

    def _alert(self, res: PerformanceResult) -> PerformanceEvaluation:
        started = time.perf_counter()
        slide = res.slide
        at = slide.last_label_ts if res.kind == "realised" else slide.last_prediction_ts
        if not math.isfinite(at):
            at = slide.last_prediction_ts
        outcome = self.alerting[res.kind].observe(
            res.as_drift_result(),
            at=at,
            slide_index=slide.slide_index,
            window_start=slide.first_prediction_ts,
            window_end=slide.last_prediction_ts,
        )
        if outcome.event is not None:
            event = performance_event(outcome.event, res)
            digest = event.id.removeprefix("drift-")
            event = replace(event, id=f"performance-{res.kind}-{digest}")
            outcome = replace(outcome, event=event)
            self.triggers += 1
            logger.info(
                "performance threshold crossing confirmed",
                extra={
                    "model": self.model,
                    "kind": res.kind,
                    "metrics": ",".join(sorted({c.metric for c in res.crossed})),
                    "event_id": event.id,
                },
            )
        if res.kind == "realised":
            self.evaluations += 1
        return PerformanceEvaluation(
            self.model, res, outcome, duration_seconds=time.perf_counter() - started
        )

    # -- checkpoints ---------------------------------------------------------------------

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(scalars, arrays)`` for the model's checkpoint, keys prefixed ``performance.``
        (layout in :mod:`monitor.model.state`)."""
        scalars: dict[str, Any] = {
            "performance.evaluations": self.evaluations,
            "performance.triggers": self.triggers,
            "performance.delay_sum": self.delay_sum,
            "performance.alert": {
                kind: alert_to_json(a.status) for kind, a in self.alerting.items()
            },
        }
        arrays: dict[str, np.ndarray] = {"performance.delay_counts": self.delay_counts.copy()}
        put_core_state(scalars, arrays, self.monitor.state_dict())
        return scalars, arrays

    def restore(self, scalars: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        """Resume from :meth:`state`; raises ``CheckpointError`` when it does not fit."""
        core = take_core_state(scalars, arrays)
        if not core:
            raise CheckpointError(f"checkpoint of model {self.model!r} has no performance state")
        self.monitor = PerformanceMonitor.from_state_dict(
            self.model, self.spec, self.reference, core
        )
        try:
            counts = np.asarray(arrays["performance.delay_counts"], dtype=np.int64)
            if counts.shape != self.delay_counts.shape:
                raise ValueError("label delay buckets differ")
            self.delay_counts = counts.copy()
            self.delay_sum = float(scalars["performance.delay_sum"])
            self.evaluations = int(scalars["performance.evaluations"])
            self.triggers = int(scalars["performance.triggers"])
            for kind, saved in scalars["performance.alert"].items():
                self.alerting[kind].restore(alert_from_json(saved))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"checkpoint of model {self.model!r}: performance state is incomplete ({exc})"
            ) from None

    # -- reporting -----------------------------------------------------------------------

    def report(self) -> PerformanceReport:
        """The immutable snapshot :class:`~monitor.model.status.ModelStatus` carries."""
        st = self.monitor.status()
        has_estimation = self.monitor.estimate_window is not None
        return PerformanceReport(
            values=st.values,
            estimated=st.estimated,
            reference=st.reference,
            metrics=self.spec.metrics,
            labels_total=st.labels_total,
            labels_joined_total=st.labels_joined_total,
            predictions_total=st.predictions_total,
            pending_predictions=st.pending_predictions,
            pending_labels=st.pending_labels,
            evicted=dict(st.evicted),
            duplicate_labels=st.duplicate_labels,
            invalid_labels=st.invalid_labels,
            window_events=st.window_events,
            window_capacity=st.window_capacity,
            evaluations=self.evaluations,
            alert_state=_alert_state(self.alerting["realised"].status),
            estimated_alert_state=(
                _alert_state(self.alerting["estimated"].status) if has_estimation else None
            ),
            delay_buckets=LABEL_DELAY_BUCKETS,
            delay_counts=tuple(int(c) for c in self.delay_counts),
            delay_sum=self.delay_sum,
        )
