"""The ``/status`` JSON documents: readiness plus every model's latest status.

The shapes here are the ``/status`` contract (docs/ARCHITECTURE.md); ``replay`` reports
reuse :func:`model_document`. Non-finite numbers become ``null`` so every body is strict
JSON.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from monitor.model.checks import MISSING_RATIO, check_of, compared_value
from monitor.model.status import (
    CalibrationReport,
    FeatureResultView,
    ModelStatus,
    PerformanceReport,
    VersionStatus,
)
from monitor.publish.health import Health, readiness_document
from monitor.publish.results import ResultsStore
from monitor.scaleout.status import ScaleOutStatus


def _number(value: float | None) -> float | None:
    """JSON has no NaN or infinity; report them as null."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _feature_document(
    feature: FeatureResultView,
    limits: Mapping[str, float],
    reference_missing: float | None,
    absent: bool,
) -> dict[str, Any]:
    """One feature of the last evaluation. ``thresholds`` is keyed like ``crossed`` and
    the config (``ks_p_value`` is a threshold on the ks p-value); ``checks`` spells out,
    per threshold, what was compared with it."""
    checks: dict[str, dict[str, Any]] = {}
    for key, threshold in limits.items():
        test, compared = check_of(key)
        if test != MISSING_RATIO and test not in feature.scores:
            continue  # a threshold of a test this feature does not run
        score = feature.scores.get(test, math.nan)
        increase = (
            feature.missing_ratio - reference_missing if reference_missing is not None else None
        )
        value = compared_value(compared, score, feature.p_values.get(test), increase)
        checks[key] = {
            "test": test,
            "compared": compared,
            compared: _number(value),
            f"{compared}_threshold": _number(threshold),
            "crossed": key in feature.crossed,
        }
    return {
        "kind": str(feature.kind),
        "n": feature.n,
        "missing_ratio": _number(feature.missing_ratio),
        "scores": {test: _number(v) for test, v in feature.scores.items()},
        "p_values": {test: _number(v) for test, v in feature.p_values.items()},
        "thresholds": {key: _number(v) for key, v in limits.items() if key in checks},
        "checks": checks,
        "crossed": list(feature.crossed),
        "drifted": feature.drifted,
        "absent": absent,
        "enough_data": feature.enough_data,
    }


def model_document(status: ModelStatus) -> dict[str, Any]:
    """The ``/status`` entry of one model (also usable for replay reports)."""
    last: dict[str, Any] | None = None
    result = status.last_result
    if result is not None:
        last = {
            "time": status.last_evaluation_time,
            "window_events": result.window_events,
            "drifted_features": list(result.drifted_features),
            "absent_features": list(status.absent_features),
            "features": {
                f.name: _feature_document(
                    f,
                    status.check_thresholds.get(f.name, {}),
                    status.reference_missing.get(f.name),
                    f.name in status.absent_features,
                )
                for f in result.features
            },
        }
    document: dict[str, Any] = {
        "reference": {
            "state": status.reference_state,
            "ready": status.reference_ready,
            "events": status.reference_events,
        },
        "window": {
            "events": status.window_events,
            "capacity": status.window_capacity,
            "fill_ratio": _number(status.window_fill_ratio),
        },
        # The model's own count, carried through checkpoints and handovers; the
        # driftmon_events_total counter counts what this process consumed.
        "events": status.events_total,
        "evaluations": status.evaluations,
        "last_evaluation": last,
        "alert": {
            "state": status.alert_state,
            "drifted": status.drifted,
            "consecutive": status.consecutive,
            "last_trigger_time": status.last_trigger_time,
            "retrain_grace_seconds": status.retrain_grace_seconds,
            "retrain_grace_until": status.retrain_grace_until,
            "retrain_suppressed": status.retrain_suppressed,
        },
    }
    if status.min_effect:
        document["alert"]["min_effect"] = {f: dict(m) for f, m in status.min_effect.items()}
    if status.sequential_alarms:  # compared: the statistic with its threshold (a score)
        document["alert"]["sequential_alarms"] = {
            f: {**a, "compared": "score"} for f, a in status.sequential_alarms.items()
        }
    if status.calibration is not None:
        document["calibration"] = calibration_document(status.calibration)
    if status.performance is not None:
        document["performance"] = performance_document(status.performance)
    if status.versioned:
        document["active_version"] = status.version
        document["ignored_version_events"] = status.ignored_version_events
        document["versions"] = {v.version: version_document(v) for v in status.versions}
    return document


def version_document(v: VersionStatus) -> dict[str, Any]:
    """The entry of one model version in ``/status`` (models with ``versions``)."""
    last: dict[str, Any] | None = None
    if v.last_result is not None:
        last = {
            "time": v.last_evaluation_time,
            "window_events": v.last_result.window_events,
            "drifted_features": list(v.last_result.drifted_features),
        }
    return {
        "reference": v.reference,
        "state": "ready" if v.ready else "capturing",
        "captured": v.captured,
        "capture_target": v.capture_target,
        "events": v.events_total,
        "window_events": v.window_events,
        "evaluations": v.evaluations,
        "alert_state": v.alert_state,
        "last_evaluation": last,
    }


