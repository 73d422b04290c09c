"""The metric catalogue: hot counters bound once, drift gauges rendered at scrape time.

Two kinds of metrics live here:

* Counters, gauges and histograms the daemon updates as it runs. Their label children are
  resolved once (per configured model, per ``decode.Reason``, per webhook) so the pipeline
  counts into local integers and adds each total once per batch through a bound child,
  never calling ``labels()`` per event. Every closed-enum child exists at zero from start.
* Drift gauges (scores, p-values, thresholds, flags, window fill, reference state). These
  are not stored in prometheus_client metrics at all: :class:`DriftCollector` renders them
  from a :class:`~monitor.publish.results.ResultsStore` snapshot on each scrape, so a model or
  feature that leaves the config loses its series with no removal bookkeeping.

Everything is registered in a ``CollectorRegistry`` passed in by the caller, never the
global ``REGISTRY``, so tests build their own and read it back.

``_created`` series are switched off (:func:`prometheus_client.disable_created_metrics`)
when :class:`Metrics` is built: they double the series of every counter and histogram
child, no dashboard or rule uses them, and switching them off in code rather than through
``PROMETHEUS_DISABLE_CREATED_SERIES`` keeps the exposition identical in the daemon, in
tests and in ``replay``. The switch is process-wide; driftmon is the only exporter in its
process.

The names, types, label names and HELP texts are the contract in ``docs/ARCHITECTURE.md``
and are pinned by ``tests/golden/metrics.txt``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric

from monitor import __version__
from monitor.publish.health import Health
from monitor.publish.results import PerformanceReport, ResultsStore

# One consume -> commit batch: up to tens of thousands of events, decode plus window
# updates, usually milliseconds; the top buckets catch stalls (slow commits, GC).
BATCH_DURATION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# One model evaluation: compiled kernels over features x bins, well under a millisecond
# for small models; the low buckets must resolve that.
EVALUATION_DURATION_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)
# One webhook delivery attempt over HTTP: tens of milliseconds to the client timeout.
WEBHOOK_DELIVERY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

DEAD_LETTER_OUTCOMES = ("sent", "failed")
WEBHOOK_OUTCOMES = ("delivered", "retried", "failed")

DRIFT_SCORE_HELP = (
    "Latest drift statistic of a feature for one test (psi; ks: D statistic; kl; "
    "js: Jensen-Shannon distance; wasserstein: normalised by the reference spread; "
    "chi2: statistic). Scales differ per test: compare each test to its own threshold "
    "and never sum, average or otherwise aggregate across the test label."
)


@dataclass(frozen=True)
class ModelCounters:
    """The bound per-model children the pipeline updates once per batch."""

    unknown_features: Counter
    last_event_timestamp: Gauge


@dataclass(frozen=True)
class WebhookCounters:
    """The bound per-webhook children the delivery worker updates per attempt."""

    delivered: Counter
    retried: Counter
    failed: Counter
    pending: Gauge
    delivery_seconds: Histogram

    def outcome(self, outcome: str) -> Counter:
        """The counter child of one outcome (``delivered``, ``retried`` or ``failed``)."""
        return {"delivered": self.delivered, "retried": self.retried, "failed": self.failed}[
            outcome
        ]


class Metrics:
    """Every driftmon metric, registered in ``registry``.

    ``invalid_reasons`` is the closed list of ``decode.Reason`` values (decode owns the
    enum); one child per reason is created here at zero. ``health`` backs
    ``driftmon_ready`` and ``driftmon_kafka_connected``, so they always agree with
    ``/readyz``. ``results`` feeds the drift gauges through :class:`DriftCollector`.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        results: ResultsStore,
        health: Health,
        *,
        invalid_reasons: Sequence[str],
        models: Sequence[str] = (),
        webhooks: Sequence[str] = (),
        version: str = __version__,
    ) -> None:
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry
        r = registry

        self.build_info = Gauge(
            "driftmon_build_info", "Build metadata; always 1.", ["version"], registry=r
        )
        self.build_info.labels(version).set(1)

        self._invalid = Counter(
            "driftmon_invalid_events",
            "Rejected events by reason (closed set; every reason exists from start).",
            ["reason"],
            registry=r,
        )
        self.invalid: Mapping[str, Counter] = {
            reason: self._invalid.labels(reason) for reason in invalid_reasons
        }
        self._unknown_features = Counter(
            "driftmon_unknown_features",
            "Feature keys present in events but not configured for the model (ignored).",
            ["model"],
            registry=r,
        )
        dead_letter = Counter(
            "driftmon_dead_letter_messages",
            "Copies of invalid messages to the dead-letter topic, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.dead_letter_sent = dead_letter.labels("sent")
        self.dead_letter_failed = dead_letter.labels("failed")
        self._last_event = Gauge(
            "driftmon_last_event_timestamp_seconds",
            "Event time of the newest event of a model, epoch seconds.",
            ["model"],
            registry=r,
        )
        self._lag = Gauge(
            "driftmon_consumer_lag_messages",
            "Messages behind the partition high watermark seen in fetch responses.",
            ["topic", "partition"],
            registry=r,
        )
        self.kafka_connected = Gauge(
            "driftmon_kafka_connected", "1 when the Kafka broker is reachable.", registry=r
        )
        self.kafka_connected.set_function(lambda: float(health.conditions()["kafka_connected"]))
        self.ready = Gauge(
            "driftmon_ready", "1 when the daemon is ready (same as /readyz).", registry=r
        )
        self.ready.set_function(lambda: float(health.is_ready))
        self.batch_duration = Histogram(
            "driftmon_batch_duration_seconds",
            "Duration of one consume-to-commit batch.",
            buckets=BATCH_DURATION_BUCKETS,
            registry=r,
        )
        self.evaluation_duration = Histogram(
            "driftmon_evaluation_duration_seconds",
            "Duration of one model evaluation.",
            buckets=EVALUATION_DURATION_BUCKETS,
            registry=r,
        )
        self.checkpoint_duration = Histogram(
            "driftmon_checkpoint_duration_seconds",
            "Duration of one durable checkpoint write (temp file, fsync, rename).",
            buckets=BATCH_DURATION_BUCKETS,
            registry=r,
        )
        self.checkpoint_failures = Counter(
            "driftmon_checkpoint_failures",
            "Checkpoints that could not be written; consumption pauses until one succeeds.",
            registry=r,
        )
        self._split = Gauge(
            "driftmon_model_split",
            "1 when another replica's recent checkpoint also holds the model: its events "
            "arrive on partitions owned by different replicas (key events by model).",
            ["model"],
            registry=r,
        )
        self._webhook_deliveries = Counter(
            "driftmon_webhook_deliveries",
            "Webhook delivery attempts by outcome.",
            ["webhook", "outcome"],
            registry=r,
        )
        self._webhook_pending = Gauge(
            "driftmon_webhook_pending",
            "Drift triggers waiting in a webhook's outbox.",
            ["webhook"],
            registry=r,
        )
        self._webhook_seconds = Histogram(
            "driftmon_webhook_delivery_seconds",
            "Duration of one webhook delivery attempt.",
            ["webhook"],
            buckets=WEBHOOK_DELIVERY_BUCKETS,
            registry=r,
        )
        self.drift = DriftCollector(results)
        r.register(self.drift)

        self._models: dict[str, ModelCounters] = {}
        self._webhooks: dict[str, WebhookCounters] = {}
        self.bind_models(models)
        self.bind_webhooks(webhooks)

    # -- per-model children --------------------------------------------------------------

    def bind_models(self, models: Sequence[str]) -> None:
        """Create the children of every configured model; drop those of removed models."""
        families = (self._unknown_features, self._last_event, self._split)
        for gone in set(self._models) - set(models):
            for family in families:
                family.remove(gone)
            del self._models[gone]
        for model in models:
            self._split.labels(model)  # exists at 0 from the first scrape
            if model not in self._models:
                self._models[model] = ModelCounters(
                    unknown_features=self._unknown_features.labels(model),
                    last_event_timestamp=self._last_event.labels(model),
                )

    def model(self, model: str) -> ModelCounters:
        """The bound children of a model bound earlier (``KeyError`` otherwise)."""
        return self._models[model]

    def count_invalid(self, counts: Mapping[str, int]) -> None:
        """Add one batch's rejected-event counts per reason (unknown reasons: ``KeyError``)."""
        for reason, n in counts.items():
            if n:
                self.invalid[reason].inc(n)

    # -- per-webhook children ------------------------------------------------------------

    def bind_webhooks(self, webhooks: Sequence[str]) -> None:
        """Create the children of every configured webhook; drop those of removed ones."""
        for gone in set(self._webhooks) - set(webhooks):
            for outcome in WEBHOOK_OUTCOMES:
                self._webhook_deliveries.remove(gone, outcome)
            self._webhook_pending.remove(gone)
            self._webhook_seconds.remove(gone)
            del self._webhooks[gone]
        for name in webhooks:
            if name not in self._webhooks:
                self._webhooks[name] = WebhookCounters(
                    delivered=self._webhook_deliveries.labels(name, "delivered"),
                    retried=self._webhook_deliveries.labels(name, "retried"),
                    failed=self._webhook_deliveries.labels(name, "failed"),
                    pending=self._webhook_pending.labels(name),
                    delivery_seconds=self._webhook_seconds.labels(name),
                )

    def webhook(self, name: str) -> WebhookCounters:
        """The bound children of a webhook bound earlier (``KeyError`` otherwise)."""
        return self._webhooks[name]

    def set_split_models(self, split: set[str], models: Sequence[str]) -> None:
        """Set ``driftmon_model_split`` for every configured model."""
        for model in models:
            self._split.labels(model).set(1.0 if model in split else 0.0)

    # -- consumer lag --------------------------------------------------------------------

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        """Set the lag of an assigned partition (from stats_cb high watermarks)."""
        self._lag.labels(topic, str(partition)).set(max(lag, 0))

    def remove_lag(self, topic: str, partition: int) -> None:
        """Drop a revoked partition's series; a no-op when it has none."""
        try:
            self._lag.remove(topic, str(partition))
        except KeyError:
            pass


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

    def collect(self) -> Iterator[Metric]:
        """Render the current snapshot; runs fresh on every scrape."""
        fam = self._families()
        counters = self._counters()
        perf = self._performance_families()
        for model, status in self._results.snapshot().items():
            if status.performance is not None:
                _render_performance(perf, model, status.performance)
            counters["driftmon_events"].add_metric([model], float(status.events_total))
            counters["driftmon_evaluations"].add_metric([model], float(status.evaluations))
            counters["driftmon_late_events"].add_metric([model], float(status.late_events))
            counters["driftmon_retrain_triggers"].add_metric(
                [model], float(status.retrain_triggers)
            )
            if status.versioned:
                counters["driftmon_ignored_version_events"].add_metric(
                    [model], float(status.ignored_version_events)
                )
                if status.version is not None:
                    fam["driftmon_model_info"].add_metric([model, status.version], 1.0)
            counters["driftmon_retrain_suppressed"].add_metric(
                [model], float(status.retrain_suppressed)
            )
            for (feature, key), value in status.threshold_values.items():
                fam["driftmon_drift_threshold"].add_metric([model, feature, key], value)
            fam["driftmon_model_drifted"].add_metric([model], float(status.drifted))
            fam["driftmon_alert_state"].add_metric([model], float(status.alert_state_value))
            fam["driftmon_window_events"].add_metric([model], float(status.window_events))
            fam["driftmon_window_fill_ratio"].add_metric([model], status.window_fill_ratio)
            fam["driftmon_reference_ready"].add_metric([model], float(status.reference_ready))
            if status.last_evaluation_time is not None:
                fam["driftmon_last_evaluation_timestamp_seconds"].add_metric(
                    [model], status.last_evaluation_time
                )
            result = status.last_result
            if result is None:
                continue
            drifted = 0
            for f in result.features:
                for test, score in f.scores.items():
                    if _finite(score):
                        fam["driftmon_drift_score"].add_metric([model, f.name, test], score)
                for test, p in f.p_values.items():
                    if _finite(p):
                        fam["driftmon_drift_p_value"].add_metric([model, f.name, test], p)
                fam["driftmon_feature_drifted"].add_metric([model, f.name], float(f.drifted))
                if _finite(f.missing_ratio):
                    fam["driftmon_missing_ratio"].add_metric([model, f.name], f.missing_ratio)
                drifted += f.drifted
            fam["driftmon_features_drifted"].add_metric([model], float(drifted))
        yield from counters.values()
        yield from fam.values()
        yield from perf.all()


def _render_performance(fam: _PerformanceFamilies, model: str, p: PerformanceReport) -> None:
    """Add one model's performance samples (non-finite values are left out)."""
    for family, values in (
        (fam.values, p.values),
        (fam.estimated, p.estimated),
        (fam.reference, p.reference),
    ):
        for metric, value in values.items():
            if _finite(value):
                family.add_metric([model, metric], value)
    fam.pending.add_metric([model], float(p.pending_predictions + p.pending_labels))
    fam.labels.add_metric([model], float(p.labels_total))
    fam.joined.add_metric([model], float(p.labels_joined_total))
    for reason, n in sorted(p.evicted.items()):
        fam.evicted.add_metric([model, str(reason)], float(n))
    cumulative = 0
    buckets: list[tuple[str, float]] = []
    for bound, count in zip((*p.delay_buckets, math.inf), p.delay_counts, strict=True):
        cumulative += count
        le = prometheus_client.utils.floatToGoString(bound)  # type: ignore[no-untyped-call]
        buckets.append((le, float(cumulative)))
    fam.delay.add_metric([model], buckets, p.delay_sum)
