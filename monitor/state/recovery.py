"""Which state goes with which partitions: checkpoint, restore on assignment, hand over on revoke.

The deployment rule that keeps state consistent across replicas of one consumer group:
key events by model, so one partition carries one model (several models may share a
partition; one model must not span partitions owned by different replicas). The coordinator
records which partitions fed each model; a checkpoint stores that map with the offsets, so
the replica that is assigned a partition later restores exactly the models it fed. A model
that a checkpoint of *another* live replica also holds is reported as split
(``driftmon_model_split`` and a warning), because its windows would then each see only part
of its events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping

from monitor.errors import CheckpointError
from monitor.model.state import ModelState
from monitor.pipeline import Pipeline
from monitor.state.checkpoint import Checkpoint, CheckpointStore, partition_key

logger = logging.getLogger(__name__)

Pair = tuple[str, int]

#: librdkafka's logical offset "the beginning of the partition" (``OFFSET_BEGINNING``).
FROM_BEGINNING = -2


class RecoveryCoordinator:
    """Checkpoints a pipeline's models with the offsets they reflect, and restores them."""

    def __init__(
        self,
        store: CheckpointStore,
        pipeline: Pipeline,
        interval_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.interval_seconds = interval_seconds
        self._clock = clock
        self.model_partitions: dict[str, set[str]] = {}
        self._last_checkpoint: float = clock()
        self._failing = False
        #: what the last durable checkpoint covered: an unchanged one is not rewritten
        self._covered: tuple[dict[Pair, int], dict[str, int], dict[str, str]] | None = None
        self.split_models: set[str] = set()
        self.restored_counters: dict[str, int] = {}
        self._restored_models: set[str] = set()
        #: topic -> broker id, as of the last assignment (written into checkpoints)
        self.topic_ids: dict[str, str] = {}
        #: topic -> (id in the checkpoint, id now) of topics found recreated; the daemon
        #: takes them (logs and counts) after each assignment
        self.recreated: dict[str, tuple[str, str]] = {}
        own = [c for c in store.load_all() if c.replica == store.replica]
        if own:
            self.restored_counters = dict(own[0].counters)
            self.topic_ids = dict(own[0].topic_ids)

    # -- bookkeeping -------------------------------------------------------------------

    def note(self, model: str, partitions: Iterable[Pair]) -> None:
        """Record that ``model``'s events came from these partitions."""
        keys = self.model_partitions.setdefault(model, set())
        keys.update(partition_key(t, p) for t, p in partitions)

    @property
    def failing(self) -> bool:
        """True from a failed checkpoint until the next one is durable."""
        return self._failing

    @property
    def last_checkpoint(self) -> float:
        """When the last checkpoint was written or, while failing, last attempted."""
        return self._last_checkpoint

    def due(self) -> bool:
        """A checkpoint is due: the interval passed, or the last attempt failed (retry)."""
        return self._failing or self._clock() - self._last_checkpoint >= self.interval_seconds

    # -- checkpoint --------------------------------------------------------------------

    def checkpoint(
        self,
        positions: Mapping[Pair, int],
        counters: Mapping[str, int],
        *,
        handover: bool = False,
        before: Callable[[], object] = lambda: None,
        skip_unchanged: bool = False,
    ) -> float | None:
        """Write the checkpoint and return the seconds it took; raises ``CheckpointError``
        (the caller pauses consumption).

        With ``skip_unchanged`` (the periodic checkpoints) it returns ``None`` instead of
        rewriting when nothing moved since the last durable one (same offsets, counters
        and topics: the state only changes with events) and no other replica shares the
        state directory.

        ``before`` makes durable what the checkpoint's batches produced outside it (the
        webhook triggers); a ``CheckpointError`` from it fails the checkpoint the same way.

        A failure marks the coordinator :attr:`failing` (so a retry is :meth:`due` at once)
        until a later checkpoint succeeds.

        ``handover`` (on revocation) also writes the copy that later periodic checkpoints
        do not overwrite, so the revoked partitions' state stays available to whoever is
        assigned them next.
        """
        covered = (dict(positions), dict(counters), dict(self.topic_ids))
        if skip_unchanged and not handover and not self._failing and covered == self._covered:
            # An idle daemon does not rewrite its state every interval, and a full disk
            # is met at the first checkpoint that has something to keep. Beside other
            # replicas it still does: they read its written_at as a sign of life.
            checkpoints = self._load_all()
            if all(c.replica == self.store.replica for c in checkpoints):
                self._last_checkpoint = self._clock()
                self._drop_superseded_handover(checkpoints)
                self._detect_split(checkpoints)
                return None
        states: dict[str, ModelState] = {}
        for name in self.pipeline.model_names:
            if self.pipeline.events_seen(name) == 0 and name not in self.model_partitions:
                continue
            states[name] = self.pipeline.model_state(
                name, sorted(self.model_partitions.get(name, ()))
            )
        ckpt = Checkpoint(
            replica=self.store.replica,
            written_at=self._clock(),
            offsets={partition_key(t, p): off for (t, p), off in positions.items()},
            models=states,
            counters=dict(counters),
            topic_ids=dict(self.topic_ids),
        )
        try:
            before()
            seconds = self.store.save(ckpt)
            if handover:
                seconds += self.store.save(ckpt, handover=True)
        except CheckpointError:
            self._failing = True
            self._last_checkpoint = self._clock()
            raise
        self._last_checkpoint = ckpt.written_at
        self._failing = False
        self._covered = covered
        checkpoints = self._load_all()
        if not handover:
            self._drop_superseded_handover(checkpoints)
        self._detect_split(checkpoints)
        return seconds

    def _load_all(self) -> list[Checkpoint]:
        try:
            return self.store.load_all()
        except CheckpointError:
            return []

    def _drop_superseded_handover(self, checkpoints: list[Checkpoint]) -> None:
        """Delete this replica's handover copy once newer checkpoints list all it holds."""
        handover = self.store.load_handover()
        if handover is None:
            return
        for key in handover.offsets:
            if not any(
                c.written_at > handover.written_at and key in c.offsets for c in checkpoints
            ):
                return
        self.store.delete_handover()

    def _detect_split(self, checkpoints: list[Checkpoint]) -> None:
        """Report models that another replica's recent checkpoint also holds."""
        split: set[str] = set()
        horizon = self._clock() - 3 * self.interval_seconds
        mine = {m for m, parts in self.model_partitions.items() if parts}
        others = [c for c in checkpoints if c.replica != self.store.replica]
        for other in others:
            if other.written_at < horizon:
                continue
            for model, state in other.models.items():
                if model in mine and state.partitions:
                    theirs = set(state.partitions)
                    if theirs - self.model_partitions[model]:
                        split.add(model)
        for model in split - self.split_models:
            logger.warning(
                "model events arrive on partitions owned by different replicas; key events "
                "by model so one partition carries one model",
                extra={
                    "model": model,
                    "partitions": ",".join(sorted(self.model_partitions[model])),
                },
            )
        self.split_models = split

    # -- rebalances ----------------------------------------------------------------------

    def on_assign(
        self, pairs: list[Pair], topic_ids: Mapping[str, str] | None = None
    ) -> dict[Pair, int]:
        """Restore the models these partitions fed; return the offsets to resume from.

        ``topic_ids`` are the broker's ids of the assigned topics now: a partition whose
        checkpoint offset belongs to another incarnation of its topic (deleted and created
        again) is read from the beginning instead, and reported in :attr:`recreated`.
        """
        self._covered = None  # restored models join the next checkpoint
        now = dict(topic_ids or {})
        self.topic_ids.update(now)
        checkpoints = self.store.load_all()  # newest first; includes other replicas' files
        seek: dict[Pair, int] = {}
        chosen: dict[str, Checkpoint] = {}
        for topic, partition in pairs:
            key = partition_key(topic, partition)
            for ckpt in checkpoints:
                if key in ckpt.offsets:
                    then = ckpt.topic_ids.get(topic)
                    if then is not None and topic in now and now[topic] != then:
                        seek[(topic, partition)] = FROM_BEGINNING
                        self.recreated.setdefault(topic, (then, now[topic]))
                        break
                    seek[(topic, partition)] = ckpt.offsets[key]
                    for model, state in ckpt.models.items():
                        if key in state.partitions and model not in chosen:
                            chosen[model] = ckpt
                    break
        for model, ckpt in chosen.items():
            if (
                model in self._restored_models
                or model not in self.pipeline.model_names
                or self.model_partitions.get(model)  # live here already: never clobber
            ):
                continue
            try:
                self.pipeline.restore_model(model, ckpt.models[model])
            except CheckpointError as exc:
                logger.warning(
                    "checkpointed model state not restored, starting it fresh",
                    extra={"model": model, "error": str(exc)},
                )
                self.pipeline.reset(model)
                continue
            self._restored_models.add(model)
            self.note_keys(model, ckpt.models[model].partitions)
            logger.info(
                "model state restored from checkpoint",
                extra={
                    "model": model,
                    "replica": ckpt.replica,
                    "events": self.pipeline.events_seen(model),
                },
            )
        self.pipeline.publish()
        return seek

    def note_keys(self, model: str, keys: Iterable[str]) -> None:
        self.model_partitions.setdefault(model, set()).update(keys)

    def on_revoke(self, pairs: list[Pair]) -> None:
        """After the caller checkpointed: hand over models fed only by revoked partitions."""
        self._covered = None  # the models handed over leave the next checkpoint
        revoked = {partition_key(t, p) for t, p in pairs}
        for model, keys in list(self.model_partitions.items()):
            if keys and keys <= revoked:
                self.pipeline.reset(model)
                self._restored_models.discard(model)
                del self.model_partitions[model]
                logger.info("model handed over with its partitions", extra={"model": model})
            else:
                keys -= revoked
