"""Both stages of ``kafka.scale_out`` in the daemon's loop thread.

Each turn consumes a batch of source events for stage 1 (decode, bin, produce, commit),
then a batch of the internal topic for stage 2 (order, evaluate, alert), and writes stage
2's checkpoints when due. Both consumers' rebalance callbacks run inside their consume
calls, on this thread, so no batch is ever half-accounted when partitions move.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from monitor import __version__
from monitor.app.accounting import BatchAccounting
from monitor.app.scaleout.ledger import TopicLedger
from monitor.app.scaleout.stage1 import Stage1
from monitor.app.scaleout.stage2 import Stage2
from monitor.app.scaleout.topics import ProfileTopic, require_topics
from monitor.config import Config, KafkaConfig
from monitor.ingest.dead_letter import DeadLetterSink
from monitor.pipeline import Pipeline
from monitor.publish.health import Health
from monitor.publish.metrics import Metrics
from monitor.publish.results import ResultsStore
from monitor.scaleout.profiles import ProfileTable, shares_profiles
from monitor.webhooks.delivery import WebhookDispatcher

if TYPE_CHECKING:
    from monitor.app.daemon import Daemon

logger = logging.getLogger(__name__)


class ScaleOut:
    """Stage 1 and stage 2 of one replica."""

    def __init__(
        self,
        config: Config,
        kafka: KafkaConfig,
        pipeline: Pipeline,
        accounting: BatchAccounting,
        results: ResultsStore,
        health: Health,
        metrics: Metrics,
        replica: str,
        dead_letter: DeadLetterSink | None = None,
        dispatcher: WebhookDispatcher | None = None,
    ) -> None:
        self.kafka = kafka
        self.dead_letter = dead_letter
        so = kafka.scale_out
        group = kafka.group_id
        # The profiles topic is needed once a model captures its reference from the stream.
        sharing = any(map(shares_profiles, pipeline.models.values()))
        require_topics(
            kafka.bootstrap_servers,
            [so.rows_topic(group), so.checkpoints_topic(group)]
            + ([so.profiles_topic(group)] if sharing else []),
        )
        self.profiles = (
            ProfileTopic(
                kafka.bootstrap_servers,
                so.profiles_topic(group),
                group,
                kafka.producer,
                ProfileTable(pipeline.models),
            )
            if sharing
            else None
        )

        def on_lag(topic: str, partition: int, lag: int | None) -> None:
            if lag is None:
                metrics.remove_lag(topic, partition)
            else:
                metrics.set_lag(topic, partition, lag)

        def assigned(_pairs: list[tuple[str, int]]) -> None:
            health.set("consumer_assigned", True)
            moved()

        def moved() -> None:  # /status shows stage 1's share as it changes
            stage2 = getattr(self, "stage2", None)
            if stage2 is not None:
                stage2.publish()

        self.stage1 = Stage1(
            config,
            kafka,
            pipeline,
            accounting,
            on_assign=assigned,
            on_revoke=moved,
            on_lag=on_lag,
            on_condition=health.set,
            profiles=self.profiles,
        )
        self.stage2 = Stage2(
            kafka,
            pipeline,
            accounting,
            results,
            replica,
            source_partitions=lambda: tuple(
                f"{t}/{p}" for t, p in sorted(self.stage1.source.assigned_partitions)
            ),
            on_lag=on_lag,
            on_condition=health.set,
            on_owned=metrics.own_models,
            profiles=self.profiles,
            sends=self.stage1.sends,
        )
        if dispatcher is not None:  # one webhook per episode across owners
            dispatcher.share_deliveries(TopicLedger(self.stage2.checkpoints))
        logger.info(
            "scale-out: stage 1 in group %s, stage 2 in group %s",
            kafka.group_id,
            kafka.scale_out.eval_group(kafka.group_id),
            extra={"rows_topic": self.stage2.rows_topic, "partitions": self.stage2.partitions},
        )

    @classmethod
    def of(cls, daemon: Daemon) -> ScaleOut:
        """Both stages over a daemon's pipeline, accounting, results, health and metrics."""
        scaleout = cls(
            daemon.config,
            daemon.kafka,
            daemon.pipeline,
            daemon.accounting,
            daemon.results,
            daemon.health,
            daemon.metrics,
            daemon.replica_id,
            daemon.dead_letter,
            daemon.dispatcher,
        )
        logger.info(
            "driftmon started",
            extra={"version": __version__, "replica": daemon.replica_id, "scale_out": True},
        )
        return scaleout

    def run(self, stop: threading.Event, deadline: float | None, max_events: int | None) -> int:
        """Run both stages until stopped; events accepted by stage 1."""
        kafka = self.kafka
        timeout = kafka.poll_timeout_seconds / 2
        events = 0
        busy = False  # a stage had work last turn: do not wait on the other's empty poll
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            if max_events is not None and events >= max_events:
                break
            if self.stage1.follow_profiles():
                self.stage2.publish()  # /status: the rows' new form
            messages = self.stage1.source.consume(kafka.batch_max_messages, 0 if busy else timeout)
            if messages:
                events += self.stage1.process(messages, self.dead_letter)
            self.stage1.tick()
            rows = self.stage2.source.consume(kafka.batch_max_messages, 0 if messages else timeout)
            if rows:
                self.stage2.process(rows)
            busy = bool(messages or rows)
            if self.stage2.due():
                self.stage2.checkpoint_and_commit()
        return events

    def close(self) -> None:
        """Dead letters flushed; stage 1 commits and leaves; stage 2 checkpoints, commits
        and leaves."""
        if self.dead_letter is not None:
            self.dead_letter.flush(5.0)
        self.stage1.close()
        self.stage2.close()
        if self.profiles is not None:
            self.profiles.close()
