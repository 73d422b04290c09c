"""A confirmed performance alert as a webhook event: ``kind="performance"`` and its extras.

The alert state machine builds a :class:`~monitor.webhooks.event.DriftEvent` from
:meth:`~monitor.performance.result.PerformanceResult.as_drift_result`;
:func:`performance_event` completes it with :func:`performance_payload` (which metric fell,
from what to what, over which window).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from monitor.performance.result import PerformanceResult
from monitor.webhooks.event import DriftEvent

__all__ = ["performance_event", "performance_payload"]


def _num(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def performance_payload(result: PerformanceResult) -> dict[str, Any]:
    """The webhook payload extras: which metric fell, from what to what, over which window.

    JSON values only (NaN becomes ``None``), for ``DriftEvent.extra["performance"]``.
    """
    s = result.slide
    labelled = result.kind == "realised"
    return {
        "kind": result.kind,
        "window": {
            "events": s.window_events,
            "unit": "labelled_predictions" if labelled else "predictions",
            "first_event": s.first_event,
            "last_event": s.last_event,
            "prediction_time_start": _num(s.first_prediction_ts),
            "prediction_time_end": _num(s.last_prediction_ts),
            "label_time_start": _num(s.first_label_ts) if labelled else None,
            "label_time_end": _num(s.last_label_ts) if labelled else None,
        },
        "crossed": [
            {
                "metric": c.metric,
                "rule": c.rule,
                "from": _num(c.from_value),
                "to": _num(c.value),
                "reference": _num(c.reference),
                "previous": _num(c.previous),
                "limit": c.limit,
            }
            for c in result.crossed
        ],
        "values": {k: _num(v) for k, v in result.values.items()},
        "reference": {k: _num(v) for k, v in result.reference.items()},
    }


def performance_event(event: DriftEvent, result: PerformanceResult) -> DriftEvent:
    """Turn the event the alert state machine built from :meth:`as_drift_result` into a
    performance event: ``kind="performance"`` and the payload extras."""
    extra = {**event.extra, "performance": performance_payload(result)}
    return replace(event, kind="performance", extra=extra)
