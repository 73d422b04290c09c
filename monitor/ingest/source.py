"""The Kafka consumer: batches, explicit commits, rebalance callbacks, lag and connection state.

Offsets are committed explicitly (``enable.auto.commit`` and ``enable.auto.offset.store``
are off): the daemon commits a batch only after every message in it is accounted for, and
commits synchronously before partitions are revoked and at shutdown. Delivery is therefore
at-least-once; the events a crash can count twice are those of the batches after the last
commit (see the README).

The message accessors live in :mod:`monitor.ingest.messages` and the dead-letter producer
in :mod:`monitor.ingest.dead_letter`; both are re-exported here for existing importers.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import methodcaller
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from monitor.errors import DriftmonError
from monitor.ingest.client_log import LIBRDKAFKA_LOGGER
from monitor.ingest.connection import BrokerWatch, ConditionReport
from monitor.ingest.lag import LagProbe
from monitor.ingest.membership import (
    apply_rebalance,
    leave_group,
    still_assigned,
)
from monitor.ingest.membership import fmt_partitions as _fmt
from monitor.ingest.messages import (
    Message,
    last_per_partition,
    message_errors,
)

__all__ = ["Batch", "KafkaSource", "RebalanceError", "client_positions", "consumer_defaults"]

# librdkafka's client-side error codes are exposed with a leading underscore.
_ALL_BROKERS_DOWN = KafkaError._ALL_BROKERS_DOWN  # noqa: SLF001
_TRANSPORT = KafkaError._TRANSPORT  # noqa: SLF001
_PARTITION_EOF = KafkaError._PARTITION_EOF  # noqa: SLF001
_NO_OFFSET = KafkaError._NO_OFFSET  # noqa: SLF001
_AUTHENTICATION = KafkaError._AUTHENTICATION  # noqa: SLF001
_SSL = KafkaError._SSL  # noqa: SLF001
_BAD_MSG = KafkaError._BAD_MSG  # noqa: SLF001
_UNREACHABLE = (_ALL_BROKERS_DOWN, _TRANSPORT, _AUTHENTICATION, _SSL)
_UNKNOWN_TOPIC = KafkaError.UNKNOWN_TOPIC_OR_PART
_INCONSISTENT_PROTOCOL = KafkaError.INCONSISTENT_GROUP_PROTOCOL
_ERROR = methodcaller("error")

logger = logging.getLogger(__name__)


class RebalanceError(DriftmonError):
    """An exception raised inside a rebalance callback, re-raised with its cause kept."""


# librdkafka settings driftmon owns: changing them would break the commit contract.
_FORCED = {"enable.auto.commit": False, "enable.auto.offset.store": False}
_DEFAULTS: dict[str, Any] = {
    "auto.offset.reset": "earliest",
    "session.timeout.ms": 10000,
    "heartbeat.interval.ms": 3000,
    "statistics.interval.ms": 5000,
    "fetch.max.bytes": 52428800,
    # librdkafka postpones a partition's next fetch by this much whenever its prefetch
    # queue is over queued.min.messages / queued.max.messages.kbytes: a consumer that
    # reads slower than the fetcher (driftmon decodes every message; a bare loop does not)
    # kept meeting it at the default 1 s, and the queue ran dry before the fetch went
    # out: end to end, consume() then waited out its poll timeout, about half the
    # steady state. 100 ms left no such wait (benchmarks/RESULTS.md, 2026-12-03).
    "fetch.queue.backoff.ms": 100,
}


#: The most messages one ``consume()`` call of the client returns (see ``KafkaSource._gather``).
CONSUME_CHUNK = 1000


class Batch(list):  # type: ignore[type-arg]  # a list[Message], as consume() always returned
    """The data messages of one :meth:`KafkaSource.consume`, and ``read_to``: per assigned
    partition, the next offset after the last message consumed so far, read from the
    client right after the batch's own ``consume()`` calls (None when it could not be).

    :meth:`KafkaSource.mark_processed` takes the batch's offsets from ``read_to`` instead
    of reading every message's partition and offset (a C call each, holding the GIL).
    """

    __slots__ = ("read_to",)

    def __init__(self, messages: Iterable[Message], read_to: dict[tuple[str, int], int] | None):
        super().__init__(messages)
        self.read_to = read_to


def consumer_defaults() -> dict[str, Any]:
    """The librdkafka settings driftmon applies under ``kafka.consumer`` (which wins)."""
    return dict(_DEFAULTS)


class KafkaSource:
    """Batch consumer with explicit commits, lag (:mod:`monitor.ingest.lag`) and connection state.

    ``on_assign`` / ``on_revoke`` are called with ``[(topic, partition), ...]``. Revocation
    commits the offsets of everything already processed before handing partitions over.
    ``on_condition`` receives the readiness conditions ``kafka_connected`` and
    ``kafka_topics`` with a specific reason (see :mod:`monitor.ingest.connection`).
    ``consumer_factory`` builds the client from its librdkafka config (tests pass a fake).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        group_id: str,
        topics: Sequence[str],
        extra: Mapping[str, Any] | None = None,
        *,
        on_assign: Callable[[list[tuple[str, int]]], Mapping[tuple[str, int], int] | None]
        | None = None,
        on_revoke: Callable[[list[tuple[str, int]]], None] | None = None,
        on_lag: Callable[[str, int, int | None], None] | None = None,
        on_condition: ConditionReport | None = None,
        consumer_factory: Callable[[dict[str, Any]], Consumer] = Consumer,
    ) -> None:
        conf: dict[str, Any] = dict(_DEFAULTS)
        conf.update(extra or {})
        conf.update(_FORCED)
        conf.update(
            {
                "bootstrap.servers": bootstrap_servers,
                "group.id": group_id,
                "error_cb": self._on_error,
                "stats_cb": self._on_stats,
                "logger": LIBRDKAFKA_LOGGER,
            }
        )
        self.topics = list(topics)
        self.group_id = group_id
        strategy = str(conf.get("partition.assignment.strategy", ""))
        self._cooperative = "cooperative" in strategy
        self._paused = False
        self._on_assign_cb = on_assign
        self._on_revoke_cb = on_revoke
        self._on_lag = on_lag
        self.watch = BrokerWatch(bootstrap_servers, topics, on_condition)
        # Next offset to consume per partition, for everything accounted for, and the
        # partitions whose position moved since the last commit.
        self._positions: dict[tuple[str, int], int] = {}
        self._dirty: set[tuple[str, int]] = set()
        self._assigned: set[tuple[str, int]] = set()
        self._assignment_seen = threading.Event()
        self._rebalances = 0  # callbacks run so far: a batch ends at one (see _gather)
        self._last_error_log = 0.0
        self.consumer = consumer_factory(conf)
        # Lag as often as librdkafka's statistics (statistics.interval.ms, 5 s by default).
        interval = float(conf.get("statistics.interval.ms") or 5000) / 1000.0
        self._lag = LagProbe(
            self.consumer,
            interval_seconds=interval,
            position_of=self._positions.get,
            on_lag=on_lag or (lambda topic, partition, lag: None),
        )
        self.consumer.subscribe(
            self.topics, on_assign=self._assign, on_revoke=self._revoke, on_lost=self._lost
        )

    # -- callbacks (run inside poll/consume on this thread) ----------------------------

    def _assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._rebalances += 1
        try:
            pairs = [(p.topic, p.partition) for p in partitions]
            self._assigned.update(pairs)
            self._assignment_seen.set()
            if self._on_lag is not None:
                self._lag.track(pairs)
            self.watch.topics_seen({topic for topic, _ in pairs})
            seek = self._on_assign_cb(pairs) if self._on_assign_cb else None
            if seek:
                # Resume from the offsets the checkpoint covers, not the group's commits.
                for p in partitions:
                    if (p.topic, p.partition) in seek:
                        p.offset = seek[(p.topic, p.partition)]
                        self._positions[(p.topic, p.partition)] = p.offset
            logger.info(
                "partitions assigned",
                extra={"partitions": _fmt(pairs), "resumed_from_checkpoint": len(seek or {})},
            )
        except Exception as exc:  # surface with context instead of librdkafka losing it
            raise RebalanceError(f"on_assign failed: {exc}") from exc
        finally:
            apply_rebalance(consumer, self._cooperative, "assign", partitions)

    def _revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._rebalances += 1
        try:
            pairs = [(p.topic, p.partition) for p in partitions]
            if self._on_revoke_cb:
                self._on_revoke_cb(pairs)
            self.commit(synchronous=True, only=pairs)
            for pair in pairs:
                self._assigned.discard(pair)
                self._positions.pop(pair, None)
                self._dirty.discard(pair)
            self._lag.forget(pairs)
            logger.info("partitions revoked", extra={"partitions": _fmt(pairs)})
        except Exception as exc:
            raise RebalanceError(f"on_revoke failed: {exc}") from exc
        finally:
            apply_rebalance(consumer, self._cooperative, "revoke", partitions)

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._rebalances += 1
        # Lost partitions already belong to someone else: committing would fail or clash.
        # Hand their state over like a revocation, minus the commit: the checkpoint (local
        # storage, no broker needed) then holds the state with the offsets it reflects, so
        # whoever is assigned them next, this replica included, resumes from there instead
        # of from older committed offsets into state that already counted the events since.
        pairs = [(p.topic, p.partition) for p in partitions]
        try:
            if self._on_revoke_cb:
                self._on_revoke_cb(pairs)
        except Exception as exc:
            raise RebalanceError(f"on_lost failed: {exc}") from exc
        finally:
            apply_rebalance(consumer, self._cooperative, "lost", partitions)
        for pair in pairs:
            self._assigned.discard(pair)
            self._positions.pop(pair, None)
            self._dirty.discard(pair)
        self._lag.forget(pairs)  # nobody here measures them any more
        logger.warning("partitions lost", extra={"partitions": _fmt(pairs)})

    def _on_error(self, error: KafkaError) -> None:
        code = error.code()
        # A non-Kafka server answering the first request (ApiVersion) is a bad message.
        not_kafka = code == _BAD_MSG and "APIVERSION" in error.str().upper()
        if code in _UNREACHABLE or not_kafka:
            # Said once per outage by the watch, in driftmon's words.
            self.watch.unreachable(None if code == _ALL_BROKERS_DOWN else error.str())
            return
        if (now := time.monotonic()) - self._last_error_log >= 10.0:  # repeated every ~50 ms
            self._last_error_log = now
            _log_kafka_error(error, self.group_id)

    def _on_stats(self, raw: str) -> None:
        try:
            stats = json.loads(raw)
        except ValueError:
            return
        brokers = stats.get("brokers", {}).values()
        up = any(b.get("state") == "UP" and b.get("nodeid", -1) >= 0 for b in brokers)
        self._set_connected(up)
        if self.watch.missing:
            # A topic created after the subscription shows up in metadata with partitions.
            known = stats.get("topics", {})
            self.watch.topics_seen(
                t for t, ts in known.items() if any(int(n) >= 0 for n in ts.get("partitions", {}))
            )

    @property
    def connected(self) -> bool:
        """True while a broker answers (from the last error, statistics or batch)."""
        return self.watch.connected

    def _set_connected(self, value: bool) -> None:
        if value:
            self.watch.reachable()
        else:
            self.watch.unreachable(None)

    # -- consuming and committing ------------------------------------------------------

    @property
    def assigned(self) -> bool:
        """True once the group has handed this consumer its (possibly empty) assignment."""
        return self._assignment_seen.is_set()

    def consume(self, max_messages: int, timeout_seconds: float) -> Batch:
        """One batch of data messages; broker-side errors are logged and skipped."""
        self._lag.poll()  # between consume calls: it keeps running while paused
        batch = self._gather(max_messages, timeout_seconds)
        read_to = self._read_to() if batch else None
        # One C-level pass with no list built: a data message's error() is None, and a
        # KafkaError is true (truth, not ==: KafkaError's == with None leaves an error set).
        if not any(map(_ERROR, batch)):
            if batch:
                self._set_connected(True)
            return Batch(batch, read_to)
        errors = message_errors(batch)
        out = Batch((), read_to)
        for msg, err in zip(batch, errors, strict=True):
            if err is not None:
                if err.code() == _UNKNOWN_TOPIC:
                    self.watch.topic_missing(msg.topic() or "")
                elif err.code() != _PARTITION_EOF:
                    self._on_error(err)
                continue
            out.append(msg)
        if out:
            self._set_connected(True)
        return out

    def _gather(self, max_messages: int, timeout_seconds: float) -> list[Message]:
        """Up to ``max_messages``, read in calls of at most :data:`CONSUME_CHUNK`.

        confluent-kafka creates a call's ``Message`` objects holding the GIL, which the
        statistics thread waits for: short calls keep that wait short. The first call
        waits up to the timeout, the rest take what is fetched; a rebalance callback (run
        inside them) ends the batch, which then keeps only partitions still assigned.
        """
        chunk = min(max_messages, CONSUME_CHUNK)
        rebalances = self._rebalances
        first = self.consumer.consume(num_messages=chunk, timeout=timeout_seconds)
        batch: list[Message] = first  # type: ignore[assignment]
        got = len(batch)
        while got == chunk and len(batch) < max_messages and self._rebalances == rebalances:
            chunk = min(CONSUME_CHUNK, max_messages - len(batch))
            more = self.consumer.consume(num_messages=chunk, timeout=0)
            batch += more
            got = len(more)
        if self._rebalances != rebalances and batch:
            batch = still_assigned(batch, self._assigned)
        return batch

    def _read_to(self) -> dict[tuple[str, int], int] | None:
        """Each assigned partition's client position (see :func:`client_positions`)."""
        return client_positions(self.consumer, self._assigned)

    @property
    def positions(self) -> dict[tuple[str, int], int]:
        """Next offset to read per assigned partition, for everything accounted for."""
        return {k: v for k, v in self._positions.items() if k in self._assigned}

    @property
    def assigned_partitions(self) -> set[tuple[str, int]]:
        return set(self._assigned)

    def pause(self) -> None:
        """Stop fetching (staying in the group) until :meth:`resume`.

        Pauses the whole current assignment every time it is called, so partitions
        assigned while paused are paused too.
        """
        self.consumer.pause(self.consumer.assignment())
        self._paused = True

    def resume(self) -> None:
        if self._paused:
            self.consumer.resume(self.consumer.assignment())
            self._paused = False

    def mark_processed(self, messages: Sequence[Message]) -> None:
        """Record that these messages are fully accounted for (eligible for commit).

        A :class:`Batch` is marked from its ``read_to``, other lists from the last message
        of each partition (found with C-level passes); only partitions still assigned.
        """
        if not messages:
            return
        read_to = messages.read_to if isinstance(messages, Batch) else None
        if read_to is not None:
            self._advance((key, nxt) for key, nxt in read_to.items() if key in self._assigned)
            return
        one_topic = len(self.topics) == 1 and not self.topics[0].startswith("^")  # no pattern
        lasts = last_per_partition(messages, one_topic=one_topic)
        read = (((m.topic() or "", m.partition() or 0), (m.offset() or 0) + 1) for m in lasts)
        # A partition revoked since the batch was read is someone else's to commit.
        self._advance((key, nxt) for key, nxt in read if key in self._assigned)

    def _advance(self, read_to: Iterable[tuple[tuple[str, int], int]]) -> None:
        """Move each partition's processed position forward (never back)."""
        positions = self._positions
        dirty = self._dirty
        for key, nxt in read_to:
            if nxt > positions.get(key, -1):
                positions[key] = nxt
                dirty.add(key)

    def commit(self, *, synchronous: bool, only: Iterable[tuple[str, int]] | None = None) -> None:
        """Commit processed offsets (all partitions, or just ``only``).

        Asynchronous commits send only positions that moved; synchronous ones (revoke,
        shutdown) re-send every known position, because an asynchronous commit still in
        flight is not guaranteed to complete once the consumer closes.
        """
        if only is not None:
            keys = [k for k in only if k in self._positions]
        elif synchronous:
            keys = list(self._positions)
        else:
            keys = list(self._dirty)
        if not keys:
            return
        offsets = [TopicPartition(t, p, self._positions[(t, p)]) for t, p in keys]
        try:
            if synchronous:
                self.consumer.commit(offsets=offsets, asynchronous=False)
            else:
                self.consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() == _NO_OFFSET:
                return
            logger.warning("offset commit failed", extra={"error": str(exc)})
            return
        self._dirty.difference_update(keys)

    def close(self) -> None:
        """Commit what is processed, then leave the group."""
        self._lag.stop()  # no broker query may outlive the consumer
        try:
            self.commit(synchronous=True)
        finally:
            leave_group(self.consumer, self._assigned)

    def leave(self) -> None:
        """Leave the group without committing (offsets must not pass a failed checkpoint)."""
        self._lag.stop()
        leave_group(self.consumer, self._assigned)


