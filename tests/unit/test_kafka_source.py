"""KafkaSource without a broker: a fake consumer records what the source asks of it.

The real-broker tests (tests/integration/test_faults_*.py) pin the end-to-end behaviour;
these pin the source's own contract: rebalance callbacks, commits of exactly what was
marked processed, pause/resume, connection state from librdkafka's statistics JSON and
the lag probe's partitions following the assignment (the probe itself: test_lag.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

import monitor.ingest.membership as membership
import monitor.ingest.source as source_module
from monitor.ingest.messages import header_version, message_seconds, message_values
from monitor.ingest.source import KafkaSource, RebalanceError

Pair = tuple[str, int]


class FakeMessage:
    """Just what the ``Message`` protocol asks for."""

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        value: bytes | None = b"{}",
        error: KafkaError | None = None,
        timestamp: tuple[int, int] = (1, 1_764_150_000_250),
        headers: Any = None,
    ) -> None:
        self._topic, self._partition, self._offset = topic, partition, offset
        self._value, self._error = value, error
        self._timestamp, self._headers = timestamp, headers

    def error(self) -> KafkaError | None:
        return self._error

    def value(self) -> bytes | None:
        return self._value

    def topic(self) -> str | None:
        return self._topic

    def partition(self) -> int | None:
        return self._partition

    def offset(self) -> int | None:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return self._timestamp

    def headers(self) -> Any:
        return self._headers


class FakeConsumer:
    """Records every call in ``log`` (shared with the test's callbacks, to pin the order)."""

    def __init__(self, conf: dict[str, Any], log: list[tuple[Any, ...]]) -> None:
        self.conf = conf
        self.log = log
        self.batches: list[list[FakeMessage]] = []
        self.current: list[TopicPartition] = []
        self.commit_error: KafkaException | None = None
        self.callbacks: dict[str, Any] = {}
        self.watermarks: dict[Pair, int] = {}  # ListOffsets "latest" per partition
        self.during_consume: list[Callable[[], None]] = []  # run one per consume() call
        self.owned: set[Pair] = set()
        self.revoke_pending = False
        self.answers_unsubscribe = True
        self.polls = 0
        self.close_blocks = threading.Event()
        self.close_blocks.set()
        # As librdkafka: per partition, the offset after the last message handed out since
        # the partition was (re)assigned; none before (position() says -1001).
        self.handed_out: dict[Pair, int] = {}
        self.position_error: KafkaException | None = None

    def get_watermark_offsets(
        self, tp: TopicPartition, timeout: float | None = None, cached: bool = False
    ) -> tuple[int, int]:
        return (0, -1001 if cached else self.watermarks[(tp.topic, tp.partition)])

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(p.topic, p.partition, -1001) for p in partitions]

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.callbacks = callbacks
        self.log.append(("subscribe", tuple(topics)))

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        self.log.append(("consume", num_messages, timeout))
        if self.during_consume:
            self.during_consume.pop(0)()
        batch = self.batches.pop(0) if self.batches else []
        for msg in batch:  # the attributes: an Unread message's accessors must not be called
            if msg.error() is None:
                self.handed_out[(msg._topic, msg._partition)] = msg._offset + 1
        return batch

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        if self.position_error is not None:
            raise self.position_error
        return [
            TopicPartition(p.topic, p.partition, self.handed_out.get((p.topic, p.partition), -1001))
            for p in partitions
        ]

    def assignment(self) -> list[TopicPartition]:
        return list(self.current)

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.log.append(("assign", _offsets(partitions)))

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self.log.append(("incremental_assign", _offsets(partitions)))

    def unassign(self) -> None:
        self.log.append(("unassign",))

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None:
        self.log.append(("incremental_unassign", _offsets(partitions)))

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.log.append(("pause", _offsets(partitions)))

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.log.append(("resume", _offsets(partitions)))

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        if self.commit_error is not None:
            raise self.commit_error
        self.log.append(("commit", _offsets(offsets), asynchronous))

    def close(self) -> None:
        self.log.append(("close",))
        self.close_blocks.wait()

    def unsubscribe(self) -> None:
        self.log.append(("unsubscribe",))
        self.revoke_pending = self.answers_unsubscribe

    def poll(self, timeout: float) -> None:
        self.polls += 1
        if self.revoke_pending:  # librdkafka serves the revocation inside poll()
            self.revoke_pending = False
            self.rebalance("revoke", sorted(self.owned))

    # librdkafka calls these from inside poll/consume; the tests call them directly.
    def rebalance(self, kind: str, pairs: list[Pair]) -> None:
        for pair in pairs:  # an assignment change forgets what was handed out
            self.handed_out.pop(pair, None)
        if kind == "assign":
            self.owned.update(pairs)
        else:
            self.owned.difference_update(pairs)
        self.callbacks[f"on_{kind}"](self, [TopicPartition(t, p) for t, p in pairs])

    def stats(self, stats: Mapping[str, Any]) -> None:
        self.conf["stats_cb"](json.dumps(stats))


