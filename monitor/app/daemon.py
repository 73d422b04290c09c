"""The long-running service: wires every component from the config and runs the loop.

The loop consumes a batch while the previous one's statistics run on a worker thread,
then drains it (accounting: ``monitor.app.accounting``) and commits through the one
``CommitSequence`` (``monitor.state.commit``), as do the rebalance callbacks and shutdown.

Shutdown order on SIGTERM/SIGINT (or when ``max_seconds``/``max_events`` is reached):
finish the batch in hand, flush the dead-letter producer, write the final checkpoint, close
the consumer (committing its offsets and leaving the group), flush pending webhooks for a
bounded time, stop the HTTP server.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from types import FrameType

from prometheus_client import CollectorRegistry

from monitor import __version__
from monitor.app.accounting import BatchAccounting, Parts
from monitor.app.heap import settle_after_start
from monitor.app.kernels import KernelWarmup
from monitor.app.scaleout.runner import ScaleOut
from monitor.config import Config, HttpConfig, KafkaConfig
from monitor.errors import CheckpointError, ConfigError, ConfigProblem, UsageError
from monitor.ingest.dead_letter import DeadLetterSink
from monitor.ingest.decode import Reason
from monitor.ingest.decode.block import join_payloads
from monitor.ingest.messages import (
    Message,
    header_version,
    message_headers,
    message_seconds,
    message_topics,
    message_values,
)
from monitor.ingest.source import KafkaSource
from monitor.ingest.topic_ids import TopicIds, admin_config
from monitor.model.reference_file import ModelReference, load_references
from monitor.pipeline import Evaluation, Pipeline
from monitor.publish.health import Health
from monitor.publish.metrics import Metrics
from monitor.publish.results import ResultsStore
from monitor.publish.server import Server
from monitor.publish.web_config import load_web_config
from monitor.state.checkpoint import CheckpointStore
from monitor.state.commit import Commit, CommitSequence
from monitor.state.recovery import RecoveryCoordinator
from monitor.webhooks.delivery import WebhookDispatcher

logger = logging.getLogger(__name__)


class _CheckpointHealth:
    """How checkpoints went, made visible: readiness, metrics and one log line per episode."""

    def __init__(self, health: Health, metrics: Metrics, models: list[str]) -> None:
        self._health = health
        self._metrics = metrics
        self._models = models

    def checkpoint_failed(self, error: CheckpointError, *, first: bool) -> None:
        if first:
            logger.error(
                "checkpoint failed: consumption paused until the state directory is writable again",
                extra={"error": str(error)},
            )
        self._health.set("state_dir_writable", False, str(error))
        self._metrics.checkpoint_failures.inc()

    def checkpoint_written(self, seconds: float | None, split_models: set[str]) -> None:
        if not self._health.conditions().get("state_dir_writable", True):
            logger.info("checkpoint written again: consumption resumes")
        self._health.set("state_dir_writable", True)
        if seconds is not None:
            self._metrics.checkpoint_duration.observe(seconds)
        self._metrics.set_split_models(split_models, self._models)


def _dispatcher(config: Config, metrics: Metrics) -> WebhookDispatcher:
    """The webhook dispatcher, its outbox in the state directory when there is one."""
    state = config.state
    try:
        return WebhookDispatcher(
            config.webhooks,
            state_dir=Path(state.dir) if state is not None else None,
            metrics=metrics.webhook,
            on_corrupt=state.on_corrupt if state is not None else "fresh",
        )
    except CheckpointError as exc:
        raise UsageError(
            ConfigProblem("state.dir", str(exc), "point state.dir at a writable directory")
        ) from None


def _http_server(
    config: Config, registry: CollectorRegistry, results: ResultsStore, health: Health
) -> Server:
    web = config.http.web_config_file
    return Server(
        registry,
        results,
        health,
        host=config.http.host,
        port=config.http.port,
        web=load_web_config(Path(web)) if web else None,
        serve_status=config.http.status,
    )


def _listen(server: Server, http: HttpConfig) -> None:
    """Start the HTTP server; a port in use is the user's setting, not a crash."""
    try:
        server.start()
    except OSError as exc:
        port = exc.errno in (errno.EADDRINUSE, errno.EACCES)
        hint = (
            "stop the process that holds it, or choose another port with http.port "
            "(or DRIFTMON_HTTP__PORT); 0 picks a free one"
            if port
            else "set http.host to an address of this machine, e.g. 0.0.0.0 or 127.0.0.1"
        )
        raise UsageError(
            ConfigProblem(
                "http.port" if port else "http.host",
                f"cannot listen on {http.host}:{http.port}: {exc.strerror or exc}",
                hint,
            )
        ) from None


