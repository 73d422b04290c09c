"""LagProbe: lag of every tracked partition from ListOffsets, paused or not."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from monitor.ingest.lag import LagProbe

Pair = tuple[str, int]


class FakeConsumer:
    """ListOffsets answers, the last fetch's cached watermark and committed offsets."""

    def __init__(self) -> None:
        self.listed: dict[Pair, int] = {}
        self.fetched: dict[Pair, int] = {}
        self.committed_offsets: dict[Pair, int] = {}
        self.down = False
        self.during_query: Callable[[], None] = lambda: None

    def get_watermark_offsets(
        self, tp: TopicPartition, timeout: float | None = None, cached: bool = False
    ) -> tuple[int, int] | None:
        pair = (tp.topic, tp.partition)
        if cached:
            return (0, self.fetched.get(pair, -1001))
        self.during_query()
        if self.down:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        return (0, self.listed[pair])

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [
            TopicPartition(
                p.topic, p.partition, self.committed_offsets.get((p.topic, p.partition), -1001)
            )
            for p in partitions
        ]


def _probe(
    consumer: FakeConsumer, positions: dict[Pair, int], interval: float = 60.0
) -> tuple[LagProbe, list[tuple[str, int, int | None]]]:
    seen: list[tuple[str, int, int | None]] = []
    probe = LagProbe(
        consumer,
        interval_seconds=interval,
        position_of=positions.get,
        on_lag=lambda t, p, n: seen.append((t, p, n)),
    )
    return probe, seen


def test_a_paused_partition_lag_keeps_growing_with_the_broker_high_watermark() -> None:
    consumer = FakeConsumer()
    positions = {("t", 0): 1000}
    probe, seen = _probe(consumer, positions)
    probe.track([("t", 0)])
    # Paused: the last fetch saw 1,200; the broker's log end moves on.
    consumer.fetched[("t", 0)] = 1200
    for end in (1200, 5000, 92_601):
        consumer.listed[("t", 0)] = end
        probe.measure()
    assert seen == [("t", 0, 200), ("t", 0, 4000), ("t", 0, 91_601)]
    probe.stop()


def test_the_fetch_watermark_wins_when_list_offsets_lags_behind() -> None:
    # A broker answering ListOffsets with the last batch's base offset + 1 (Tansu).
    consumer = FakeConsumer()
    consumer.listed[("t", 0)] = 1
    consumer.fetched[("t", 0)] = 1000
    probe, seen = _probe(consumer, {("t", 0): 400})
    probe.track([("t", 0)])
    probe.measure()
    assert seen == [("t", 0, 600)]
    probe.stop()


def test_without_an_accounted_position_the_committed_offset_is_used() -> None:
    consumer = FakeConsumer()
    consumer.listed = {("t", 0): 50, ("t", 1): 50}
    consumer.committed_offsets = {("t", 0): 45}  # t/1: never committed, no position
    probe, seen = _probe(consumer, {})
    probe.track([("t", 0), ("t", 1)])
    probe.measure()
    assert seen == [("t", 0, 5)]
    probe.stop()


def test_an_unreachable_broker_keeps_the_last_values() -> None:
    consumer = FakeConsumer()
    consumer.listed = {("t", 0): 10, ("t", 1): 10}
    probe, seen = _probe(consumer, {("t", 0): 0, ("t", 1): 0})
    probe.track([("t", 0), ("t", 1)])
    consumer.down = True
    probe.measure()
    assert seen == []


def test_a_partition_forgotten_during_a_round_is_not_reported_again() -> None:
    consumer = FakeConsumer()
    consumer.listed = {("t", 0): 10}
    probe, seen = _probe(consumer, {("t", 0): 0})
    probe.track([("t", 0)])
    # The loop thread's revocation lands while the probe waits for the broker.
    consumer.during_query = lambda: probe.forget([("t", 0)])
    probe.measure()
    assert seen == [("t", 0, None)]


def test_poll_measures_once_per_interval_and_not_after_stop() -> None:
    consumer = FakeConsumer()
    consumer.listed = {("t", 0): 30}
    probe, seen = _probe(consumer, {("t", 0): 10}, interval=0.05)
    probe.track([("t", 0)])
    probe.poll()
    assert seen == []  # not due yet: the interval runs from construction
    time.sleep(0.06)
    probe.poll()
    probe.poll()  # the same interval: no second round
    assert seen == [("t", 0, 20)]
    time.sleep(0.06)
    probe.stop()
    probe.poll()
    assert seen == [("t", 0, 20)]  # stopped: no more rounds


def test_a_failing_round_is_logged_once_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = FakeConsumer()
    probe, _ = _probe(consumer, {("t", 0): 0}, interval=0.0)
    probe.track([("t", 0)])

    def broken() -> None:
        raise RuntimeError("boom")

    probe.measure = broken  # type: ignore[method-assign]
    probe.poll()
    probe.poll()
    assert [r.getMessage() for r in caplog.records].count("consumer lag not measured") == 1