def _offsets(partitions: list[TopicPartition]) -> list[tuple[str, int, int]]:
    return sorted((p.topic, p.partition, p.offset) for p in partitions)


class Recorder:
    """A KafkaSource over a FakeConsumer, with callbacks that write to the same log."""

    def __init__(self, topics: tuple[str, ...] = ("t",), seek: Any = None, **extra: Any) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.lag: list[tuple[str, int, int | None]] = []
        self.connected: list[bool] = []
        self.conditions: list[tuple[str, bool, str]] = []
        self.seek = seek
        self.fail = False
        self.source = KafkaSource(
            "broker:9092",
            "group",
            topics,
            extra,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lag=lambda t, p, n: self.lag.append((t, p, n)),
            on_condition=self._on_condition,
            consumer_factory=self._factory,
        )

    def _on_condition(self, name: str, ok: bool, detail: str) -> None:
        self.conditions.append((name, ok, detail))
        if name == "kafka_connected":
            self.connected.append(ok)

    def _factory(self, conf: dict[str, Any]) -> FakeConsumer:
        self.consumer = FakeConsumer(conf, self.log)
        return self.consumer

    def _on_assign(self, pairs: list[Pair]) -> Any:
        if self.fail:
            raise ValueError("boom")
        self.log.append(("on_assign", sorted(pairs)))
        return self.seek

    def _on_revoke(self, pairs: list[Pair]) -> None:
        if self.fail:
            raise ValueError("boom")
        self.log.append(("on_revoke", sorted(pairs)))

    def calls(self, name: str) -> list[tuple[Any, ...]]:
        return [entry for entry in self.log if entry[0] == name]


def test_commit_settings_are_forced_and_the_topics_subscribed() -> None:
    rec = Recorder(("a", "b"), **{"enable.auto.commit": True, "fetch.max.bytes": 1024})
    conf = rec.consumer.conf
    assert conf["enable.auto.commit"] is False and conf["enable.auto.offset.store"] is False
    assert conf["fetch.max.bytes"] == 1024  # a pass-through option wins over the default
    assert conf["auto.offset.reset"] == "earliest"
    # A consumer slower than librdkafka's fetcher must not wait 1 s (the default) for the
    # next fetch once its prefetch queue was full.
    assert conf["fetch.queue.backoff.ms"] == 100
    assert (conf["bootstrap.servers"], conf["group.id"]) == ("broker:9092", "group")
    assert rec.log == [("subscribe", ("a", "b"))]
    assert rec.source.assigned is False


def test_assign_reports_the_partitions_and_seeks_to_the_checkpoint() -> None:
    rec = Recorder(seek={("t", 1): 40})
    rec.consumer.rebalance("assign", [("t", 0), ("t", 1)])
    assert rec.log[1:] == [
        ("on_assign", [("t", 0), ("t", 1)]),
        ("assign", [("t", 0, -1001), ("t", 1, 40)]),  # -1001: librdkafka's "stored offset"
    ]
    assert rec.source.assigned is True
    assert rec.source.assigned_partitions == {("t", 0), ("t", 1)}
    assert rec.source.positions == {("t", 1): 40}


