"""The hot metrics: counters, gauges and histograms the daemon updates as it runs.

Their label children are resolved once (per configured model, per ``decode.Reason``, per
webhook) so the pipeline counts into local integers and adds each total once per batch
through a bound child, never calling ``labels()`` per event. Every closed-enum child exists
at zero from start. :class:`Metrics` also registers the scrape-time
:class:`~monitor.publish.metrics.drift.DriftCollector` and the webhook families, so one
object builds the whole catalogue in registration order.

``_created`` series are switched off (:func:`prometheus_client.disable_created_metrics`)
when :class:`Metrics` is built: they double the series of every counter and histogram
child, no dashboard or rule uses them, and switching them off in code rather than through
``PROMETHEUS_DISABLE_CREATED_SERIES`` keeps the exposition identical in the daemon, in
tests and in ``replay``. The switch is process-wide; driftmon is the only exporter in its
process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitor import __version__
from monitor.publish.health import Health
from monitor.publish.metrics.drift import DriftCollector
from monitor.publish.metrics.scaleout import ScaleOutCollector
from monitor.publish.metrics.webhook import WebhookCounters, WebhookFamilies
from monitor.publish.results import ResultsStore

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

DEAD_LETTER_OUTCOMES = ("sent", "failed")


@dataclass(frozen=True)
class ModelCounters:
    """The bound per-model children the pipeline updates once per batch."""

    unknown_features: Counter


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
        # Each model's newest event time, read by its child at scrape: a batch updates the
        # table in one call instead of one prometheus call per model it touched.
        self._last_times: dict[str, float] = {}
        self._lag = Gauge(
            "driftmon_consumer_lag_messages",
            "Messages between an assigned partition's high watermark and the position "
            "accounted for; measured on a timer, paused partitions included.",
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
        # A failed checkpoint pauses consumption until one is written again; the
        # condition and the pause change together (app/daemon.py, state/commit.py).
        self.consumer_paused = Gauge(
            "driftmon_consumer_paused",
            "1 while consumption is paused because checkpoints cannot be written "
            "(state directory or webhook outbox); the consumer lag grows meanwhile.",
            registry=r,
        )
        self.consumer_paused.set_function(
            lambda: float(not health.conditions().get("state_dir_writable", True))
        )
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
        self._recreated = Counter(
            "driftmon_topics_recreated",
            "Times a subscribed topic was found deleted and created again since the last "
            "checkpoint: its partitions were read from the beginning, not the old offsets.",
            ["topic"],
            registry=r,
        )
        self._split = Gauge(
            "driftmon_model_split",
            "1 when another replica's recent checkpoint also holds the model: its events "
            "arrive on partitions owned by different replicas (key events by model).",
            ["model"],
            registry=r,
        )
        self._unpaired = Counter(
            "driftmon_pairing_unpaired",
            "Request or response halves that left the pairing store without their other half, "
            "by half and reason (expired: older than max_delay_seconds; capacity: "
            "max_pending; duplicate: a second half with the same key; no_id: no key to pair "
            "on). An unpaired request is still monitored with its features alone.",
            ["model", "half", "reason"],
            registry=r,
        )
        self._paired = Counter(
            "driftmon_pairing_paired",
            "Requests joined with their response before the windows.",
            ["model"],
            registry=r,
        )
        self._pending_halves = Gauge(
            "driftmon_pairing_pending",
            "Request or response halves waiting for their other half, by half.",
            ["model", "half"],
            registry=r,
        )
        self._webhooks = WebhookFamilies(r)
        self.drift = DriftCollector(results)
        r.register(self.drift)
        r.register(ScaleOutCollector(results))  # renders nothing unless kafka.scale_out is on

        self._models: dict[str, ModelCounters] = {}
        self._disowned: set[str] = set()  # scale-out: models another replica owns
        self.bind_models(models)
        self.bind_webhooks(webhooks)

    # -- per-model children --------------------------------------------------------------

    def bind_models(self, models: Sequence[str]) -> None:
        """Create the children of every configured model; drop those of removed models."""
        families = (self._unknown_features, self._last_event, self._split)
        for gone in set(self._models) - set(models):
            for family in families:
                with contextlib.suppress(KeyError):  # a disowned model has no child
                    family.remove(gone)
            del self._models[gone]
            self._disowned.discard(gone)
            self._last_times.pop(gone, None)
        for model in models:
            self._split.labels(model)  # exists at 0 from the first scrape
            if model not in self._models:
                self._models[model] = ModelCounters(self._unknown_features.labels(model))
                self._export_last_event(model)

    def own_models(self, owned: Collection[str]) -> None:
        """Scale-out: export a model's last event time and waiting halves only while this
        replica owns it, so a former owner's stale value never sits beside the owner's
        (``max by (model)``, ``sum by (model)``)."""
        for model in self._models:
            exported = model not in self._disowned
            if model in owned and not exported:
                self._export_last_event(model)  # 0 until its next batch here
                self._disowned.discard(model)
            elif model not in owned and exported:
                with contextlib.suppress(KeyError):
                    self._last_event.remove(model)
                for half in ("request", "response"):  # the new owner reports its halves
                    with contextlib.suppress(KeyError):
                        self._pending_halves.remove(model, half)
                self._last_times.pop(model, None)
                self._disowned.add(model)

    def _export_last_event(self, model: str) -> None:
        self._last_times.pop(model, None)
        child = self._last_event.labels(model)
        child.set_function(partial(self._last_times.get, model, 0.0))  # type: ignore[arg-type]

    def note_last_events(self, times: Mapping[str, float]) -> None:
        """Each model's newest event time of a batch (exported at the next scrape)."""
        self._last_times.update(times)

    def model(self, model: str) -> ModelCounters:
        """The bound children of a model bound earlier (``KeyError`` otherwise)."""
        return self._models[model]

    def count_invalid(self, counts: Mapping[str, int]) -> None:
        """Add one batch's rejected-event counts per reason (unknown reasons: ``KeyError``)."""
        for reason, n in counts.items():
            if n:
                self.invalid[reason].inc(n)

    def count_pairing(
        self,
        unpaired: Mapping[tuple[str, str, str], int],
        paired: Mapping[str, int],
        pending: Mapping[tuple[str, str], int],
    ) -> None:
        """One batch's request/response pairing: unpaired halves, pairs, halves waiting."""
        for (model, half, reason), n in unpaired.items():
            self._unpaired.labels(model, half, reason).inc(n)
        for model, n in paired.items():
            self._paired.labels(model).inc(n)
        for (model, half), n in pending.items():
            self._pending_halves.labels(model, half).set(n)

    # -- per-webhook children ------------------------------------------------------------

    def bind_webhooks(self, webhooks: Sequence[str]) -> None:
        """Create the children of every configured webhook; drop those of removed ones."""
        self._webhooks.bind(webhooks)

    def webhook(self, name: str) -> WebhookCounters:
        """The bound children of a webhook bound earlier (``KeyError`` otherwise).

        Pass this method to ``WebhookDispatcher(metrics=...)``.
        """
        return self._webhooks.webhook(name)

    def set_split_models(self, split: set[str], models: Sequence[str]) -> None:
        """Set ``driftmon_model_split`` for every configured model."""
        for model in models:
            self._split.labels(model).set(1.0 if model in split else 0.0)

    # -- consumer lag --------------------------------------------------------------------

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        """Set the lag of an assigned partition (``monitor.ingest.lag``)."""
        self._lag.labels(topic, str(partition)).set(max(lag, 0))

    def remove_lag(self, topic: str, partition: int) -> None:
        """Drop a revoked or lost partition's series; a no-op when it has none."""
        try:
            self._lag.remove(topic, str(partition))
        except KeyError:
            pass

    def topic_recreated(self, topic: str) -> None:
        """A subscribed topic came back under a new id (see ``ingest/topic_ids.py``)."""
        self._recreated.labels(topic).inc()
