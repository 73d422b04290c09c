"""The long-running service: wires every component from the config and runs the loop.

Shutdown order on SIGTERM/SIGINT (or when ``max_seconds``/``max_events`` is reached):
finish the batch in hand, commit its offsets, close the consumer (leaving the group), flush
the dead-letter producer, flush pending webhooks for a bounded time, stop the HTTP server.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from types import FrameType

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import __version__
from monitor.config import Config
from monitor.errors import CheckpointError
from monitor.ingest.decode import Reason
from monitor.ingest.decode.scanner import warmup as scanner_warmup
from monitor.ingest.source import (
    DeadLetterSink,
    KafkaSource,
    Message,
    message_partitions,
    message_seconds,
    message_topics,
    message_values,
)
from monitor.model.reference_file import ModelReference, load_references
from monitor.performance.warmup import warmup as performance_warmup
from monitor.pipeline import BatchOutcome, Evaluation, Pipeline
from monitor.publish.health import Health
from monitor.publish.metrics import Metrics
from monitor.publish.results import ResultsStore
from monitor.publish.server import Server
from monitor.state.checkpoint import CheckpointStore
from monitor.state.recovery import RecoveryCoordinator
from monitor.stats import warmup
from monitor.webhooks.delivery import WebhookDispatcher

logger = logging.getLogger(__name__)

#: Kafka message header carrying the model version of events without a version field.
VERSION_HEADER = "version"

#: A batch's pipeline outcome per topic, with the topic's messages.
Parts = list[tuple[str, list[Message], BatchOutcome]]


def warm_kernels() -> float:
    """Compile (or load from the cache) every Numba kernel; the seconds it took."""
    started = time.perf_counter()
    warmup()
    performance_warmup()
    scanner_warmup()
    return time.perf_counter() - started


def header_version(msg: Message) -> str | None:
    """The ``version`` header of a message (UTF-8), or ``None``."""
    headers = msg.headers()
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, dict) else headers
    for key, value in pairs:
        if key != VERSION_HEADER or value is None:
            continue
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                return None
        return value or None
    return None


class Daemon:
    """driftmon run."""

    def __init__(
        self,
        config: Config,
        *,
        config_dir: Path | None = None,
        registry: CollectorRegistry | None = None,
        references: Mapping[str, ModelReference] | None = None,
        on_evaluation: Callable[[Evaluation], None] | None = None,
        replica_id: str | None = None,
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
        if references is None:
            references = load_references(config, config_dir)
        self.pipeline = Pipeline(config, references, self.results)
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
        self._closing = False
        # One worker for the statistics of the batch in flight (see _loop and _drain).
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="driftmon-stats")
        self._inflight: tuple[list[Message], Future[Parts]] | None = None
        self._batch_started = 0.0
        self.source: KafkaSource | None = None
        self.dead_letter: DeadLetterSink | None = None
        self.events_total = 0
        self.invalid_counts: dict[str, int] = {}
        self.recovery: RecoveryCoordinator | None = None
        if config.state is not None:
            self.health.register("state_dir_writable", True)
            store = CheckpointStore(
                Path(config.state.dir),
                replica_id or os.environ.get("DRIFTMON_REPLICA_ID") or socket.gethostname(),
                on_corrupt=config.state.on_corrupt,
            )
            self.recovery = RecoveryCoordinator(
                store, self.pipeline, config.state.checkpoint_interval_seconds
            )
            # Replica-level counters resume from this replica's own last checkpoint.
            for reason, n in self.recovery.restored_counters.items():
                if reason in self.metrics.invalid and n > 0:
                    self.metrics.invalid[reason].inc(n)
                    self.invalid_counts[reason] = n

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
        seconds = warm_kernels()
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
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
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

    def _on_assign(self, pairs: list[tuple[str, int]]) -> dict[tuple[str, int], int] | None:
        self._drain(commit=False)
        seek = self.recovery.on_assign(pairs) if self.recovery is not None else None
        self._calibrate()
        self.health.set("consumer_assigned", True)
        return seek

    def _calibrate(self) -> None:
        """Calibrate the false-alarm budgets still pending, once checkpoints had their
        chance to provide them (a restored calibration is reused, not recomputed)."""
        if self.pipeline.calibrate_pending():
            self.pipeline.publish()

    def _on_revoke(self, pairs: list[tuple[str, int]]) -> None:
        # Checkpoint first: the source commits the revoked partitions right after this.
        # The handover copy keeps their state on disk after the next periodic checkpoint
        # (which no longer lists them) replaces this replica's own file.
        # At shutdown the final checkpoint is the last word: no copy is needed.
        self._drain(commit=False)
        if self.recovery is not None:
            self.checkpoint(handover=not self._closing)
            self.recovery.on_revoke(pairs)

    def checkpoint(self, *, handover: bool = False) -> bool:
        """Checkpoint now; on failure pause consumption and report, never commit past it."""
        self._drain(commit=False)
        recovery, source = self.recovery, self.source
        if recovery is None or source is None:
            return True
        if not source.assigned:
            # Before the first assignment nothing is restored yet: writing now would
            # replace the last good checkpoint with an empty one.
            return True
        try:
            seconds = recovery.checkpoint(source.positions, self.invalid_counts, handover=handover)
        except CheckpointError as exc:
            if not recovery.failing:
                logger.error(
                    "checkpoint failed: consumption paused until the state directory is "
                    "writable again",
                    extra={"error": str(exc)},
                )
            recovery.failing = True
            recovery.last_checkpoint = time.time()
            self.health.set("state_dir_writable", False, str(exc))
            self.metrics.checkpoint_failures.inc()
            source.pause()
            return False
        if not self.health.conditions().get("state_dir_writable", True):
            logger.info("checkpoint written again: consumption resumes")
        self.health.set("state_dir_writable", True)
        self.metrics.checkpoint_duration.observe(seconds)
        self.metrics.set_split_models(recovery.split_models, list(self.config.models))
        source.resume()
        return True

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
        for model, n in outcome.unknown_features.items():
            metrics.model(model).unknown_features.inc(n)
        for model, ts in outcome.last_event_time.items():
            metrics.model(model).last_event_timestamp.set(ts)
        reasons: dict[str, int] = {}
        for rejection in outcome.rejected:
            reasons[rejection.reason] = reasons.get(rejection.reason, 0) + 1
        metrics.count_invalid(reasons)
        for reason, n in reasons.items():
            self.invalid_counts[reason] = self.invalid_counts.get(reason, 0) + n
        for evaluation in outcome.evaluations:
            metrics.evaluation_duration.observe(evaluation.duration_seconds)

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
        try:
            self._consume_loop(source, deadline, max_events)
        finally:
            self._drain()

    def _consume_loop(
        self, source: KafkaSource, deadline: float | None, max_events: int | None
    ) -> None:
        kafka = self.config.kafka
        max_messages = kafka.batch_max_messages
        timeout = kafka.poll_timeout_seconds
        stop = self._stop
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            messages = source.consume(max_messages, timeout)
            self._drain()
            if max_events is not None and self.events_total >= max_events:
                # Counted once the batch in flight is accounted for; an idle poll must not
                # skip this check, or the loop would run on to the deadline.
                break
            recovery = self.recovery
            if recovery is not None and recovery.failing:
                # Paused; a message still arriving (a partition assigned meanwhile, or
                # already fetched) is processed below, never dropped: its offset is not
                # committed until a checkpoint covering it is durable.
                if recovery.due() and self.checkpoint():
                    source.commit(synchronous=False)
                if not messages:
                    continue
                source.pause()
            if not messages:
                if recovery is not None and recovery.due() and self.checkpoint():
                    source.commit(synchronous=False)
                continue
            # The statistics of this batch run on the worker while the next consume()
            # reads from the broker (the scanner and the kernels release the GIL).
            self._inflight = (messages, self._worker.submit(self._update, messages))
            self._batch_started = time.perf_counter()

    def _drain(self, *, commit: bool = True) -> None:
        """Finish the batch in flight: wait for its statistics, then account for it.

        Runs after every consume() and first thing in every rebalance callback and
        checkpoint, so offsets, checkpoints and handovers always see whole batches.
        """
        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return
        messages, update = inflight
        outcome = self._account(update.result())
        source, recovery = self.source, self.recovery
        if source is not None:
            source.mark_processed(messages)
            if commit and recovery is None:
                source.commit(synchronous=False)
            elif commit and recovery is not None and recovery.due() and self.checkpoint():
                # Offsets are committed only once the checkpoint covering them is durable.
                source.commit(synchronous=False)
        self.metrics.batch_duration.observe(time.perf_counter() - self._batch_started)
        self.events_total += sum(outcome.accepted.values())

    def process_messages(self, messages: list[Message]) -> BatchOutcome:
        """Account for one consumed batch: statistics, counters, dead letters, webhooks."""
        return self._account(self._update(messages))

    def _update(self, messages: list[Message]) -> Parts:
        """The statistics step of a batch, per topic (runs on the worker thread)."""
        by_topic: dict[str, list[Message]] = {}
        configured = self.config.kafka.topics
        if len(configured) == 1:
            by_topic[configured[0].name] = messages
        else:
            for msg, name in zip(messages, message_topics(messages), strict=True):
                by_topic.setdefault(name or "", []).append(msg)
        parts = []
        for topic, msgs in by_topic.items():
            # Kafka timestamps are read only if some event has no ``ts`` of its own; version
            # headers only if a model of the topic has versions.
            kafka_ts = partial(message_seconds, msgs)
            versions = (
                list(map(header_version, msgs))
                if self.pipeline.wants_header_versions(topic)
                else None
            )
            outcome = self.pipeline.process(message_values(msgs), kafka_ts, topic, versions)
            parts.append((topic, msgs, outcome))
        return parts

    def _account(self, parts: Parts) -> BatchOutcome:
        """Everything after the statistics: partitions noted for checkpoints, dead letters,
        metrics, webhooks (on the loop's thread)."""
        total = BatchOutcome()
        recovery = self.recovery
        for topic, msgs, outcome in parts:
            if recovery is not None and outcome.model_messages:
                partitions = message_partitions(msgs)
                for model, indices in outcome.model_messages.items():
                    found = np.unique(partitions[indices]).tolist()
                    recovery.note(model, {(topic, p) for p in found})
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
        for performance in total.performance:
            event = performance.drift_event
            if event is not None:
                logger.info(
                    "performance threshold crossed, triggering webhooks",
                    extra={"model": event.model, "event_id": event.id},
                )
                self.dispatcher.submit(event)
        return total

    def shutdown(self) -> None:
        logger.info("shutting down")
        self._closing = True
        if self.source is not None and self.recovery is not None:
            self.checkpoint()
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
        self._worker.shutdown(wait=False)
        logger.info("stopped", extra={"events": self.events_total})