COOPERATIVE = {"partition.assignment.strategy": "cooperative-sticky"}


def test_cooperative_assignment_is_incremental_and_without_a_seek_from_the_commits() -> None:
    rec = Recorder(seek={("t", 0): 7}, **COOPERATIVE)
    rec.consumer.rebalance("assign", [("t", 0)])
    assert rec.calls("incremental_assign") == [("incremental_assign", [("t", 0, 7)])]
    plain = Recorder()
    plain.consumer.rebalance("assign", [("t", 0)])
    assert plain.calls("assign") == [("assign", [("t", 0, -1001)])]  # the group's commits
    assert plain.calls("incremental_assign") == []


@pytest.mark.parametrize("cooperative", [True, False])
@pytest.mark.parametrize("kind", ["revoke", "lost"])
def test_every_rebalance_is_applied_by_the_callback_itself(kind: str, cooperative: bool) -> None:
    # Left to confluent-kafka, the (un)assignment first asks librdkafka for the protocol
    # while holding the GIL, which can hang for ever inside consumer.close().
    rec = Recorder(**(COOPERATIVE if cooperative else {}))
    rec.consumer.rebalance("assign", [("t", 0), ("t", 1)])
    rec.consumer.rebalance(kind, [("t", 1)])
    if cooperative:
        assert rec.log[-1] == ("incremental_unassign", [("t", 1, -1001)])
    else:
        assert rec.log[-1] == ("unassign",)
    rec.fail = True  # a failing callback still leaves the assignment right
    with pytest.raises(RebalanceError):
        rec.consumer.rebalance(kind, [("t", 0)])
    assert rec.log[-1][0] == ("incremental_unassign" if cooperative else "unassign")


def test_only_marked_messages_are_committed_and_only_once_asynchronously() -> None:
    rec = Recorder()
    rec.consumer.rebalance("assign", [("t", 0), ("t", 1)])
    rec.source.commit(synchronous=False)
    assert rec.calls("commit") == []  # nothing processed yet
    rec.source.mark_processed([FakeMessage("t", 0, 5), FakeMessage("t", 1, 2)])
    rec.source.mark_processed([FakeMessage("t", 0, 6), FakeMessage("t", 0, 9)])
    rec.source.commit(synchronous=False)
    assert rec.calls("commit") == [("commit", [("t", 0, 10), ("t", 1, 3)], True)]
    rec.source.commit(synchronous=False)  # nothing moved since
    rec.source.mark_processed([FakeMessage("t", 1, 1)])  # older than what is marked
    rec.source.commit(synchronous=False)
    assert len(rec.calls("commit")) == 1
    rec.source.commit(synchronous=True)  # synchronous commits re-send every position
    assert rec.calls("commit")[-1] == ("commit", [("t", 0, 10), ("t", 1, 3)], False)


def test_marking_across_topics_keeps_each_topics_partitions_apart() -> None:
    rec = Recorder(("a", "b"))
    rec.consumer.rebalance("assign", [("a", 0), ("b", 0)])
    batch = [FakeMessage("a", 0, 3), FakeMessage("b", 0, 8), FakeMessage("a", 0, 4)]
    rec.source.mark_processed(batch)
    assert rec.source.positions == {("a", 0): 5, ("b", 0): 9}
    rec.source.commit(synchronous=True, only=[("b", 0), ("c", 9)])
    assert rec.calls("commit") == [("commit", [("b", 0, 9)], False)]


def test_a_pattern_subscription_keeps_the_real_topics_partitions_apart() -> None:
    # One configured entry, many topics (Seldon's per-model topics): offsets are per topic.
    rec = Recorder((r"^seldon\.prod\.model\..*",))
    ins, outs = "seldon.prod.model.fraud.inputs", "seldon.prod.model.fraud.outputs"
    rec.consumer.rebalance("assign", [(ins, 0), (outs, 0)])
    rec.source.mark_processed([FakeMessage(ins, 0, 3), FakeMessage(outs, 0, 8)])
    assert rec.source.positions == {(ins, 0): 4, (outs, 0): 9}


