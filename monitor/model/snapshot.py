"""Status snapshots of a model: the immutable ``ModelStatus`` metrics and ``/status`` read.

Built from the parts of a :class:`~monitor.model.monitor.ModelMonitor` (window, capture,
alert, thresholds, retrain grace, performance) and, for a model with versions, one
``VersionStatus`` per version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.config import CountWindowConfig
from monitor.model.alerting import AlertState
from monitor.model.status import HotCounts, ModelStatus, VersionStatus

if TYPE_CHECKING:
    from monitor.model.monitor import ModelMonitor


def monitor_status(monitor: ModelMonitor) -> ModelStatus:
    """The snapshot of one monitor (one model, or one version of a model)."""
    evaluator = monitor.evaluator
    capacity = (
        monitor.config.window.events
        if isinstance(monitor.config.window, CountWindowConfig)
        else None
    )
    hot = monitor_hot_counts(monitor)
    alert = monitor.alerting.status
    return ModelStatus(
        model=monitor.name,
        reference_state="loaded" if evaluator is not None else "capturing",
        reference_events=(
            evaluator.reference_events if evaluator is not None else monitor.capture.captured
        ),
        window_events=hot.window_events,
        window_capacity=capacity,
        window_fill_ratio=hot.window_fill_ratio,
        evaluations=monitor.evaluations,
        last_evaluation_time=monitor.last_evaluation_time,
        last_result=monitor.last_result,
        drifted=alert.drifted,
        consecutive=alert.consecutive,
        alert_state=AlertState(alert.state).name.lower(),
        last_trigger_time=alert.last_trigger_time,
        threshold_values=monitor.limits.lines,
        events_total=hot.events_total,
        late_events=hot.late_events,
        retrain_triggers=monitor.retrain_triggers,
        performance=monitor.performance.report() if monitor.performance is not None else None,
        calibration=monitor.limits.report,
        retrain_suppressed=monitor.grace.suppressed,
        retrain_grace_seconds=monitor.grace.seconds,
        retrain_grace_until=monitor.grace.until,
        min_effect=monitor.min_effects,
        absent_features=monitor.absent.current,
        check_thresholds=monitor.alerting.thresholds,
        reference_missing=evaluator.reference_missing if evaluator is not None else {},
        sequential_alarms=_sequential_alarms(monitor),
    )


def _sequential_alarms(monitor: ModelMonitor) -> dict[str, dict[str, object]]:
    part = monitor.evaluator.sequential if monitor.evaluator is not None else None
    if part is None:
        return {}
    limits = monitor.thresholds
    return {
        feature: {
            "test": a.test,
            "statistic": a.statistic,
            "threshold": getattr(limits[feature], a.test) if feature in limits else None,
            "event": a.index,
            "time": a.ts,
        }
        for feature, a in part.last_alarm.items()
    }


def monitor_hot_counts(monitor: ModelMonitor) -> HotCounts:
    """The status fields of one monitor that every batch of its rows moves."""
    evaluator = monitor.evaluator
    window = monitor.config.window
    capacity = window.events if isinstance(window, CountWindowConfig) else None
    events, fill = evaluator.fill(capacity) if evaluator is not None else (0, 0.0)
    return HotCounts(monitor.events_seen, monitor.late_events, events, fill)


def version_status(version: str, reference: str, monitor: ModelMonitor) -> VersionStatus:
    """One version's line in a versioned model's status; ``reference``: ``default``,
    ``configured`` or ``captured``."""
    window = monitor.window
    return VersionStatus(
        version=version,
        reference=reference,
        ready=monitor.reference_ready,
        captured=monitor.captured,
        capture_target=monitor.capture_target,
        events_total=monitor.events_seen,
        window_events=window.events if window is not None else 0,
        evaluations=monitor.evaluations,
        alert_state=AlertState(monitor.alerting.status.state).name.lower(),
        last_evaluation_time=monitor.last_evaluation_time,
        last_result=monitor.last_result,
    )
