"""A batch's accounting: everything that follows its statistics, on the loop's thread.

The worker thread runs decode and statistics (``Pipeline.process``); what comes after must
see batches one at a time and in order, so it runs here: the partitions each model's
events came from (noted for checkpoints), dead letters, counters, evaluation callbacks and
webhook submission, and the rate-limited log line of each rejected event. This module
also owns the replica-level invalid-event counts that checkpoints carry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np

from monitor.app.rejections import RejectionLog
from monitor.errors import CheckpointError
from monitor.ingest.dead_letter import DeadLetterSink
from monitor.ingest.decode import Rejection
from monitor.ingest.messages import Message, message_partitions
from monitor.pipeline import BatchOutcome, Evaluation, Pipeline
from monitor.publish.health import Health
from monitor.publish.metrics import Metrics
from monitor.state.recovery import RecoveryCoordinator
from monitor.webhooks.delivery import WebhookDispatcher
from monitor.webhooks.event import DriftEvent

logger = logging.getLogger(__name__)

#: A batch's pipeline outcome per topic, with the topic's messages.
Parts = list[tuple[str, list[Message], BatchOutcome]]


class BatchAccounting:
    """Accounts for processed batches; holds the invalid-event counts per reason."""

    def __init__(
        self,
        pipeline: Pipeline,
        metrics: Metrics,
        health: Health,
        dispatcher: WebhookDispatcher,
        recovery: RecoveryCoordinator | None,
        on_evaluation: Callable[[Evaluation], None] | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._metrics = metrics
        self._health = health
        self._dispatcher = dispatcher
        self._recovery = recovery
        self._on_evaluation = on_evaluation
        self.rejections = RejectionLog()
        self.invalid_counts: dict[str, int] = {}
        # Triggers the outbox could not store (a full disk): kept in order and stored
        # before the next checkpoint, which fails (pausing consumption, committing
        # nothing) until they are.
        self._unstored: list[DriftEvent] = []
        if recovery is not None:
            self._resume_counters(recovery.restored_counters)

    def _resume_counters(self, restored: Mapping[str, int]) -> None:
        """Replica-level counters resume from this replica's own last checkpoint."""
        for reason, n in restored.items():
            if reason in self._metrics.invalid and n > 0:
                self._metrics.invalid[reason].inc(n)
                self.invalid_counts[reason] = n

    def dead_letter_result(self, sent: bool) -> None:
        """Delivery report of one dead letter (called by the ``DeadLetterSink``)."""
        metrics = self._metrics
        (metrics.dead_letter_sent if sent else metrics.dead_letter_failed).inc()

    def account(self, parts: Parts, dead_letter: DeadLetterSink | None) -> BatchOutcome:
        """Partitions noted for checkpoints, dead letters, metrics, webhooks; the batch's
        outcome over every topic."""
        total = BatchOutcome()
        for topic, msgs, outcome in parts:
            self._note_partitions(topic, msgs, outcome)
            self.rejections.log(outcome.rejected, _source_of(topic, msgs))
            if dead_letter is not None:
                for rejection in outcome.rejected:
                    msg = msgs[rejection.index]
                    dead_letter.send(
                        msg.value(),
                        rejection.reason,
                        rejection.detail,
                        (topic, msg.partition() or 0, msg.offset() or 0),
                    )
            total.merge(outcome)
        self._record(total)
        self._health.set("references_ready", self._pipeline.references_ready)
        self._submit_events(total)
        return total

    def _note_partitions(self, topic: str, msgs: list[Message], outcome: BatchOutcome) -> None:
        """Tell recovery which partitions fed each model, so checkpoints hand them over."""
        recovery = self._recovery
        if recovery is None or not outcome.model_messages:
            return
        partitions = message_partitions(msgs)
        for model, indices in outcome.model_messages.items():
            found = np.unique(partitions[indices]).tolist()
            recovery.note(model, {(topic, p) for p in found})

    def _record(self, outcome: BatchOutcome) -> None:
        """Counters once per batch, not per event."""
        metrics = self._metrics
        for model, n in outcome.unknown_features.items():
            metrics.model(model).unknown_features.inc(n)
        metrics.note_last_events(outcome.last_event_time)
        reasons: dict[str, int] = {}
        for rejection in outcome.rejected:
            reasons[rejection.reason] = reasons.get(rejection.reason, 0) + 1
        metrics.count_invalid(reasons)
        for reason, n in reasons.items():
            self.invalid_counts[reason] = self.invalid_counts.get(reason, 0) + n
        for evaluation in outcome.evaluations:
            metrics.evaluation_duration.observe(evaluation.duration_seconds)
        if outcome.paired or outcome.unpaired:
            metrics.count_pairing(outcome.unpaired, outcome.paired, outcome.pending_halves)

    def _submit_events(self, total: BatchOutcome) -> None:
        """Evaluation callbacks, then a webhook per confirmed drift or performance drop."""
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
                        # e.g. "amount ks p_value 2.1e-09 < 0.001 (statistic 0.3102)"
                        "checks": "; ".join(
                            f"{f.feature} {f.describe()}" for f in event.drifted_features
                        ),
                    },
                )
                self._submit(event)
        for performance in total.performance:
            event = performance.drift_event
            if event is not None:
                logger.info(
                    "performance threshold crossed, triggering webhooks",
                    extra={"model": event.model, "event_id": event.id},
                )
                self._submit(event)

    def _submit(self, event: DriftEvent) -> None:
        if self._unstored:
            self._unstored.append(event)  # keep the order: the earlier ones go first
            return
        try:
            self._dispatcher.submit(event)
        except CheckpointError as exc:
            logger.error(
                "webhook trigger not stored: consumption pauses at the next checkpoint "
                "until it can be",
                extra={"event_id": event.id, "error": str(exc)},
            )
            self._unstored.append(event)

    @property
    def unstored_triggers(self) -> int:
        """Triggers waiting to be stored in the outbox."""
        return len(self._unstored)

    def store_unstored(self) -> None:
        """Store the triggers kept after a failed submit, in order; ``CheckpointError``
        while the outbox still cannot take them."""
        while self._unstored:
            self._dispatcher.submit(self._unstored[0])
            self._unstored.pop(0)
            if not self._unstored:
                logger.info("webhook triggers stored again")


def _source_of(topic: str, msgs: list[Message]) -> Callable[[Rejection], str]:
    """``topic/partition/offset`` of a rejected event (the dead-letter header's form)."""

    def source(rejection: Rejection) -> str:
        msg = msgs[rejection.index]
        return f"{topic}/{msg.partition() or 0}/{msg.offset() or 0}"

    return source
