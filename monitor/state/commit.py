"""The one order in which consumed offsets become committed offsets.

Every commit of the daemon goes through :meth:`CommitSequence.run`, whose steps always run
in this order:

1. **drain** the batch in flight, so the checkpoint and the offsets see whole batches;
2. **flush** what must reach Kafka before the offsets that produced it (the dead letters,
   at shutdown; periodic commits do not wait for them, as before);
3. **checkpoint** the models with the offsets they reflect, durably; if that fails,
   consumption pauses and *nothing is committed*, so no committed offset ever runs ahead of
   the durable state (retried while :attr:`failing`, resumed once a checkpoint succeeds);
4. **commit** the offsets: asynchronously for periodic commits; on revocation and at
   shutdown ``KafkaSource`` commits synchronously itself as soon as the sequence returns
   (it must not commit *lost* partitions, which reach the same callback).

Without a state section there is nothing to checkpoint: step 3 always succeeds, and every
batch's offsets are committed as soon as it is accounted for (:meth:`after_batch`), without
draining the batch behind it, whose offsets are not marked yet.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from monitor.errors import CheckpointError

if TYPE_CHECKING:
    from monitor.state.recovery import RecoveryCoordinator

logger = logging.getLogger(__name__)

Pair = tuple[str, int]


class OffsetSource(Protocol):
    """The consumer side of the sequence (``monitor.ingest.source.KafkaSource``)."""

    @property
    def assigned(self) -> bool: ...
    @property
    def positions(self) -> dict[Pair, int]: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def commit(self, *, synchronous: bool) -> None: ...
    def close(self) -> None: ...


class CheckpointReport(Protocol):
    """Who hears how a checkpoint went (health, metrics and logs live in the app)."""

    def checkpoint_failed(self, error: CheckpointError, *, first: bool) -> None:
        """``first`` is true for the failure that starts an episode, false for retries."""

    def checkpoint_written(self, seconds: float | None, split_models: set[str]) -> None:
        """``seconds``: how long the write took, ``None`` if nothing moved and the last
        checkpoint still holds; ``split_models``: models another live replica's checkpoint
        also holds."""


class Commit(enum.Enum):
    """How the last step of the sequence hands the offsets to Kafka."""

    #: periodic: send the offsets that moved, without waiting for the broker
    ASYNC = "async"
    #: revocation: ``KafkaSource`` commits the revoked partitions synchronously right after
    BY_SOURCE = "by_source"
    #: shutdown: ``KafkaSource.close`` commits everything synchronously, then leaves the group
    CLOSE = "close"


class CommitSequence:
    """drain → flush → checkpoint → commit, the same steps in the same order every time."""

    def __init__(
        self,
        source: Callable[[], OffsetSource | None],
        *,
        drain: Callable[[], object],
        recovery: RecoveryCoordinator | None,
        counters: Callable[[], Mapping[str, int]],
        report: CheckpointReport,
        flush: Callable[[], object] = lambda: None,
        store_triggers: Callable[[], object] = lambda: None,
    ) -> None:
        """``source`` returns the consumer, or ``None`` before it exists and after close;
        ``counters`` the replica-level counters checkpoints carry; ``flush`` delivers what
        must not be lost once offsets are committed (run at shutdown); ``store_triggers``
        stores the webhook triggers that could not be stored when their batch was
        accounted for, and raises ``CheckpointError`` while it still cannot (the checkpoint
        then fails: consumption pauses and nothing is committed past them)."""
        self._source = source
        self._drain = drain
        self._recovery = recovery
        self._counters = counters
        self._report = report
        self._flush = flush
        self._store_triggers = store_triggers

    @property
    def failing(self) -> bool:
        """The last checkpoint failed: consumption is paused until one succeeds."""
        return self._recovery is not None and self._recovery.failing

    def after_batch(self) -> None:
        """A batch's offsets were just marked: commit them, through a checkpoint when one
        is due. Without a state section there is nothing to checkpoint: the offsets
        marked so far are committed at once, without draining the batch still in flight
        (its offsets are not marked yet), so the worker keeps running."""
        if self._recovery is None:
            source = self._source()
            if source is not None:
                source.commit(synchronous=False)
        elif self._recovery.due():
            self.run()

    def when_due(self) -> None:
        """Checkpoint and commit if a checkpoint is due (idle polls, failure retries)."""
        if self._recovery is not None and self._recovery.due():
            self.run()

    def run(self, *, handover: bool = False, commit: Commit = Commit.ASYNC) -> bool:
        """The sequence; True if the checkpoint is durable (or none was needed).

        ``handover`` also writes the revocation copy of the checkpoint (see
        ``CheckpointStore``). A failed checkpoint skips the commit, except that
        :attr:`Commit.CLOSE` still closes the consumer: leaving the group is not optional.
        """
        self._drain()
        if commit is Commit.CLOSE:
            self._flush()
        durable = self._checkpoint(handover, periodic=commit is Commit.ASYNC)
        source = self._source()
        if source is None:
            return durable
        if commit is Commit.CLOSE:
            try:
                source.close()
            except Exception:  # the caller still has the rest to shut down
                logger.exception("consumer close failed")
        elif commit is Commit.ASYNC and durable:
            source.commit(synchronous=False)
        return durable

    def _checkpoint(self, handover: bool, *, periodic: bool) -> bool:
        recovery, source = self._recovery, self._source()
        if recovery is None or source is None:
            return True
        if not source.assigned:
            # Before the first assignment nothing is restored yet: writing now would
            # replace the last good checkpoint with an empty one.
            return True
        first = not recovery.failing
        try:
            seconds = recovery.checkpoint(
                source.positions,
                self._counters(),
                handover=handover,
                before=self._store_triggers,
                skip_unchanged=periodic,
            )
        except CheckpointError as exc:
            self._report.checkpoint_failed(exc, first=first)
            source.pause()
            return False
        self._report.checkpoint_written(seconds, recovery.split_models)
        source.resume()
        return True
