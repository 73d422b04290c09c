"""The internal topics of scale-out: row batches and markers out, checkpoints and captured
reference profiles in and out.

``<group_id>.rows`` carries each model's row batches (key: the model, partition:
:func:`~monitor.scaleout.stage.partition_of`) and stage 1's progress markers (to every
partition), told apart by the ``driftmon-kind`` header. ``<group_id>.checkpoints`` holds
stage 2's checkpoints keyed by internal partition; it is meant to be compacted, but readers
take the last value per key themselves (a broker may keep every record).
``<group_id>.profiles`` holds captured reference profiles keyed by model (compacted as
well): their owners write them, every replica follows the topic from its beginning without
a group (:class:`ProfileTopic`).

Producers are idempotent (no duplicates or reordering from retries); nothing relies on
Kafka transactions.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from monitor.errors import CheckpointError, DriftmonError
from monitor.ingest.client_log import LIBRDKAFKA_LOGGER, last_connection_failure
from monitor.ingest.connection import unreachable_reason
from monitor.scaleout.profiles import ProfileTable
from monitor.scaleout.reorder import Marker

logger = logging.getLogger(__name__)

KIND = "driftmon-kind"
ROWS = b"rows"
MARKER = b"marker"


class DeliveryFailed(DriftmonError):
    """Rows or markers were not acknowledged: the source offsets must not be committed."""


def producer_config(bootstrap: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    conf: dict[str, Any] = {"linger.ms": 5, "compression.type": "lz4"}
    conf.update(extra)
    conf.update(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "message.max.bytes": 16 * 1024 * 1024,
            "logger": LIBRDKAFKA_LOGGER,
        }
    )
    return conf


def partition_count(client: Producer | Consumer, topic: str, timeout: float = 10.0) -> int:
    """Partitions of ``topic``; ``DriftmonError`` naming it when it does not exist."""
    count = _partitions(client, topic, timeout)
    if count is None:
        raise DriftmonError(missing_topics_message([topic]))
    return count


def _partitions(client: Producer | Consumer, topic: str, timeout: float) -> int | None:
    meta = client.list_topics(topic, timeout=timeout)
    found = meta.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        return None
    return len(found.partitions)


def missing_topics_message(missing: Sequence[str]) -> str:
    names = ", ".join(repr(topic) for topic in missing)
    said = f"topic {names} does not" if len(missing) == 1 else f"topics {names} do not"
    return (
        f"kafka.scale_out: {said} exist on the broker; create "
        f'{"it" if len(missing) == 1 else "them"} (README, "Several replicas") '
        "or set kafka.scale_out.enabled: false"
    )


def require_topics(bootstrap: str, topics: Sequence[str], timeout: float = 10.0) -> None:
    """Fail naming every missing internal topic, or ``kafka.bootstrap_servers`` when the
    broker cannot be asked. A consumer asks: a producer's metadata request may make some
    brokers create the topic with defaults."""
    probe = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "driftmon-topic-probe",  # never joins: metadata only
            "allow.auto.create.topics": False,
            "logger": LIBRDKAFKA_LOGGER,
        }
    )
    try:
        missing = [topic for topic in topics if _partitions(probe, topic, timeout) is None]
    except KafkaException:
        reason = unreachable_reason(last_connection_failure(bootstrap))
        raise DriftmonError(
            f"kafka.bootstrap_servers: cannot reach the Kafka broker at {bootstrap} "
            f"({reason}) to find the kafka.scale_out topics; check kafka.bootstrap_servers "
            "(or DRIFTMON_KAFKA__BOOTSTRAP_SERVERS) and that the broker is running"
        ) from None
    finally:
        probe.close()
    if missing:
        raise DriftmonError(missing_topics_message(missing))


def encode_marker(markers: Sequence[Marker]) -> bytes:
    return json.dumps([[m.source, m.committed, m.idle] for m in markers]).encode()


def decode_marker(data: bytes) -> list[Marker]:
    """Markers from a marker message; ``ValueError`` when it is not one."""
    return [Marker(int(s), int(c), bool(i)) for s, c, i in json.loads(data)]


class InternalProducer:
    """Rows and markers to ``<group_id>.rows``, acknowledged before offsets are committed."""

    def __init__(self, bootstrap: str, topic: str, extra: Mapping[str, Any]) -> None:
        self.topic = topic
        self.producer = Producer(producer_config(bootstrap, extra))
        self.partitions = partition_count(self.producer, topic)
        self._failed: list[str] = []

    def _report(self, err: KafkaError | None, _msg: Any) -> None:
        if err is not None:
            self._failed.append(err.str())

    def rows(self, model: str, partition: int, data: bytes) -> None:
        self._produce(data, model.encode(), partition, ROWS)

    def markers(self, markers: Sequence[Marker]) -> None:
        """The same markers to every internal partition."""
        data = encode_marker(markers)
        for partition in range(self.partitions):
            self._produce(data, None, partition, MARKER)

    def _produce(self, data: bytes, key: bytes | None, partition: int, kind: bytes) -> None:
        while True:
            try:
                self.producer.produce(
                    self.topic,
                    data,
                    key,
                    partition=partition,
                    headers=[(KIND, kind)],
                    on_delivery=self._report,
                )
                return
            except BufferError:  # the local queue is full: let deliveries drain
                self.producer.poll(0.05)

    def flush(self, timeout_seconds: float = 30.0) -> None:
        """Wait for every acknowledgement; ``DeliveryFailed`` if any was refused or late."""
        left = self.producer.flush(timeout_seconds)
        failed, self._failed = self._failed, []
        if left or failed:
            reason = failed[0] if failed else f"{left} not acknowledged in {timeout_seconds} s"
            raise DeliveryFailed(f"rows to {self.topic!r} not delivered: {reason}")


class TopicCheckpoints:
    """Stage-2 checkpoints on ``<group_id>.checkpoints``: the last value per key wins."""

    def __init__(self, bootstrap: str, topic: str, group_id: str, extra: Mapping[str, Any]):
        self.topic = topic
        # One record per produce batch: the reader finds the topic's end with ListOffsets,
        # which some brokers answer with the last batch's base offset + 1.
        self.producer = Producer({**producer_config(bootstrap, extra), "batch.num.messages": 1})
        self.reader, self._next = whole_topic_reader(
            bootstrap, topic, f"{group_id}.checkpoint-reader", {"fetch.max.bytes": 64 << 20}
        )
        self._latest: dict[str, bytes] = {}

    def write(self, key: str, data: bytes, timeout_seconds: float = 30.0) -> None:
        """Produce one checkpoint and wait for its acknowledgement."""
        produce_acknowledged(
            self.producer, self.topic, key, data, timeout_seconds, CheckpointError, "checkpoint"
        )
        self._latest[key] = data

    def latest(self, key: str, timeout_seconds: float = 30.0) -> bytes | None:
        """The newest checkpoint under ``key``, after reading the topic to its end."""
        self._catch_up(timeout_seconds)
        return self._latest.get(key)

    def _catch_up(self, timeout_seconds: float) -> None:
        deadline = time.monotonic() + timeout_seconds
        try:
            ends = topic_ends(self.reader, self.topic, self._next, timeout_seconds)
        except KafkaException as exc:
            raise CheckpointError(f"checkpoint topic {self.topic!r} unreadable: {exc}") from None
        while any(self._next[p] < end for p, end in ends.items()):
            if time.monotonic() >= deadline:
                raise CheckpointError(
                    f"checkpoint topic {self.topic!r} not read to its end in {timeout_seconds} s"
                )
            for msg in self.reader.consume(500, 0.2):
                if msg.error() is not None:
                    continue
                self._next[msg.partition() or 0] = (msg.offset() or 0) + 1
                key, value = msg.key(), msg.value()
                if key is not None and value is not None:
                    self._latest[key.decode()] = value

    def close(self) -> None:
        self.producer.flush(5.0)
        self.reader.close()


class ProfileTopic:
    """``<group_id>.profiles``: captured profiles out (acknowledged) and followed in.

    The reader is assigned every partition from the beginning and never joins a group;
    each record goes through a :class:`ProfileTable` (last value per key). Reading is
    non-blocking after the start-up catch-up, so following the topic costs a turn of the
    run loop nothing when no record arrives.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group_id: str,
        extra: Mapping[str, Any],
        table: ProfileTable,
    ) -> None:
        self.topic = topic
        self.table = table
        self.producer = Producer(producer_config(bootstrap, extra))
        self.reader, self._next = whole_topic_reader(
            bootstrap, topic, f"{group_id}.profile-reader", {}
        )

    def publish(self, model: str, data: bytes, timeout_seconds: float = 30.0) -> None:
        """Produce one model's profile and wait for its acknowledgement (``DeliveryFailed``)."""
        produce_acknowledged(
            self.producer, self.topic, model, data, timeout_seconds, DeliveryFailed, "profile"
        )

    def follow(self, timeout_seconds: float = 0.0) -> set[str]:
        """Take the records that arrived; the models whose usable profile changed."""
        changed: set[str] = set()
        for msg in self.reader.consume(100, timeout_seconds):
            if msg.error() is not None:
                continue
            partition, offset = msg.partition() or 0, msg.offset() or 0
            self._next[partition] = offset + 1
            name = self.table.offer(msg.key(), msg.value(), f"{self.topic}/{partition}/{offset}")
            if name is not None:
                changed.add(name)
        return changed

    def catch_up(self, timeout_seconds: float = 10.0) -> set[str]:
        """Read to the topic's end as it is now (start-up: bin from the first batch on);
        what is not read in time is followed later (rows go raw meanwhile)."""
        deadline = time.monotonic() + timeout_seconds
        changed: set[str] = set()
        try:
            ends = topic_ends(self.reader, self.topic, self._next, timeout_seconds)
        except KafkaException as exc:
            logger.warning("profiles topic not read at start", extra={"error": str(exc)})
            return changed
        while any(self._next[p] < end for p, end in ends.items()):
            if time.monotonic() >= deadline:
                logger.warning("profiles topic not read to its end at start; following it")
                break
            changed |= self.follow(0.2)
        return changed

    def close(self) -> None:
        self.producer.flush(5.0)
        self.reader.close()