def _joined(kafka: KafkaConfig, messages: list[Message]) -> Sequence[bytes | None] | None:
    """A batch's payloads in one block when it is one topic's (the worker splits the others
    by topic): joined on the loop thread, off the decode worker's path."""
    topics = kafka.topics
    if len(topics) == 1 and not topics[0].is_pattern:
        return join_payloads(message_values(messages))
    return None


def _report_recreated(recovery: RecoveryCoordinator, metrics: Metrics) -> None:
    """Log and count the topics the last assignment found deleted and created again."""
    for topic, (then, now) in recovery.recreated.items():
        logger.warning(
            "topic was deleted and created again: reading it from the beginning, "
            "not from the checkpoint's offsets of the old topic",
            extra={"topic": topic, "old_topic_id": then, "topic_id": now},
        )
        metrics.topic_recreated(topic)
    recovery.recreated.clear()


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
        if config.kafka is None:
            raise ConfigError(
                [ConfigProblem("kafka", "required key is missing: the daemon consumes from Kafka")]
            )
        self.config = config
        self.kafka: KafkaConfig = config.kafka
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
            # load_config made file paths absolute; config_dir serves configs built in
            # memory with relative reference paths (tests, the demo).
            references = load_references(config, config_dir)
        self.pipeline = Pipeline(config, references, self.results)
        self.health.set("config_loaded", True)
        self.health.set("references_ready", self.pipeline.references_ready)
        self.dispatcher = _dispatcher(config, self.metrics)
        self.kernels = KernelWarmup(config)
        self.topic_ids = TopicIds(
            admin_config(config.kafka.bootstrap_servers, config.kafka.consumer)
        )
        self.server = _http_server(config, self.registry, self.results, self.health)
        self._stop = threading.Event()
        self._closing = False
        # One worker for the statistics of the batches in flight (see _loop and _drain).
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="driftmon-stats")
        # Oldest first: messages, their statistics, when they were consumed.
        self._inflight: deque[tuple[list[Message], Future[Parts], float]] = deque()
        self.source: KafkaSource | None = None
        self.dead_letter: DeadLetterSink | None = None
        self.events_total = 0
        self.recovery: RecoveryCoordinator | None = None
        self.scaleout: ScaleOut | None = None  # kafka.scale_out: state lives in Kafka
        self.replica_id = (
            replica_id or os.environ.get("DRIFTMON_REPLICA_ID") or socket.gethostname()
        )
        if config.state is not None and not self.kafka.scale_out.enabled:
            self.health.register("state_dir_writable", True)
            store = CheckpointStore(
                Path(config.state.dir),
                self.replica_id,
                on_corrupt=config.state.on_corrupt,
            )
            self.recovery = RecoveryCoordinator(
                store, self.pipeline, config.state.checkpoint_interval_seconds
            )
        self.accounting = BatchAccounting(
            self.pipeline, self.metrics, self.health, self.dispatcher, self.recovery, on_evaluation
        )
        self.commits = CommitSequence(
            lambda: self.source,
            drain=partial(self._drain, commit=False),
            recovery=self.recovery,
            counters=lambda: self.accounting.invalid_counts,
            report=_CheckpointHealth(self.health, self.metrics, list(config.models)),
            flush=self._flush_dead_letters,
            store_triggers=self.accounting.store_unstored,
        )

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
        """Everything but the loop: HTTP first (so /healthz answers), the consumer, kernels.

        Subscribed before the kernels compile, the consumer joins its group on librdkafka's
        threads meanwhile; its callbacks run only in the loop's ``consume``, after them.
        """
        self._listen()
        # The scanner first: uncached, its child compiles on another core meanwhile.
        self.kernels.start_background()
        self._subscribe()
        try:
            seconds = self.kernels.run()
        except BaseException:
            self.kernels.stop()
            if self.source is not None:  # leave the group: nothing consumed, nothing to commit
                self.source.consumer.close()
                self.source = None
            raise
        self.health.set("kernels_warm", True)
        logger.info("numba kernels warm", extra={"duration_seconds": round(seconds, 3)})
        if self.config.state is None:
            logger.info("no state section: running stateless (windows start empty on restart)")
        self.dispatcher.start()
        # Everything long-lived exists now: the collector stops walking it (see heap.py).
        settle_after_start()
        models = ",".join(self.config.models)
        extra = {"version": __version__, "models": models, "http_port": self.http_port}
        logger.info("driftmon started", extra=extra)

    def _subscribe(self) -> None:
        """The dead-letter producer and the consumer, subscribed to the topics."""
        kafka = self.kafka
        if kafka.dead_letter_topic:
            self.dead_letter = DeadLetterSink(
                kafka.bootstrap_servers,
                kafka.dead_letter_topic,
                kafka.producer,
                on_result=self.accounting.dead_letter_result,
            )
        if kafka.scale_out.enabled:  # both stages instead of the one consumer
            self.scaleout = ScaleOut.of(self)
            return
        self.source = KafkaSource(
            kafka.bootstrap_servers,
            kafka.group_id,
            [t.name for t in kafka.topics],
            kafka.consumer,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lag=self._on_lag,
            on_condition=self.health.set,
        )

    def _listen(self) -> None:
        _listen(self.server, self.config.http)

    def _on_assign(self, pairs: list[tuple[str, int]]) -> dict[tuple[str, int], int] | None:
        self._drain(commit=False)
        seek = None
        if self.recovery is not None:
            ids = self.topic_ids.lookup({topic for topic, _ in pairs})
            seek = self.recovery.on_assign(pairs, ids)
            _report_recreated(self.recovery, self.metrics)
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
        self.commits.run(handover=not self._closing, commit=Commit.BY_SOURCE)
        if self.recovery is not None:
            self.recovery.on_revoke(pairs)

    def _on_lag(self, topic: str, partition: int, lag: int | None) -> None:
        if lag is None:
            self.metrics.remove_lag(topic, partition)
        else:
            self.metrics.set_lag(topic, partition, lag)

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
        if self.scaleout is not None:
            self.events_total += self.scaleout.run(self._stop, deadline, max_events)
            return
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
        kafka = self.kafka
        max_messages = kafka.batch_max_messages
        timeout = kafka.poll_timeout_seconds
        stop = self._stop
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            messages = source.consume(max_messages, timeout)
            if messages:
                # Queued behind the batch in flight: the worker moves on to it without
                # waiting for this thread, which joins the payloads (holding the GIL) while
                # the worker scans (the scanner and the kernels release the GIL).
                payloads = _joined(self.kafka, messages)
                submitted = self._worker.submit(self._update, messages, payloads)
                self._inflight.append((messages, submitted, time.perf_counter()))
            self._drain(keep=1 if messages else 0)
            if max_events is not None and self.events_total >= max_events:
                # Counted once the batch in flight is accounted for; an idle poll must not
                # skip this check, or the loop would run on to the deadline.
                break
            if self.commits.failing:
                # Paused; a message still arriving (a partition assigned meanwhile, or
                # already fetched) is processed (submitted above), never dropped: its
                # offset is not committed until a checkpoint covering it is durable.
                self.commits.when_due()
                if not messages:
                    continue
                source.pause()
            if not messages:
                self.commits.when_due()

    def _drain(self, *, commit: bool = True, keep: int = 0) -> None:
        """Finish the batches in flight but the newest ``keep``, oldest first: wait for
        each one's statistics, account for it, mark its offsets processed and
        (``commit``) hand them to the commit sequence.

        Runs after every consume() (keeping the batch just submitted running) and, as the
        commit sequence's first step, in every rebalance callback, checkpoint and at
        shutdown (keeping none), so offsets, checkpoints and handovers always see whole
        batches.
        """
        inflight = self._inflight
        while len(inflight) > keep:
            messages, update, started = inflight.popleft()
            outcome = self.accounting.account(update.result(), self.dead_letter)
            if self.source is not None:
                self.source.mark_processed(messages)
                if commit:
                    self.commits.after_batch()
            # The batch's duration runs from consume to commit, checkpoint included.
            self.metrics.batch_duration.observe(time.perf_counter() - started)
            self.events_total += sum(outcome.accepted.values())

    def _update(self, messages: list[Message], joined: Sequence[bytes | None] | None) -> Parts:
        """The statistics step of a batch, per topic (on the worker thread); see _joined."""
        by_topic: dict[str, list[Message]] = {}
        configured = self.kafka.topics
        if len(configured) == 1 and not configured[0].is_pattern:
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
            payloads = joined if joined is not None and msgs is messages else None
            outcome = self.pipeline.process(
                payloads if payloads is not None else message_values(msgs),
                kafka_ts,
                topic,
                versions,
                headers=partial(message_headers, msgs),
                topics=partial(message_topics, msgs),
            )
            parts.append((topic, msgs, outcome))
        return parts

    def _flush_dead_letters(self) -> None:
        if self.dead_letter is not None:
            self.dead_letter.flush(5.0)

    def shutdown(self) -> None:
        logger.info("shutting down")
        self._closing = True
        # Dead letters, final checkpoint, then the consumer commits and leaves the group.
        self.scaleout.close() if self.scaleout else self.commits.run(commit=Commit.CLOSE)
        self.source = None
        self.dispatcher.flush(5.0)
        self.dispatcher.stop(2.0)
        self.server.stop()
        self.kernels.stop()
        self._worker.shutdown(wait=False)
        logger.info("stopped", extra={"events": self.events_total})
