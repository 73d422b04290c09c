"""Stage 2: the models of the internal partitions this replica owns, in event-time order.

A second consumer group, ``<group_id>.eval`` (cooperative-sticky), reads ``<group_id>.rows``;
Kafka's assignment decides which replica owns which internal partition, so which models,
and a failover is a rebalance. On assignment each partition's models are restored from the
newest checkpoint on ``<group_id>.checkpoints`` and the partition is read from the offset
that checkpoint covers (from the start when there is none). Every batch feeds the owned
models' :class:`~monitor.scaleout.stage.ModelStage`s; what the watermarks release runs
through today's windows, evaluation, alerting and webhooks. Checkpoints are written every
``checkpoint_interval_seconds``, on revocation and at shutdown, and the internal offsets
are committed only after the checkpoint covering them is acknowledged.

A model completing its reference capture is shared with every stage 1 through
``<group_id>.profiles`` (:mod:`~monitor.app.scaleout.sharing`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import replace
from itertools import chain

from monitor.app.accounting import BatchAccounting
from monitor.app.scaleout.sharing import ProfileSharing
from monitor.app.scaleout.stage1 import COOPERATIVE
from monitor.app.scaleout.topics import (
    KIND,
    MARKER,
    ROWS,
    ProfileTopic,
    TopicCheckpoints,
    decode_marker,
    partition_count,
)
from monitor.config import KafkaConfig
from monitor.errors import CheckpointError
from monitor.ingest.messages import Message
from monitor.ingest.source import KafkaSource
from monitor.log import RateLimitedLogger
from monitor.pipeline import BatchOutcome, Pipeline
from monitor.publish.results import ResultsStore
from monitor.scaleout.codec import CodecError, decode_rows, source_id
from monitor.scaleout.halves import stage_pairing
from monitor.scaleout.stage import ModelStage, partition_of
from monitor.scaleout.status import ModelShare, ScaleOutStatus, share_of
from monitor.state.checkpoint import Checkpoint, decode_checkpoint, encode_checkpoint

logger = logging.getLogger(__name__)
_limited = RateLimitedLogger(logger)


def _kind(msg: Message) -> bytes | None:
    headers = msg.headers() or ()
    pairs = headers.items() if isinstance(headers, dict) else headers
    for key, value in pairs:
        if key == KIND:
            return value if isinstance(value, bytes) else None
    return None


class Stage2:
    """Owns models by assignment; orders, evaluates and checkpoints them."""

    def __init__(
        self,
        kafka: KafkaConfig,
        pipeline: Pipeline,
        accounting: BatchAccounting,
        results: ResultsStore,
        replica: str,
        *,
        source_partitions: Callable[[], tuple[str, ...]],
        on_lag: Callable[[str, int, int | None], None],
        on_condition: Callable[..., None],
        on_owned: Callable[[Collection[str]], None] = lambda _models: None,
        profiles: ProfileTopic | None = None,
        sends: Callable[[str], str] | None = None,
    ) -> None:
        so = kafka.scale_out
        self.kafka = kafka
        self.pipeline = pipeline
        self.accounting = accounting
        self.results = results
        self.replica = replica
        self.settings = so
        self.topics = [t.name for t in kafka.topics]
        self.rows_topic = so.rows_topic(kafka.group_id)
        self._source_partitions = source_partitions
        self.checkpoints = TopicCheckpoints(
            kafka.bootstrap_servers,
            so.checkpoints_topic(kafka.group_id),
            kafka.group_id,
            kafka.producer,
        )
        self.partitions = partition_count(self.checkpoints.reader, self.rows_topic)
        self.sources = self._sources()
        self.owned: dict[int, dict[str, ModelStage]] = {}
        self._last_checkpoint = time.monotonic()
        self._on_owned = on_owned
        self._sends = sends
        self.sharing = ProfileSharing(profiles, self.checkpoint)
        results.withdraw(*pipeline.models)
        self.publish()
        self.source = KafkaSource(
            kafka.bootstrap_servers,
            so.eval_group(kafka.group_id),
            [self.rows_topic],
            {**kafka.consumer, **COOPERATIVE},
            on_assign=self._assigned,
            on_revoke=self._revoked,
            on_lag=on_lag,
            on_condition=on_condition,
        )

    def _sources(self) -> dict[str, list[int]]:
        """Per model, the source partitions that may carry its events (topic metadata)."""
        reader = self.checkpoints.reader
        per_topic = {
            t.name: [source_id(i, p) for p in range(partition_count(reader, t.name))]
            for i, t in enumerate(self.kafka.topics)
        }
        return {
            name: list(
                chain.from_iterable(
                    per_topic[t.name] for t in self.kafka.topics if t.model in (None, name)
                )
            )
            for name in self.pipeline.models
        }

    # -- ownership ---------------------------------------------------------------------

    def _assigned(self, pairs: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        seek: dict[tuple[str, int], int] = {}
        for topic, i in pairs:
            stages = {}
            for name in self.pipeline.models:
                if partition_of(name, self.partitions) != i:
                    continue
                self.pipeline.reset(name)
                stages[name] = ModelStage(
                    name,
                    self.pipeline.models[name],
                    self.sources[name],
                    allowed_lateness_seconds=self.settings.allowed_lateness_seconds,
                    max_buffered_rows=self.settings.max_buffered_rows,
                    pairing=stage_pairing(self.pipeline.config, name),
                )
            offset = self._restore(i, stages)
            if offset is not None:
                seek[(topic, i)] = offset
            self.owned[i] = stages
            for name, stage in stages.items():
                stage.model.ensure_calibrated()
                if stage.shared_profiles():  # restored: shared unless the topic has it
                    self.sharing.captured(name, i, stage, saved=True)
            self.results.publish(*(self.pipeline.status(name) for name in stages))
            logger.info(
                "models owned",
                extra={"partition": i, "models": ",".join(stages) or "-", "from_offset": offset},
            )
        self.publish()
        return seek

    def _restore(self, partition: int, stages: dict[str, ModelStage]) -> int | None:
        """Restore from the partition's newest checkpoint; the offset it covers."""
        data = self.checkpoints.latest(str(partition))
        if data is None:
            return None
        ckpt = decode_checkpoint(data, f"checkpoint of {self.rows_topic}/{partition}")
        for name, stage in stages.items():
            state = ckpt.models.get(name)
            if state is None:
                continue
            try:
                stage.restore(state)
            except CheckpointError as exc:
                logger.warning(
                    "checkpointed model state does not fit; starting it fresh",
                    extra={"model": name, "error": str(exc)},
                )
                self.pipeline.reset(name)
                stages[name] = ModelStage(
                    name,
                    self.pipeline.models[name],
                    self.sources[name],
                    allowed_lateness_seconds=self.settings.allowed_lateness_seconds,
                    max_buffered_rows=self.settings.max_buffered_rows,
                    pairing=stage_pairing(self.pipeline.config, name),
                )
        return ckpt.offsets.get(f"{self.rows_topic}/{partition}")

    def _revoked(self, pairs: list[tuple[str, int]]) -> None:
        parts = [i for _, i in pairs if i in self.owned]
        try:
            self.checkpoint(parts)
        except CheckpointError as exc:
            logger.warning("checkpoint at handover failed", extra={"error": str(exc)})
        else:
            self.sharing.saved(parts)
            self.sharing.share(parts)
        self.sharing.forget(parts)
        for i in parts:
            stages = self.owned.pop(i)
            self.results.withdraw(*stages)
            logger.info("models handed over", extra={"partition": i, "models": ",".join(stages)})
        self.publish()

    # -- batches -----------------------------------------------------------------------

    def process(self, messages: list[Message]) -> int:
        """Feed a batch of row batches and markers; rows applied to the models."""
        touched: set[int] = set()
        for msg in messages:
            partition = msg.partition() or 0
            stages = self.owned.get(partition)
            value = msg.value()
            if stages is None or value is None:
                continue
            touched.add(partition)
            kind = _kind(msg)
            if kind == MARKER:
                self._mark(stages, value)
            elif kind == ROWS:
                self._rows(stages, msg, value)
        applied = self._step(touched) if touched else 0
        self.source.mark_processed(messages)
        self.sharing.share()
        return applied

    def _mark(self, stages: dict[str, ModelStage], value: bytes) -> None:
        try:
            markers = decode_marker(value)
        except (ValueError, TypeError) as exc:
            logger.warning("unreadable progress marker skipped", extra={"error": str(exc)})
            return
        for stage in stages.values():
            for marker in markers:
                stage.mark(marker)

    def _rows(self, stages: dict[str, ModelStage], msg: Message, value: bytes) -> None:
        try:
            batch = decode_rows(value)
        except CodecError as exc:
            where = f"{self.rows_topic}/{msg.partition()}/{msg.offset()}"
            logger.warning("row batch rejected", extra={"source": where, "error": str(exc)})
            return
        stage = stages.get(batch.model)
        if stage is None:
            logger.warning(
                "row batch of a model not on this partition", extra={"model": batch.model}
            )
            return
        if not stage.push(batch):
            _limited.warning(
                f"rejected:{batch.model}",
                "row batch binned against another reference or config rejected",
                extra={"model": batch.model, "rows": batch.rows, "raw": batch.raw is not None},
            )

    def _step(self, partitions: set[int]) -> int:
        outcome = BatchOutcome()
        applied = 0
        for i in partitions:
            for name, stage in self.owned[i].items():
                step = stage.step()
                if not step.rows:
                    continue
                applied += step.rows
                outcome.accepted[name] = step.rows
                if step.pairs is not None:  # halves paired by this owner
                    pairs = step.pairs
                    outcome.accepted[name] = pairs.fed
                    outcome.paired[name] = pairs.paired
                    for (half, reason), n in pairs.unpaired.items():
                        outcome.unpaired[(name, half, reason)] = n
                    for half, n in pairs.pending.items():
                        outcome.pending_halves[(name, half)] = n
                outcome.evaluations.extend(step.step.evaluations)
                outcome.performance.extend(step.step.performance)
                if step.step.ignored > 0:
                    outcome.ignored_versions[name] = step.step.ignored
                if step.last_event_time is not None:
                    outcome.last_event_time[name] = step.last_event_time
                if step.switched:
                    self.sharing.captured(name, i, stage, saved=False)
        self.accounting.account([(self.rows_topic, [], outcome)], None)
        self.results.publish(*(self.pipeline.status(n) for i in partitions for n in self.owned[i]))
        self.publish()
        return applied

    # -- checkpoints -------------------------------------------------------------------

    def due(self) -> bool:
        interval = self.settings.checkpoint_interval_seconds
        return time.monotonic() - self._last_checkpoint >= interval

    def checkpoint(self, partitions: list[int] | None = None) -> None:
        """Write the owned partitions' checkpoints; ``CheckpointError`` if one fails."""
        positions = self.source.positions
        for i in self.owned if partitions is None else partitions:
            offset = positions.get((self.rows_topic, i))
            if offset is None:
                continue  # nothing read since the assignment: the last checkpoint stands
            ckpt = Checkpoint(
                replica=self.replica,
                written_at=time.time(),
                offsets={f"{self.rows_topic}/{i}": offset},
                models={name: stage.state() for name, stage in self.owned[i].items()},
            )
            self.checkpoints.write(str(i), encode_checkpoint(ckpt))
        self._last_checkpoint = time.monotonic()

    def checkpoint_and_commit(self) -> None:
        """Periodic: checkpoints first, then the internal offsets they cover."""
        try:
            self.checkpoint()
        except CheckpointError as exc:
            logger.warning("checkpoint failed; offsets not committed", extra={"error": str(exc)})
            self._last_checkpoint = time.monotonic()
            return
        self.source.commit(synchronous=False)
        self.sharing.saved()
        self.sharing.share()

    # -- reporting ---------------------------------------------------------------------

    def owned_models(self) -> set[str]:
        return {name for stages in self.owned.values() for name in stages}

    def publish(self) -> None:
        """Ownership to ``/status`` and the metrics; per-model gauges by the owner only."""
        self._on_owned(self.owned_models())
        shares: dict[str, ModelShare] = {}
        for name in self.pipeline.models:
            i = partition_of(name, self.partitions)
            stage = self.owned.get(i, {}).get(name)
            share = (
                ModelShare(name, i, False)
                if stage is None
                else share_of(name, i, stage.buffer, self.topics)
            )
            sends = self._sends(name) if self._sends is not None else share.sends
            reference = self.sharing.reference(self.pipeline.models[name], stage)
            shares[name] = replace(share, reference=reference, sends=sends)
        self.results.publish_scale_out(
            ScaleOutStatus(
                self.replica,
                self.rows_topic,
                self._source_partitions(),
                tuple(sorted(self.owned)),
                shares,
                self.sharing.counts(),
            )
        )

    def close(self) -> None:
        """Final checkpoint, then commit and leave the group (the source's close)."""
        try:
            self.checkpoint()
        except CheckpointError as exc:
            # Offsets must not run ahead of the state: leave without committing.
            logger.warning("final checkpoint failed", extra={"error": str(exc)})
            self.source.leave()
        else:
            self.source.close()
        self.checkpoints.close()
