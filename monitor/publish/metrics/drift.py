"""The scrape-time drift families, rendered from a results snapshot on every scrape.

Drift gauges (scores, p-values, thresholds, flags, window fill, reference state), the
per-model counters that move with the model through checkpoints, and the performance
families are not stored in prometheus_client metrics at all: :class:`DriftCollector`
renders them from a :class:`~monitor.publish.results.ResultsStore` snapshot on each scrape,
so a feature that leaves a model's result loses its series with no removal bookkeeping.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import prometheus_client
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric

from monitor.model.status import ModelStatus, PerformanceReport
from monitor.publish.results import ResultsStore

DRIFT_SCORE_HELP = (
    "Latest drift statistic of a feature for one test (psi; ks: D statistic; kl; "
    "js: Jensen-Shannon distance; wasserstein: normalised by the reference spread; "
    "chi2: statistic). Scales differ per test: compare each test to its own threshold "
    "and never sum, average or otherwise aggregate across the test label."
)


def _finite(value: float) -> bool:
    return math.isfinite(value)


@dataclass(frozen=True)
class _PerformanceFamilies:
    """The performance families of one scrape (rendered from ``ModelStatus.performance``)."""

    values: GaugeMetricFamily
    estimated: GaugeMetricFamily
    reference: GaugeMetricFamily
    pending: GaugeMetricFamily
    labels: CounterMetricFamily
    joined: CounterMetricFamily
    evicted: CounterMetricFamily
    delay: HistogramMetricFamily

    def all(self) -> list[Metric]:
        return [
            self.values,
            self.estimated,
            self.reference,
            self.pending,
            self.labels,
            self.joined,
            self.evicted,
            self.delay,
        ]


class DriftCollector:
    """Renders the drift gauges from a :class:`ResultsStore` snapshot on every scrape.

    Non-finite scores and p-values (a test that had too little data) are left out rather
    than exported as NaN, so a rule comparing them to a threshold sees no series instead
    of a value that is never greater or smaller than anything.
    """

    def __init__(self, results: ResultsStore) -> None:
        self._results = results

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        model, feature, test = "model", "feature", "test"
        specs: tuple[tuple[str, str, tuple[str, ...]], ...] = (
            ("driftmon_drift_score", DRIFT_SCORE_HELP, (model, feature, test)),
            (
                "driftmon_drift_p_value",
                "Latest p-value of a feature's test (ks and chi2 only); lower means "
                "stronger evidence of drift.",
                (model, feature, test),
            ),
            (
                "driftmon_drift_threshold",
                "Threshold in use for a feature's test (configured, or calibrated from the "
                "false-alarm budget), on the scale of the value it is compared with: the "
                "p-value for ks and chi2 p-value thresholds, else the score.",
                (model, feature, test),
            ),
            (
                "driftmon_feature_drifted",
                "1 when the latest evaluation flagged the feature as drifted.",
                (model, feature),
            ),
            (
                "driftmon_feature_absent",
                "1 when no event of the newest slide of the latest evaluation carried the "
                "feature: a schema problem (the producer stopped sending it), reported apart "
                "from drift.",
                (model, feature),
            ),
            (
                "driftmon_features_drifted",
                "Number of drifted features in the latest evaluation of a model.",
                (model,),
            ),
            (
                "driftmon_model_drifted",
                "1 while drift of the model is confirmed (min_features in consecutive "
                "evaluations).",
                (model,),
            ),
            (
                "driftmon_alert_state",
                "Alert state of a model: 0 ok, 1 pending, 2 firing, 3 resolved.",
                (model,),
            ),
            (
                "driftmon_missing_ratio",
                "Ratio of missing values of a feature in the latest evaluated window (0..1).",
                (model, feature),
            ),
            ("driftmon_window_events", "Events in the current window of a model.", (model,)),
            (
                "driftmon_window_fill_ratio",
                "How full the current window of a model is (0..1).",
                (model,),
            ),
            (
                "driftmon_reference_ready",
                "1 when the reference profile of a model is loaded or its capture is complete.",
                (model,),
            ),
            (
                "driftmon_last_evaluation_timestamp_seconds",
                "Wall-clock time of the last evaluation of a model, epoch seconds.",
                (model,),
            ),
            (
                "driftmon_model_info",
                "1 for the active version of a model with versions (the version of its "
                "newest events; empty for events without one). The per-model series "
                "describe this version.",
                (model, "version"),
            ),
        )
        return {
            name: GaugeMetricFamily(name, doc, labels=list(labels)) for name, doc, labels in specs
        }

    @staticmethod
    def _counters() -> dict[str, CounterMetricFamily]:
        specs = (
            ("driftmon_events", "Valid events accounted to a model."),
            ("driftmon_evaluations", "Window evaluations of a model."),
            (
                "driftmon_late_events",
                "Time windows: events older than the oldest window slot, dropped.",
            ),
            (
                "driftmon_retrain_triggers",
                "Confirmed drift and performance events handed to the webhooks.",
            ),
            (
                "driftmon_ignored_version_events",
                "Events of a model version without a reference, dropped "
                "(versions.on_new_version: ignore).",
            ),
            (
                "driftmon_retrain_suppressed",
                "Confirmed drift and performance events withheld because a retrain trigger "
                "of the model is in flight (retrain_grace_seconds).",
            ),
        )
        return {name: CounterMetricFamily(name, doc, labels=["model"]) for name, doc in specs}

    @staticmethod
    def _performance_families() -> _PerformanceFamilies:
        model, metric = "model", "metric"
        return _PerformanceFamilies(
            values=GaugeMetricFamily(
                "driftmon_performance",
                "Realised metric of a model over its latest full window of joined "
                "(labelled) predictions; defined as scikit-learn defines it.",
                labels=[model, metric],
            ),
            estimated=GaugeMetricFamily(
                "driftmon_estimated_performance",
                "Metric of a classifier estimated from its calibrated probabilities over "
                "the latest window of predictions, labelled or not.",
                labels=[model, metric],
            ),
            reference=GaugeMetricFamily(
                "driftmon_reference_performance",
                "Metric of a model on its reference data (from the reference profile).",
                labels=[model, metric],
            ),
            pending=GaugeMetricFamily(
                "driftmon_join_pending",
                "Entries waiting in a model's join store: predictions waiting for their "
                "label plus labels waiting for their prediction.",
                labels=[model],
            ),
            labels=CounterMetricFamily(
                "driftmon_labels",
                "Usable labels received for a model (label events and inline labels).",
                labels=[model],
            ),
            joined=CounterMetricFamily(
                "driftmon_labels_joined", "Labels joined to their prediction.", labels=[model]
            ),
            evicted=CounterMetricFamily(
                "driftmon_join_evicted",
                "Predictions and labels that left the join store without a partner, by "
                "reason (expired: older than max_delay_seconds; capacity: max_pending).",
                labels=[model, "reason"],
            ),
            delay=HistogramMetricFamily(
                "driftmon_label_delay_seconds",
                "Event-time delay from a prediction to its label, per joined pair "
                "(a label that came first counts as 0).",
                labels=[model],
            ),
        )

    def describe(self) -> Iterable[Metric]:
        """The families this collector owns, without samples (lets the registry check names)."""
        return [
            *self._families().values(),
            *self._counters().values(),
            *self._performance_families().all(),
        ]

    def family_set(self) -> tuple[Families, list[Metric]]:
        """Empty families of one scrape, and all of them in the order they are exposed."""
        fam, counters, perf = self._families(), self._counters(), self._performance_families()
        return (fam, counters, perf), [*counters.values(), *fam.values(), *perf.all()]

    @property
    def results(self) -> ResultsStore:
        return self._results

    def collect(self) -> Iterator[Metric]:
        """Render the current snapshot; runs fresh on every scrape. Within
        :func:`deferred_drift` a :class:`DriftMarker` stands for the families instead."""
        if getattr(_DEFERRED, "on", False):
            yield DriftMarker(self)
            return
        families, ordered = self.family_set()
        for model, status in self._results.snapshot().items():
            # Counters are process-lifetime: model resets and restores do not move them.
            add_model(families, model, status, self._results.counters(status))
        yield from ordered


#: (gauges, counters, performance families) of one scrape, by name.
Families = tuple[dict[str, GaugeMetricFamily], dict[str, CounterMetricFamily], _PerformanceFamilies]

#: The families every batch of a model's rows moves (its hot counts), rendered afresh at
#: every scrape; a model's other families change only with its published status.
HOT_FAMILIES = frozenset(
    {"driftmon_events", "driftmon_late_events", "driftmon_window_events",
     "driftmon_window_fill_ratio"}
)  # fmt: skip

_DEFERRED = threading.local()


@contextmanager
def deferred_drift() -> Iterator[None]:
    """On this thread, a :class:`DriftCollector` yields a :class:`DriftMarker` in place of
    its families: ``/metrics`` splices in their cached text there."""
    _DEFERRED.on = True
    try:
        yield
    finally:
        _DEFERRED.on = False


class DriftMarker(Metric):
    """Where a :class:`DriftCollector`'s families go in the exposition (no samples)."""

    def __init__(self, collector: DriftCollector) -> None:
        super().__init__("driftmon_drift_families", "placeholder", "unknown")
        self.collector = collector