def test_revoke_hands_over_then_commits_synchronously_then_forgets() -> None:
    rec = Recorder()
    rec.consumer.rebalance("assign", [("t", 0), ("t", 1)])
    rec.source.mark_processed([FakeMessage("t", 0, 4), FakeMessage("t", 1, 6)])
    rec.consumer.rebalance("revoke", [("t", 1)])
    assert rec.log[-3:] == [
        ("on_revoke", [("t", 1)]),
        ("commit", [("t", 1, 7)], False),  # committed before the partition is let go
        ("unassign",),
    ]
    assert rec.lag == [("t", 1, None)]  # the lag gauge of a revoked partition is dropped
    assert rec.source.assigned_partitions == {("t", 0)}
    assert rec.source.positions == {("t", 0): 5}
    rec.source.commit(synchronous=False)
    assert rec.calls("commit")[-1] == ("commit", [("t", 0, 5)], True)


def test_lost_partitions_are_handed_over_without_a_commit() -> None:
    rec = Recorder()
    rec.consumer.rebalance("assign", [("t", 0)])
    rec.source.mark_processed([FakeMessage("t", 0, 4)])
    rec.consumer.rebalance("lost", [("t", 0)])
    assert rec.log[-2:] == [("on_revoke", [("t", 0)]), ("unassign",)]
    assert rec.calls("commit") == []
    assert rec.lag == [("t", 0, None)]  # a lost partition's lag series goes too
    assert rec.source.assigned_partitions == set() and rec.source.positions == {}
    rec.source.commit(synchronous=True)
    assert rec.calls("commit") == []


@pytest.mark.parametrize("kind", ["assign", "revoke", "lost"])
def test_a_failing_callback_surfaces_as_rebalance_error(kind: str) -> None:
    rec = Recorder()
    rec.fail = True
    with pytest.raises(RebalanceError, match=f"on_{kind} failed: boom") as info:
        rec.consumer.rebalance(kind, [("t", 0)])
    assert isinstance(info.value.__cause__, ValueError)


def test_pause_pauses_the_whole_assignment_every_time_and_resume_only_once() -> None:
    rec = Recorder()
    rec.consumer.current = [TopicPartition("t", 0)]
    rec.source.resume()  # not paused: nothing to do
    rec.source.pause()
    rec.consumer.current = [TopicPartition("t", 0), TopicPartition("t", 1)]
    rec.source.pause()  # partitions assigned while paused are paused too
    rec.source.resume()
    rec.source.resume()
    assert [e for e in rec.log if e[0] in ("pause", "resume")] == [
        ("pause", [("t", 0, -1001)]),
        ("pause", [("t", 0, -1001), ("t", 1, -1001)]),
        ("resume", [("t", 0, -1001), ("t", 1, -1001)]),
    ]


def _stats(partitions: Mapping[str, Mapping[str, int]], state: str = "UP") -> dict[str, Any]:
    return {
        "brokers": {"b1:9092/1": {"state": state, "nodeid": 1}},
        "topics": {"t": {"partitions": partitions}},
    }


def test_lag_follows_the_assignment_and_ignores_fetch_statistics() -> None:
    rec = Recorder(**{"statistics.interval.ms": 60000})  # the thread never gets to run
    rec.consumer.rebalance("assign", [("t", 0), ("t", 1)])
    rec.source.mark_processed([FakeMessage("t", 0, 59), FakeMessage("t", 1, 9)])
    rec.consumer.watermarks = {("t", 0): 100, ("t", 1): 10}
    # Statistics only speak of fetched partitions; they no longer set the lag.
    rec.consumer.stats(_stats({"0": {"hi_offset": 70, "app_offset": 60}}))
    assert rec.lag == []
    rec.source._lag.measure()
    assert sorted(rec.lag) == [("t", 0, 40), ("t", 1, 0)]
    rec.consumer.rebalance("revoke", [("t", 1)])
    rec.lag.clear()
    rec.source._lag.measure()
    assert rec.lag == [("t", 0, 40)]
    rec.source.close()


