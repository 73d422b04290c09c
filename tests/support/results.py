"""Populated fake results for tests of metrics, ``/status`` and dashboards.

The fakes mirror the documented shape of ``monitor.stats.FeatureResult`` and
``DriftResult`` so reporting can be tested without running the statistics engine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from monitor.model.status import ModelStatus, PerformanceReport, VersionStatus

INVALID_REASONS = (
    "not_json",
    "not_utf8",
    "not_object",
    "missing_model",
    "unknown_model",
    "wrong_type",
    "non_finite",
    "oversized",
    "no_payload",
    "bad_timestamp",
)
"""``decode.Reason``'s values as documented; decode owns the enum, the daemon passes it in."""


@dataclass(frozen=True)
class FakeFeatureResult:
    """Stands in for ``monitor.stats.FeatureResult``."""

    name: str
    kind: str
    n: int
    missing_ratio: float
    scores: Mapping[str, float]
    p_values: Mapping[str, float] = field(default_factory=dict)
    crossed: tuple[str, ...] = ()
    drifted: bool = False
    enough_data: bool = True


@dataclass(frozen=True)
class FakeDriftResult:
    """Stands in for ``monitor.stats.DriftResult``."""

    model: str
    window_events: int
    features: tuple[FakeFeatureResult, ...]

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drifted)


def fake_status(model: str = "fraud", *, with_result: bool = True) -> ModelStatus:
    """A firing model: ``amount`` drifted on psi and ks, ``country`` clean, one NaN score."""
    result = FakeDriftResult(
        model=model,
        window_events=20000,
        features=(
            FakeFeatureResult(
                name="amount",
                kind="numeric",
                n=19800,
                missing_ratio=0.01,
                scores={"psi": 0.41, "ks": 0.12, "js": 0.08},
                p_values={"ks": 1e-9},
                crossed=("psi", "ks_p_value"),
                drifted=True,
            ),
            FakeFeatureResult(
                name="country",
                kind="categorical",
                n=20000,
                missing_ratio=0.0,
                scores={"psi": 0.01, "js": 0.02, "chi2": math.nan},
                p_values={"chi2": math.nan},
                enough_data=False,
            ),
        ),
    )
    return ModelStatus(
        model=model,
        reference_state="loaded",
        reference_events=50000,
        window_events=20000,
        window_capacity=20000,
        window_fill_ratio=1.0,
        evaluations=7,
        last_evaluation_time=1764150000.5 if with_result else None,
        last_result=result if with_result else None,
        drifted=True,
        consecutive=2,
        alert_state="firing",
        last_trigger_time=1764150000.5,
        threshold_values={
            ("amount", "psi"): 0.2,
            ("amount", "ks"): 0.001,
            ("amount", "js"): 0.1,
            ("country", "psi"): 0.2,
            ("country", "js"): 0.1,
            ("country", "chi2"): 0.001,
        },
        # As the alert holds them: every threshold set, keyed like `crossed`; the status
        # document shows those of the tests each feature runs.
        check_thresholds={
            "amount": {
                "psi": 0.2,
                "ks_p_value": 0.001,
                "js": 0.1,
                "chi2_p_value": 0.001,
                "missing_ratio": 0.1,
            },
            "country": {
                "psi": 0.2,
                "ks_p_value": 0.001,
                "js": 0.1,
                "chi2_p_value": 0.001,
                "missing_ratio": 0.1,
            },
        },
        reference_missing={"amount": 0.004, "country": 0.0},
    )


def fake_version(version: str = "v2", *, ready: bool = True) -> VersionStatus:
    """One version of a model with versions: captured, ready (or capturing) and evaluated."""
    return VersionStatus(
        version=version,
        reference="captured",
        ready=ready,
        captured=10_000 if ready else 4_000,
        capture_target=10_000,
        events_total=30_000,
        window_events=20_000 if ready else 0,
        evaluations=3 if ready else 0,
        alert_state="ok",
        last_evaluation_time=1764150000.5 if ready else None,
        last_result=None,
    )


def fake_performance() -> PerformanceReport:
    """A binary classifier's performance: realised, estimated and reference values (one
    NaN), a few pending and evicted entries and a label-delay histogram."""
    return PerformanceReport(
        values={"accuracy": 0.91, "roc_auc": 0.83, "log_loss": math.nan},
        estimated={"accuracy": 0.9, "roc_auc": 0.85},
        reference={"accuracy": 0.95, "roc_auc": 0.9, "log_loss": 0.2},
        metrics=("accuracy", "roc_auc", "log_loss"),
        labels_total=900,
        labels_joined_total=850,
        predictions_total=1000,
        pending_predictions=120,
        pending_labels=30,
        evicted={"capacity": 0, "expired": 20},
        duplicate_labels=3,
        invalid_labels=1,
        window_events=500,
        window_capacity=500,
        evaluations=4,
        alert_state="pending",
        estimated_alert_state="ok",
        delay_buckets=(1.0, 60.0, 3600.0),
        delay_counts=(100, 600, 140, 10),
        delay_sum=90_000.0,
    )