def add_hot(
    families: Families, model: str, status: ModelStatus, total: Mapping[str, float]
) -> None:
    """One model's samples of the :data:`HOT_FAMILIES`."""
    fam, counters, _ = families
    counters["driftmon_events"].add_metric([model], total["events_total"])
    counters["driftmon_late_events"].add_metric([model], total["late_events"])
    fam["driftmon_window_events"].add_metric([model], float(status.window_events))
    fam["driftmon_window_fill_ratio"].add_metric([model], status.window_fill_ratio)


def add_model(
    families: Families, model: str, status: ModelStatus, total: Mapping[str, float]
) -> None:
    """All samples of one model; ``total``: its process-lifetime counter values."""
    fam, counters, perf = families
    if status.performance is not None:
        _render_performance(perf, model, status.performance, total)
    _render_totals(counters, model, status.versioned, total)
    add_hot(families, model, status, total)
    if status.versioned and status.version is not None:
        fam["driftmon_model_info"].add_metric([model, status.version], 1.0)
    for (feature, key), value in status.threshold_values.items():
        fam["driftmon_drift_threshold"].add_metric([model, feature, key], value)
    fam["driftmon_model_drifted"].add_metric([model], float(status.drifted))
    fam["driftmon_alert_state"].add_metric([model], float(status.alert_state_value))
    fam["driftmon_reference_ready"].add_metric([model], float(status.reference_ready))
    if status.last_evaluation_time is not None:
        fam["driftmon_last_evaluation_timestamp_seconds"].add_metric(
            [model], status.last_evaluation_time
        )
    result = status.last_result
    if result is None:
        return
    drifted = 0
    for f in result.features:
        for test, score in f.scores.items():
            if _finite(score):
                fam["driftmon_drift_score"].add_metric([model, f.name, test], score)
        for test, p in f.p_values.items():
            if _finite(p):
                fam["driftmon_drift_p_value"].add_metric([model, f.name, test], p)
        fam["driftmon_feature_drifted"].add_metric([model, f.name], float(f.drifted))
        absent = float(f.name in status.absent_features)
        fam["driftmon_feature_absent"].add_metric([model, f.name], absent)
        if _finite(f.missing_ratio):
            fam["driftmon_missing_ratio"].add_metric([model, f.name], f.missing_ratio)
        drifted += f.drifted
    fam["driftmon_features_drifted"].add_metric([model], float(drifted))


