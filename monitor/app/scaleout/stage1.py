"""Stage 1 on every replica: its share of the source partitions, decoded and binned.

Consumes the configured topics in the replica group (``kafka.group_id``), decodes each
batch as a single process would, bins every model's rows against its reference grid and
produces them to ``<group_id>.rows`` with their source offsets, then a progress marker per
source partition to every internal partition. Source offsets are committed only after all
of that is acknowledged, so a crash in between sends the same rows again, which stage 2
drops as duplicates. Rejected events are accounted for here (counter, log, dead letter).
Decoding is :meth:`Pipeline.decode`: the topic's format, with headers and topics for the
formats that read them, string length limits applied.

A model capturing its reference goes raw until its owner has shared the captured profile
on ``<group_id>.profiles``; stage 1 follows that topic (:meth:`Stage1.follow_profiles`)
and bins the model's rows against the profile from then on.

Request and response halves (formats that log them apart) are never paired here: their
model's rows go raw, halves and pairing keys included, and its owner pairs them
(:mod:`monitor.scaleout.halves`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from functools import partial
from operator import methodcaller

import numpy as np
from confluent_kafka import TopicPartition

from monitor.app.accounting import BatchAccounting
from monitor.app.scaleout.topics import DeliveryFailed, InternalProducer, ProfileTopic
from monitor.config import Config, KafkaConfig
from monitor.ingest.dead_letter import DeadLetterSink
from monitor.ingest.messages import (
    Message,
    header_version,
    message_headers,
    message_partitions,
    message_seconds,
    message_topics,
    message_values,
)
from monitor.ingest.source import KafkaSource
from monitor.model.versioned import VersionedModel
from monitor.pipeline import BatchOutcome, Pipeline
from monitor.scaleout.carried import join_columns
from monitor.scaleout.codec import encode_rows, source_id
from monitor.scaleout.halves import pairs_halves
from monitor.scaleout.reorder import Marker
from monitor.scaleout.stage import (
    binned_rows,
    codec_for,
    partition_of,
    raw_fingerprint,
    raw_rows,
    sends_raw,
)
from monitor.scaleout.versions import VersionGrids, split_profile_key

logger = logging.getLogger(__name__)

COOPERATIVE = {"partition.assignment.strategy": "cooperative-sticky"}
_OFFSET = methodcaller("offset")


def message_offsets(messages: list[Message]) -> np.ndarray:
    return np.fromiter(map(_OFFSET, messages), dtype=np.int64, count=len(messages))


class Stage1:
    """Decode, bin, produce, then commit (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        kafka: KafkaConfig,
        pipeline: Pipeline,
        accounting: BatchAccounting,
        *,
        on_assign: Callable[[list[tuple[str, int]]], None],
        on_revoke: Callable[[], None],
        on_lag: Callable[[str, int, int | None], None],
        on_condition: Callable[..., None],
        profiles: ProfileTopic | None = None,
    ) -> None:
        self.config = config
        self.kafka = kafka
        self.pipeline = pipeline
        self.accounting = accounting
        self.topics = [t.name for t in kafka.topics]
        self.idle_seconds = kafka.scale_out.idle_seconds
        self.out = InternalProducer(
            kafka.bootstrap_servers, kafka.scale_out.rows_topic(kafka.group_id), kafka.producer
        )
        # Per model its row codec, or None: its decoded values travel raw (``sends_raw``,
        # or halves its owner pairs).
        self.paired = {name for name in pipeline.models if pairs_halves(config, name)}
        self.codecs = {
            name: None if sends_raw(model) or name in self.paired else codec_for(name, model)
            for name, model in pipeline.models.items()
        }
        # Per model what its binned rows carry for a performance join (None: nothing).
        self.joins = {name: join_columns(model) for name, model in pipeline.models.items()}
        self.raw_fingerprints = {
            name: raw_fingerprint(model)
            for name, model in pipeline.models.items()
            if self.codecs[name] is None
        }
        # Models with versions: each row against its version's grid while every row's
        # grid is known, else the batch goes raw.
        self.grids = {
            name: VersionGrids(name, model)
            for name, model in pipeline.models.items()
            if isinstance(model, VersionedModel) and name not in self.paired  # halves: raw
        }
        self.profiles = profiles
        if profiles is not None:
            self._switch(profiles.catch_up())
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._heard: dict[tuple[str, int], float] = {}
        self._idle: set[tuple[str, int]] = set()
        self.source = KafkaSource(
            kafka.bootstrap_servers,
            kafka.group_id,
            self.topics,
            {**kafka.consumer, **COOPERATIVE},
            on_assign=self._assigned,
            on_revoke=self._revoked,
            on_lag=on_lag,
            on_condition=on_condition,
        )

    def _assigned(self, pairs: list[tuple[str, int]]) -> None:
        now = time.monotonic()
        for pair in pairs:
            self._heard[pair] = now
        self._on_assign(pairs)

    def _revoked(self, pairs: list[tuple[str, int]]) -> None:
        for pair in pairs:
            self._heard.pop(pair, None)
            self._idle.discard(pair)
        self._on_revoke()

    def _source(self, topic: str, partition: int) -> int:
        return source_id(self.topics.index(topic), partition)

    # -- captured references -----------------------------------------------------------

    def follow_profiles(self) -> bool:
        """Take any new record of the profiles topic (non-blocking); whether a model's
        rows changed form."""
        if self.profiles is None:
            return False
        changed = self.profiles.follow()
        self._switch(changed)
        return bool(changed)

    def _switch(self, models: set[str]) -> None:
        """Bin each model against its shared profile, or go (back) to raw rows."""
        if self.profiles is None:
            return
        table = self.profiles.table
        for name in sorted(models - self.paired):
            codec = table.codec(name)
            found = split_profile_key(name, list(self.codecs))
            grids = None if found is None else self.grids.get(found[0])
            if found is not None and grids is not None:  # a reference of a versioned model
                grids.use(found[1], codec)
                logger.info(
                    "rows of a captured model version now %s",
                    "binned against the shared profile" if codec else "raw",
                    extra={"model": found[0], "version": found[1] or None},
                )
                continue
            self.codecs[name] = codec
            logger.info(
                "rows of a captured-reference model now %s",
                "binned against the shared profile" if codec else "raw",
                extra={"model": name},
            )

    def sends(self, model: str) -> str:
        """What the model's rows travel as: ``binned`` or ``raw`` (a model with versions:
        ``binned`` once every reference of its rows so far has a grid)."""
        grids = self.grids.get(model)
        if grids is not None:
            return grids.sends
        return "raw" if self.codecs.get(model) is None else "binned"

    # -- one batch ---------------------------------------------------------------------

    def process(self, messages: list[Message], dead_letter: DeadLetterSink | None) -> int:
        """Decode, bin and produce a batch, then commit its offsets; events accepted."""
        by_topic: dict[str, list[Message]] = {}
        if len(self.topics) == 1:
            by_topic[self.topics[0]] = messages
        else:
            for msg, name in zip(messages, message_topics(messages), strict=True):
                by_topic.setdefault(name or "", []).append(msg)
        parts = []
        accepted = 0
        markers: list[Marker] = []
        for topic, msgs in by_topic.items():
            outcome, sent, topic_markers = self._topic(topic, msgs)
            parts.append((topic, msgs, outcome))
            accepted += sent
            markers += topic_markers
        self.accounting.account(parts, dead_letter)
        try:
            self.out.flush()
            self.out.markers(markers)
            self.out.flush()
        except DeliveryFailed as exc:
            logger.warning("rows not delivered; reading the batch again", extra={"error": str(exc)})
            self._rewind(messages)
            return 0
        self.commit(messages)
        return accepted

    def commit(self, messages: list[Message]) -> None:
        """The batch's rows and markers are acknowledged: commit its source offsets."""
        self.source.mark_processed(messages)
        self.source.commit(synchronous=False)

    def _topic(self, topic: str, msgs: list[Message]) -> tuple[BatchOutcome, int, list[Marker]]:
        decoded = self.pipeline.decode(
            message_values(msgs),
            partial(message_seconds, msgs),
            self.pipeline.schema(topic),
            headers=partial(message_headers, msgs),
            topics=partial(message_topics, msgs),
        )
        outcome = BatchOutcome(rejected=list(decoded.rejected))
        partitions = message_partitions(msgs)
        offsets = message_offsets(msgs)
        sources = np.array([self._source(topic, p) for p in range(int(partitions.max()) + 1)])
        present = np.unique(partitions)
        ranges = np.array(
            [
                [sources[p], offsets[partitions == p].min(), offsets[partitions == p].max()]
                for p in present.tolist()
            ],
            np.int64,
        ).reshape(-1, 3)
        sent = 0
        versions = self._header_versions(topic, msgs) if self.raw_fingerprints else None
        for name, columns in decoded.models.items():
            if not columns.rows:
                continue
            if columns.unknown_features:
                outcome.unknown_features[name] = columns.unknown_features
            codec = self.codecs[name]
            source, offset = sources[partitions[columns.msg_index]], offsets[columns.msg_index]
            grids = self.grids.get(name)
            found = None
            if grids is not None:
                found = grids.rows(columns, versions, source, offset, ranges)
            if found is not None:
                batch = found
            elif codec is None:
                fingerprint = self.raw_fingerprints[name]
                batch = raw_rows(name, fingerprint, columns, versions, source, offset, ranges)
            else:
                batch = binned_rows(codec, self.joins[name], columns, source, offset, ranges)
            self.out.rows(name, partition_of(name, self.out.partitions), encode_rows(batch))
            sent += columns.rows
        now = time.monotonic()
        markers = []
        for p in present.tolist():
            self._heard[(topic, p)] = now
            self._idle.discard((topic, p))
            last = int(offsets[partitions == p].max())
            markers.append(Marker(int(sources[p]), last + 1, idle=False))
        return outcome, sent, markers

    def _header_versions(self, topic: str, msgs: list[Message]) -> list[str | None] | None:
        """Each message's ``version`` header, when a model of the topic has versions."""
        if not self.pipeline.wants_header_versions(topic):
            return None
        return list(map(header_version, msgs))

    def _rewind(self, messages: list[Message]) -> None:
        """Seek each partition of an undelivered batch back to its first message."""
        first: dict[tuple[str, int], int] = {}
        for msg in messages:
            key = (msg.topic() or "", msg.partition() or 0)
            first.setdefault(key, msg.offset() or 0)
        for (topic, partition), offset in first.items():
            self.source.consumer.seek(TopicPartition(topic, partition, offset))

    # -- idle sources ------------------------------------------------------------------

    def tick(self) -> None:
        """Tell stage 2 about assigned partitions caught up and quiet for ``idle_seconds``,
        so they stop holding watermarks (an idle partition's next event wakes it)."""
        now = time.monotonic()
        quiet = [
            pair
            for pair, heard in self._heard.items()
            if pair not in self._idle and now - heard >= self.idle_seconds
        ]
        if not quiet:
            return
        consumer = self.source.consumer
        caught_up: list[tuple[str, int]] = []
        markers = []
        try:
            for tp in self._positions(quiet):
                low, high = consumer.get_watermark_offsets(tp, cached=tp.offset >= 0)
                if tp.offset < 0:  # never committed either: reading starts at the earliest
                    tp = TopicPartition(tp.topic, tp.partition, low)
                if high >= 0 and tp.offset >= high:
                    caught_up.append((tp.topic, tp.partition))
                    markers.append(Marker(self._source(tp.topic, tp.partition), tp.offset, True))
            if markers:
                self.out.markers(markers)
                self.out.flush()
        except Exception as exc:  # retried at the next tick (KafkaException, BufferError, ...)
            logger.debug("idle markers not sent", extra={"error": str(exc)})
            return
        self._idle.update(caught_up)

    def _positions(self, pairs: list[tuple[str, int]]) -> list[TopicPartition]:
        """Next offsets to read; for a partition nothing was fetched from since its
        assignment (taken over after a failover, with nothing new in it), the committed
        offset: else a caught-up partition would never be reported idle and would hold
        every watermark."""
        consumer = self.source.consumer
        found = consumer.position([TopicPartition(t, p) for t, p in pairs])
        unknown = [tp for tp in found if tp.offset < 0]
        if not unknown:
            return list(found)
        committed = {
            (tp.topic, tp.partition): tp.offset for tp in consumer.committed(unknown, timeout=5.0)
        }
        return [
            tp
            if tp.offset >= 0
            else TopicPartition(
                tp.topic, tp.partition, committed.get((tp.topic, tp.partition), tp.offset)
            )
            for tp in found
        ]

    @property
    def positions(self) -> Mapping[tuple[str, int], int]:
        return self.source.positions

    def close(self) -> None:
        self.source.close()
        self.out.producer.flush(5.0)