def calibration_document(cal: CalibrationReport) -> dict[str, Any]:
    """The ``calibration`` entry of a model in ``/status`` (models with a budget)."""
    return {
        "source": cal.source,
        "seconds": _number(cal.seconds),
        "created_at": cal.created_at,
        "budget": {
            "false_alarms_per_month": cal.false_alarms_per_month,
            "events_per_second": cal.events_per_second,
            "window_events": cal.window_events,
            "slide_events": cal.slide_events,
            "evaluations_per_month": _number(cal.evaluations_per_month),
            "looks_per_month": _number(cal.looks_per_month),
            "consecutive": cal.consecutive,
            "min_features": cal.min_features,
        },
        "correction": cal.correction,
        "dependence": cal.dependence,
        "budget_weights": dict(cal.budget_weights),
        "alpha_evaluation": _number(cal.alpha_evaluation),
        "alpha_test": _number(cal.alpha_test),
        "checks_per_evaluation": cal.checks_per_evaluation,
        "draws": cal.draws,
        "seed": cal.seed,
        "critical_values": {
            f: {k: _number(v) for k, v in values.items()}
            for f, values in cal.critical_values.items()
        },
        "overridden": {f: dict(values) for f, values in cal.overridden.items()},
    }


def performance_document(perf: PerformanceReport) -> dict[str, Any]:
    """The ``performance`` entry of a model in ``/status`` (NaN as ``null``)."""
    return {
        "values": {k: _number(v) for k, v in perf.values.items()},
        "estimated": {k: _number(v) for k, v in perf.estimated.items()},
        "reference": {k: _number(v) for k, v in perf.reference.items()},
        "window": {"events": perf.window_events, "capacity": perf.window_capacity},
        "evaluations": perf.evaluations,
        "labels_total": perf.labels_total,
        "labels_joined_total": perf.labels_joined_total,
        "predictions_total": perf.predictions_total,
        "join": {
            "pending_predictions": perf.pending_predictions,
            "pending_labels": perf.pending_labels,
            "evicted": dict(perf.evicted),
            "duplicate_labels": perf.duplicate_labels,
            "invalid_labels": perf.invalid_labels,
        },
        "alert": {"state": perf.alert_state, "estimated_state": perf.estimated_alert_state},
    }


def status_document(store: ResultsStore, health: Health) -> dict[str, Any]:
    """The ``/status`` JSON body: readiness, then every model's latest state.

    Shape::

        {"ready": bool, "reasons": [str], "conditions": {name: bool},
         "models": {model: {"reference": {...}, "window": {...}, "events": int,
                            "evaluations": int,
                            "last_evaluation": null | {"time", "window_events",
                                "drifted_features", "absent_features",
                                "features": {name: {...}}},
                            "alert": {...},
                            "calibration": {...},  # models with a false-alarm budget
                            "performance": {...},  # models with a `performance` section
                            # models with a `versions` section:
                            "active_version": str | null, "ignored_version_events": int,
                            "versions": {version: {"reference", "state", "captured",
                                "capture_target", "events", "window_events", "evaluations",
                                "alert_state", "last_evaluation"}}
                            }},
         "scale_out": {...}}  # with kafka.scale_out: see scale_out_document

    Non-finite numbers are rendered as ``null`` so the body is strict JSON.
    """
    return models_document(store, health, None)


def models_document(
    store: ResultsStore, health: Health, models: Sequence[str] | None
) -> dict[str, Any]:
    """:func:`status_document` with only ``models`` (every model when ``None``).

    ``KeyError`` names the models the store does not hold (:func:`unknown_models_document`
    is the answer to give). Rendering one model of a thousand costs one model's document.
    """
    snapshot = store.snapshot()
    if models is None:
        chosen: dict[str, ModelStatus] = dict(snapshot.items())
    else:
        unknown = [m for m in models if m not in snapshot]
        if unknown:
            raise KeyError(*unknown)
        chosen = {m: snapshot[m] for m in models}
    doc = {
        **readiness_document(health),
        "models": {model: model_document(s) for model, s in chosen.items()},
    }
    scale_out = store.scale_out()
    if scale_out is not None:
        doc["scale_out"] = scale_out_document(scale_out)
    return doc


def scale_out_document(report: ScaleOutStatus) -> dict[str, Any]:
    """Which replica owns which model (``kafka.scale_out``); ``models`` above lists only
    the models this replica owns."""
    return {
        "replica": report.replica,
        "rows_topic": report.rows_topic,
        "source_partitions": list(report.source_partitions),
        "owned_partitions": list(report.internal_partitions),
        "owned_models": sorted(m for m, share in report.models.items() if share.owned),
        "profile_records": dict(report.profile_records),
        "models": {
            model: {
                "owned": share.owned,
                "partition": share.partition,
                "reference": share.reference,
                "sends": share.sends,
                **(
                    {
                        "rows": dict(share.counts),
                        "watermark": _number(share.watermark),
                        "watermark_lag_seconds": _number(share.watermark_lag_seconds),
                        "buffered_rows": share.buffered_rows,
                        "waiting_for": list(share.holding),
                    }
                    if share.owned
                    else {}
                ),
            }
            for model, share in report.models.items()
        },
    }


def unknown_models_document(store: ResultsStore, unknown: Sequence[str]) -> dict[str, Any]:
    """The 404 body for ``/status`` asked for models it does not report: each one named,
    with the nearest known name when there is one."""
    known = list(store.snapshot())
    names = ", ".join(repr(m) for m in unknown)
    doc: dict[str, Any] = {
        "error": f"unknown model {names}" if len(unknown) == 1 else f"unknown models {names}",
        "known_models": len(known),
        "hint": "GET /status lists every model this replica reports",
    }
    close = {m: difflib.get_close_matches(m, known, n=1) for m in unknown}
    suggestions = {m: c[0] for m, c in close.items() if c}
    if suggestions:
        doc["did_you_mean"] = suggestions
    return doc