def test_bad_stats_are_ignored() -> None:
    rec = Recorder()
    rec.consumer.conf["stats_cb"]("{not json")
    assert rec.connected == [] and rec.lag == []


def test_connection_state_follows_the_brokers_and_is_reported_on_change_only() -> None:
    rec = Recorder()
    rec.consumer.stats(_stats({}))
    rec.consumer.stats(_stats({}))
    rec.consumer.stats(_stats({}, state="DOWN"))
    rec.consumer.conf["error_cb"](KafkaError(KafkaError._ALL_BROKERS_DOWN))
    assert rec.connected == [True, False]


def test_consume_drops_error_events_and_a_data_message_means_connected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = Recorder()
    eof = FakeMessage("t", 0, 3, error=KafkaError(KafkaError._PARTITION_EOF))
    data = [FakeMessage("t", 0, 1), FakeMessage("t", 0, 2)]
    rec.consumer.batches = [[data[0], eof, data[1]], data]
    with caplog.at_level(logging.WARNING, logger="monitor.ingest.source"):
        assert rec.source.consume(500, 0.25) == data
    assert caplog.records == []  # end of partition is not an error worth a line
    assert rec.calls("consume")[0] == ("consume", 500, 0.25)
    assert rec.connected == [True]
    assert rec.source.consume(500, 0.25) == data
    assert rec.source.consume(500, 0.25) == []


def test_a_failed_commit_is_logged_and_retried_with_the_next_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = Recorder()
    rec.consumer.rebalance("assign", [("t", 0)])
    rec.source.mark_processed([FakeMessage("t", 0, 4)])
    rec.consumer.commit_error = KafkaException(KafkaError(KafkaError.REQUEST_TIMED_OUT))
    # The assignment's INFO line is captured too when an earlier test in this worker left
    # the logger at INFO: only what the commit logs counts here.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="monitor.ingest.source"):
        rec.source.commit(synchronous=False)
    assert [r.getMessage() for r in caplog.records] == ["offset commit failed"]
    rec.consumer.commit_error = KafkaException(KafkaError(KafkaError._NO_OFFSET))
    rec.source.commit(synchronous=False)  # nothing to commit on the broker's side: quiet
    assert len(caplog.records) == 1
    rec.consumer.commit_error = None
    rec.source.commit(synchronous=False)
    assert rec.calls("commit") == [("commit", [("t", 0, 5)], True)]


def test_close_commits_synchronously_then_closes() -> None:
    rec = Recorder()
    rec.consumer.rebalance("assign", [("t", 0)])
    rec.source.mark_processed([FakeMessage("t", 0, 0)])
    rec.source.close()
    assert rec.log[-6:] == [
        ("commit", [("t", 0, 1)], False),
        # The partitions go back through an ordinary revocation before the close, never
        # inside it (a callback run by close() can freeze the process; see leave_group).
        ("unsubscribe",),
        ("on_revoke", [("t", 0)]),
        ("commit", [("t", 0, 1)], False),
        ("unassign",),
        ("close",),
    ]