def client_positions(
    consumer: Consumer, assigned: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], int] | None:
    """The client's position (the offset after the last message it handed out) of each
    of the ``assigned`` partitions that handed one out since it was assigned.

    Read right after a batch's own consume() calls, it covers that batch and the ones
    before it, which are marked processed first (batches are marked in order). A
    partition (re)assigned, with or without a seek to a checkpoint's offsets, has no
    position until a message of it is consumed, so a seek alone marks nothing. None when
    the client cannot say (the caller then reads the messages).
    """
    partitions = [TopicPartition(t, p) for t, p in assigned]
    if not partitions:
        return {}
    try:
        found = consumer.position(partitions)
    except KafkaException:
        return None
    return {(tp.topic, tp.partition): tp.offset for tp in found if tp.offset >= 0}


def _log_kafka_error(error: KafkaError, group_id: str) -> None:
    """One consumer error; JoinGroup's INCONSISTENT_GROUP_PROTOCOL in driftmon's words: a
    member of the group assigns partitions another way (kafka.scale_out on one side only)."""
    if error.code() != _INCONSISTENT_PROTOCOL:
        logger.warning("kafka error", extra={"error": error.str(), "code": error.name()})
        return
    said = (
        f"consumer group {group_id!r} (kafka.group_id) refuses this replica: its other "
        "members assign partitions another way (replicas with kafka.scale_out set the other "
        "way, or another application with this group id); stop every replica before "
        "switching kafka.scale_out, or set another kafka.group_id"
    )
    logger.error(said, extra={"key": "kafka.group_id"})