_TOTAL_FAMILIES = (  # events and late events: add_hot
    ("driftmon_evaluations", "evaluations"),
    ("driftmon_retrain_triggers", "retrain_triggers"),
    ("driftmon_retrain_suppressed", "retrain_suppressed"),
)


def _render_totals(
    counters: Mapping[str, CounterMetricFamily],
    model: str,
    versioned: bool,
    total: Mapping[str, float],
) -> None:
    for family, key in _TOTAL_FAMILIES:
        counters[family].add_metric([model], total[key])
    if versioned:
        counters["driftmon_ignored_version_events"].add_metric(
            [model], total["ignored_version_events"]
        )


def _render_performance(
    fam: _PerformanceFamilies, model: str, p: PerformanceReport, total: Mapping[str, float]
) -> None:
    """Add one model's performance samples (non-finite values are left out); counters
    and the delay histogram come from the process-lifetime ``total``."""
    for family, values in (
        (fam.values, p.values),
        (fam.estimated, p.estimated),
        (fam.reference, p.reference),
    ):
        for metric, value in values.items():
            if _finite(value):
                family.add_metric([model, metric], value)
    fam.pending.add_metric([model], float(p.pending_predictions + p.pending_labels))
    fam.labels.add_metric([model], total["labels_total"])
    fam.joined.add_metric([model], total["labels_joined_total"])
    evicted = sorted(k.partition(":")[2] for k in total if k.startswith("evicted:"))
    for reason in evicted:
        fam.evicted.add_metric([model, reason], total[f"evicted:{reason}"])
    cumulative = 0.0
    buckets: list[tuple[str, float]] = []
    for i, bound in enumerate((*p.delay_buckets, math.inf)):
        cumulative += total.get(f"delay_count:{i}", 0.0)
        le = prometheus_client.utils.floatToGoString(bound)  # type: ignore[no-untyped-call]
        buckets.append((le, cumulative))
    fam.delay.add_metric([model], buckets, total.get("delay_sum", 0.0))