def test_a_close_that_does_not_finish_is_abandoned_after_a_bound(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(membership, "_REVOKE_SECONDS", 0.3)
    monkeypatch.setattr(membership, "_CLOSE_SECONDS", 0.3)
    rec = Recorder()
    rec.consumer.rebalance("assign", [("t", 0)])
    rec.consumer.answers_unsubscribe = False  # the revocation never comes
    rec.consumer.close_blocks.clear()  # and the client's close never returns
    started = time.monotonic()
    rec.source.close()
    assert time.monotonic() - started < 5.0
    assert rec.consumer.polls >= 2 and rec.calls("close") == [("close",)]
    assert "did not close in time" in caplog.text
    rec.consumer.close_blocks.set()


def test_message_accessors_read_every_message() -> None:
    batch = [
        FakeMessage("t", 0, 0, value=b"a"),
        FakeMessage("t", 0, 1, value=None, timestamp=(0, 0)),
    ]
    assert message_values(batch) == [b"a", None]
    seconds = message_seconds(batch)
    assert seconds[0] == 1_764_150_000.25 and seconds[1] > 1_700_000_000  # none: now


def test_header_version_reads_the_version_header_in_either_form() -> None:
    assert header_version(FakeMessage("t", 0, 0, headers=[("version", b"v2")])) == "v2"
    assert header_version(FakeMessage("t", 0, 0, headers={"version": "v3"})) == "v3"
    assert header_version(FakeMessage("t", 0, 0, headers=[("version", b"\xff")])) is None
    assert header_version(FakeMessage("t", 0, 0)) is None


def test_a_batch_is_gathered_in_chunks_until_the_fetched_messages_run_out() -> None:
    rec = Recorder()
    chunk = source_module.CONSUME_CHUNK
    msgs = [FakeMessage("t", 0, i) for i in range(2 * chunk + 7)]
    later = [FakeMessage("t", 0, 10**6)]
    rec.consumer.batches = [msgs[:chunk], msgs[chunk : 2 * chunk], msgs[2 * chunk :], later]
    assert rec.source.consume(5 * chunk, 0.25) == msgs
    # Only the first call waits; the rest take what is fetched already.
    assert rec.calls("consume") == [
        ("consume", chunk, 0.25),
        ("consume", chunk, 0),
        ("consume", chunk, 0),
    ]
    assert rec.source.consume(5 * chunk, 0.25) == later


def test_a_gathered_batch_stops_at_max_messages() -> None:
    rec = Recorder()
    chunk = source_module.CONSUME_CHUNK
    msgs = [FakeMessage("t", 0, i) for i in range(chunk + chunk // 2)]
    rec.consumer.batches = [msgs[:chunk], msgs[chunk:], [FakeMessage("t", 0, 10**6)]]
    assert rec.source.consume(chunk + chunk // 2, 0.25) == msgs
    assert rec.calls("consume") == [("consume", chunk, 0.25), ("consume", chunk // 2, 0)]


def test_a_rebalance_inside_a_chunk_ends_the_batch() -> None:
    """A batch never spans an assignment change: the callbacks (which drain and commit
    the batches in flight) see every message consumed before them accounted for."""
    rec = Recorder()
    rec.consumer.rebalance("assign", [("t", 0)])
    chunk = source_module.CONSUME_CHUNK
    msgs = [FakeMessage("t", 0, i) for i in range(3 * chunk)]
    rec.consumer.batches = [msgs[:chunk], msgs[chunk : 2 * chunk], msgs[2 * chunk :]]
    rec.consumer.during_consume = [
        lambda: None,
        lambda: rec.consumer.rebalance("assign", [("t", 1)]),
    ]
    assert rec.source.consume(5 * chunk, 0.25) == msgs[: 2 * chunk]
    assert len(rec.calls("consume")) == 2
    assert rec.source.consume(5 * chunk, 0.25) == msgs[2 * chunk :]


def test_messages_of_a_partition_revoked_while_reading_are_left_to_its_new_owner() -> None:
    rec = Recorder()
    rec.consumer.rebalance("assign", [("t", 0), ("t", 1)])
    msgs = [FakeMessage("t", 0, 5), FakeMessage("t", 1, 7), FakeMessage("t", 0, 6)]
    rec.consumer.batches = [msgs]
    # The revocation runs inside the consume call that hands out the messages read before it.
    rec.consumer.during_consume = [lambda: rec.consumer.rebalance("revoke", [("t", 1)])]
    assert rec.source.consume(100, 0.25) == [msgs[0], msgs[2]]


class Unread(FakeMessage):
    """A message whose partition and offset must not be read (taken from the client)."""

    def partition(self) -> int | None:
        raise AssertionError("partition() read")

    def offset(self) -> int | None:
        raise AssertionError("offset() read")


def test_a_consumed_batch_is_marked_from_the_clients_positions_not_its_messages() -> None:
    rec = Recorder()
    rec.consumer.rebalance("assign", [("t", 0), ("t", 1), ("t", 2)])
    rec.consumer.batches = [[Unread("t", 0, 5), Unread("t", 1, 2), Unread("t", 0, 6)]]
    batch = rec.source.consume(500, 0.25)
    assert batch.read_to == {("t", 0): 7, ("t", 1): 3}  # t/2 handed nothing out: absent
    rec.source.mark_processed(batch)
    assert rec.source.positions == {("t", 0): 7, ("t", 1): 3}
    rec.source.commit(synchronous=False)
    assert rec.calls("commit") == [("commit", [("t", 0, 7), ("t", 1, 3)], True)]


def test_positions_are_read_right_after_the_batchs_own_consume_calls() -> None:
    # The loop consumes the next batch before it marks this one: what the client handed
    # out since must not be marked with it.
    rec = Recorder()
    rec.consumer.rebalance("assign", [("t", 0)])
    rec.consumer.batches = [[Unread("t", 0, 1)], [Unread("t", 0, 2), Unread("t", 0, 3)]]
    first = rec.source.consume(500, 0.25)
    second = rec.source.consume(500, 0.25)
    rec.source.mark_processed(first)
    assert rec.source.positions == {("t", 0): 2}
    rec.source.mark_processed(second)
    assert rec.source.positions == {("t", 0): 4}


def test_a_seek_on_assign_marks_nothing_until_a_message_is_consumed() -> None:
    rec = Recorder(seek={("t", 0): 40, ("t", 1): 10})
    rec.consumer.rebalance("assign", [("t", 0), ("t", 1)])
    rec.consumer.batches = [[Unread("t", 1, 10)]]
    batch = rec.source.consume(500, 0.25)
    assert batch.read_to == {("t", 1): 11}
    rec.source.mark_processed(batch)
    assert rec.source.positions == {("t", 0): 40, ("t", 1): 11}  # t/0: the seek's own


def test_a_partition_revoked_before_its_batch_is_marked_is_not_marked_again() -> None:
    rec = Recorder()
    rec.consumer.rebalance("assign", [("t", 0), ("t", 1)])
    rec.consumer.batches = [[Unread("t", 0, 3), Unread("t", 1, 8)]]
    batch = rec.source.consume(500, 0.25)
    rec.consumer.rebalance("revoke", [("t", 1)])
    rec.source.mark_processed(batch)
    assert rec.source.positions == {("t", 0): 4}
    rec.source.commit(synchronous=False)
    assert rec.calls("commit") == [("commit", [("t", 0, 4)], True)]  # never t/1 again


def test_without_the_clients_positions_the_messages_are_read() -> None:
    rec = Recorder()
    rec.consumer.rebalance("assign", [("t", 0)])
    rec.consumer.position_error = KafkaException(KafkaError(KafkaError._STATE))
    rec.consumer.batches = [[FakeMessage("t", 0, 3), FakeMessage("t", 0, 4)]]
    batch = rec.source.consume(500, 0.25)
    assert batch.read_to is None
    rec.source.mark_processed(batch)
    assert rec.source.positions == {("t", 0): 5}


def test_a_batch_with_error_events_keeps_its_positions() -> None:
    rec = Recorder()
    rec.consumer.rebalance("assign", [("t", 0)])
    eof = FakeMessage("t", 0, 9, error=KafkaError(KafkaError._PARTITION_EOF))
    rec.consumer.batches = [[Unread("t", 0, 7), eof]]
    batch = rec.source.consume(500, 0.25)
    assert len(batch) == 1 and batch.read_to == {("t", 0): 8}


def test_a_partition_revoked_after_its_batch_was_read_is_not_marked() -> None:
    rec = Recorder()
    rec.consumer.rebalance("assign", [("t", 0), ("t", 1)])
    batch = [FakeMessage("t", 0, 4), FakeMessage("t", 1, 6)]  # read before the revoke
    rec.consumer.rebalance("revoke", [("t", 1)])
    rec.source.mark_processed(batch)
    assert rec.source.positions == {("t", 0): 5}
    rec.source.commit(synchronous=True)  # nothing of the new owner's partition
    assert rec.calls("commit")[-1] == ("commit", [("t", 0, 5)], False)
