"""The long-running service: wires every component from the config and runs the loop.

Shutdown order on SIGTERM/SIGINT (or when ``max_seconds``/``max_events`` is reached):
finish the batch in hand, commit its offsets, close the consumer (leaving the group), flush
the dead-letter producer, flush pending webhooks for a bounded time, stop the HTTP server.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import __version__
from monitor.config import CaptureReference, Config
from monitor.decode import Reason
from monitor.health import Health
from monitor.metrics import Metrics
from monitor.pipeline import BatchOutcome, Evaluation, Pipeline
from monitor.results import ResultsStore
from monitor.server import Server
from monitor.source import DeadLetterSink, KafkaSource, Message
from monitor.stats import ReferenceProfile, warmup
from monitor.webhooks.delivery import WebhookDispatcher

logger = logging.getLogger(__name__)


def load_profiles(config: Config, base_dir: Path | None = None) -> dict[str, ReferenceProfile]:
    """Load every file reference; paths are relative to the config file's directory."""
    profiles: dict[str, ReferenceProfile] = {}
    for name, model in config.models.items():
        if isinstance(model.reference, CaptureReference):
            continue
        path = Path(model.reference)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        profiles[name] = ReferenceProfile.load(path)
    return profiles


class Daemon:
    """driftmon run."""

    def __init__(
        self,
        config: Config,
        *,
        config_dir: Path | None = None,
        registry: CollectorRegistry | None = None,
        profiles: Mapping[str, ReferenceProfile] | None = None,
        on_evaluation: Callable[[Evaluation], None] | None = None,
    ) -> None:
        self.config = config
        self._on_evaluation = on_evaluation
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.results = ResultsStore()
        self.health = Health()
        self.metrics = Metrics(
            self.registry,
            self.results,
            self.health,
            invalid_reasons=[r.value for r in Reason],
            models=list(config.models),
            webhooks=[w.name for w in config.webhooks],
            version=__version__,
        )
        if profiles is None:
            profiles = load_profiles(config, config_dir)
        self.pipeline = Pipeline(config, profiles, self.results)
        self.health.set("config_loaded", True)
        self.health.set("references_ready", self.pipeline.references_ready)
        self.dispatcher = WebhookDispatcher(
            config.webhooks,
            state_dir=Path(config.state.dir) if config.state is not None else None,
            registry=self.registry,
            metrics=self.metrics.webhook,
        )
        self.server = Server(
            self.registry, self.results, self.health, host=config.http.host, port=config.http.port
        )
        self._stop = threading.Event()
        self.source: KafkaSource | None = None
        self.dead_letter: DeadLetterSink | None = None
        self.events_total = 0

    @property
    def http_port(self) -> int:
        """The bound HTTP port, or 0 before the server started."""
        try:
            return self.server.port
        except RuntimeError:
            return 0

    # -- lifecycle ---------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        logger.info("stop requested", extra={"signal": signal.Signals(signum).name})
        self._stop.set()

    def start(self) -> None:
        """Everything but the loop: HTTP first (so /healthz answers), kernels, consumer."""
        self.server.start()
        seconds = warmup()
        self.health.set("kernels_warm", True)
        logger.info("numba kernels warm", extra={"duration_seconds": round(seconds, 3)})
        if self.config.state is None:
            logger.info("no state section: running stateless (windows start empty on restart)")
        self.dispatcher.start()
        kafka = self.config.kafka
        if kafka.dead_letter_topic:
            self.dead_letter = DeadLetterSink(
                kafka.bootstrap_servers,
                kafka.dead_letter_topic,
                kafka.producer,
                on_result=self._on_dead_letter,
            )
        self.source = KafkaSource(
            kafka.bootstrap_servers,
            kafka.group_id,
            [t.name for t in kafka.topics],
            kafka.consumer,
            on_assign=lambda _parts: self.health.set("consumer_assigned", True),
            on_lag=self._on_lag,
            on_connected=self._on_connected,
        )
        logger.info(
            "driftmon started",
            extra={
                "version": __version__,
                "models": ",".join(self.config.models),
                "http_port": self.http_port,
            },
        )

    def _on_connected(self, connected: bool) -> None:
        self.health.set("kafka_connected", connected)

    def _on_lag(self, topic: str, partition: int, lag: int | None) -> None:
        if lag is None:
            self.metrics.remove_lag(topic, partition)
        else:
            self.metrics.set_lag(topic, partition, lag)

    def _on_dead_letter(self, sent: bool) -> None:
        (self.metrics.dead_letter_sent if sent else self.metrics.dead_letter_failed).inc()

    def _record(self, outcome: BatchOutcome) -> None:
        """Counters once per batch, not per event."""
        metrics = self.metrics
        for model, n in outcome.accepted.items():
            metrics.model(model).events.inc(n)
        for model, n in outcome.unknown_features.items():
            metrics.model(model).unknown_features.inc(n)
        for model, n in outcome.late.items():
            metrics.model(model).late_events.inc(n)
        for model, ts in outcome.last_event_time.items():
            metrics.model(model).last_event_timestamp.set(ts)
        reasons: dict[str, int] = {}
        for rejection in outcome.rejected:
            reasons[rejection.reason] = reasons.get(rejection.reason, 0) + 1
        metrics.count_invalid(reasons)
        for evaluation in outcome.evaluations:
            counters = metrics.model(evaluation.model)
            counters.evaluations.inc()
            metrics.evaluation_duration.observe(evaluation.duration_seconds)
            if evaluation.drift_event is not None:
                counters.retrain_triggers.inc()

    def run(
        self,
        *,
        max_seconds: float | None = None,
        max_events: int | None = None,
        install_signals: bool = True,
    ) -> int:
        """Run until stopped; returns the process exit code."""
        if install_signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        self.start()
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        try:
            self._loop(deadline, max_events)
        finally:
            self.shutdown()
        return 0

    def _loop(self, deadline: float | None, max_events: int | None) -> None:
        source = self.source
        if source is None:
            raise RuntimeError("start() must run before the loop")
        kafka = self.config.kafka
        max_messages = kafka.batch_max_messages
        timeout = kafka.poll_timeout_seconds
        stop = self._stop
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            messages = source.consume(max_messages, timeout)
            if not messages:
                continue
            started = time.perf_counter()
            outcome = self.process_messages(messages)
            source.mark_processed(messages)
            source.commit(synchronous=False)
            self.metrics.batch_duration.observe(time.perf_counter() - started)
            self.events_total += sum(outcome.accepted.values())
            if max_events is not None and self.events_total >= max_events:
                break

    def process_messages(self, messages: list[Message]) -> BatchOutcome:
        """Account for one consumed batch: statistics, counters, dead letters, webhooks."""
        by_topic: dict[str, list[Message]] = {}
        for msg in messages:
            by_topic.setdefault(msg.topic() or "", []).append(msg)
        total = BatchOutcome()
        for topic, msgs in by_topic.items():
            payloads = [m.value() for m in msgs]
            kafka_ts = np.fromiter(
                (_kafka_seconds(m) for m in msgs), dtype=np.float64, count=len(msgs)
            )
            outcome = self.pipeline.process(payloads, kafka_ts, topic)
            for rejection in outcome.rejected:
                msg = msgs[rejection.index]
                if self.dead_letter is not None:
                    self.dead_letter.send(
                        msg.value(),
                        rejection.reason,
                        rejection.detail,
                        (topic, msg.partition() or 0, msg.offset() or 0),
                    )
            total.merge(outcome)
        self._record(total)
        self.health.set("references_ready", self.pipeline.references_ready)
        for evaluation in total.evaluations:
            if self._on_evaluation is not None:
                self._on_evaluation(evaluation)
            event = evaluation.drift_event
            if event is not None:
                logger.info(
                    "drift confirmed, triggering webhooks",
                    extra={
                        "model": event.model,
                        "event_id": event.id,
                        "features": event.features_drifted,
                    },
                )
                self.dispatcher.submit(event)
        return total

    def shutdown(self) -> None:
        logger.info("shutting down")
        if self.source is not None:
            try:
                self.source.close()
            except Exception:  # keep shutting down the rest
                logger.exception("consumer close failed")
            self.source = None
        if self.dead_letter is not None:
            self.dead_letter.flush(5.0)
        self.dispatcher.flush(5.0)
        self.dispatcher.stop(2.0)
        self.server.stop()
        logger.info("stopped", extra={"events": self.events_total})


def _kafka_seconds(msg: Message) -> float:
    kind, millis = msg.timestamp()
    return millis / 1000.0 if kind != 0 and millis > 0 else time.time()