def produce_acknowledged(
    producer: Producer,
    topic: str,
    key: str,
    data: bytes,
    timeout_seconds: float,
    error: type[DriftmonError],
    what: str,
) -> None:
    """Produce one record and wait for its acknowledgement; ``error`` if it is refused,
    not sent or not acknowledged in time."""
    failed: list[str] = []

    def report(err: KafkaError | None, _msg: Any) -> None:
        if err is not None:
            failed.append(err.str())

    try:
        producer.produce(topic, data, key.encode(), on_delivery=report)
    except (BufferError, KafkaException) as exc:
        raise error(f"{what} to {topic!r} not sent: {exc}") from None
    left = producer.flush(timeout_seconds)
    if left or failed:
        reason = failed[0] if failed else "not acknowledged in time"
        raise error(f"{what} to {topic!r} not written: {reason}")


def whole_topic_reader(
    bootstrap: str, topic: str, group_id: str, extra: Mapping[str, Any]
) -> tuple[Consumer, dict[int, int]]:
    """A consumer assigned every partition of ``topic`` from offset 0 (``group_id`` only
    names it: assign() never joins), and the next offset to read per partition."""
    reader = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            # Read only now and then: keep little prefetched meanwhile.
            "queued.max.messages.kbytes": 16 * 1024,
            "logger": LIBRDKAFKA_LOGGER,
            **extra,
        }
    )
    count = partition_count(reader, topic)
    reader.assign([TopicPartition(topic, p, 0) for p in range(count)])
    return reader, dict.fromkeys(range(count), 0)


def topic_ends(
    reader: Consumer, topic: str, partitions: Iterable[int], timeout_seconds: float
) -> dict[int, int]:
    """Each partition's end (high watermark) as the broker says now."""
    return {
        p: reader.get_watermark_offsets(
            TopicPartition(topic, p), timeout=timeout_seconds, cached=False
        )[1]
        for p in partitions
    }
