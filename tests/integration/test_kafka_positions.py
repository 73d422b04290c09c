"""KafkaSource marks batches from the client's positions: what librdkafka does on a real broker.

The unit tests pin the bookkeeping against a fake client that imitates librdkafka; these
check the imitation: a position is the offset after the last message handed out, read
right after a batch's consume() calls it excludes what the client hands out later, and a
seek to a checkpoint's offset on assignment marks nothing by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from monitor.ingest.source import Batch, KafkaSource
from tests.support.kafka import consumer_config, produce

pytestmark = pytest.mark.integration

Pair = tuple[str, int]


def _source(
    bootstrap: str, topic: str, seek: dict[Pair, int] | None = None
) -> tuple[KafkaSource, list[list[Pair]]]:
    assigned: list[list[Pair]] = []

    def on_assign(pairs: list[Pair]) -> dict[Pair, int] | None:
        assigned.append(pairs)
        return seek

    conf = consumer_config(bootstrap)
    extra = {k: v for k, v in conf.items() if k not in ("bootstrap.servers", "group.id")}
    return KafkaSource(bootstrap, conf["group.id"], [topic], extra, on_assign=on_assign), assigned


def _first_batch(source: KafkaSource, max_messages: int, deadline: float = 30.0) -> Batch:
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        batch = source.consume(max_messages, 0.5)
        if batch:
            return batch
    raise AssertionError("no message consumed")


def _lasts(batch: Batch) -> dict[Pair, int]:
    out: dict[Pair, int] = {}
    for msg in batch:
        out[(msg.topic() or "", msg.partition() or 0)] = (msg.offset() or 0) + 1
    return out


def test_positions_after_a_batch_are_its_last_offsets_and_exclude_later_batches(
    kafka_bootstrap: str, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=2)
    for partition in (0, 1):
        produce(kafka_bootstrap, topic, [b"{}"] * 30, partition=partition)
    source, _ = _source(kafka_bootstrap, topic)
    try:
        first = _first_batch(source, 7)
        second = source.consume(7, 5.0)
        assert first.read_to is not None and second.read_to is not None
        assert first.read_to == _lasts(first)  # the batch's own partitions, nothing newer
        assert second and second.read_to == {**_lasts(first), **_lasts(second)}
        source.mark_processed(first)
        assert source.positions == _lasts(first)
        source.mark_processed(second)
        source.commit(synchronous=True)
        committed = source.consumer.committed(source.consumer.assignment(), timeout=10)
        got = {(tp.topic, tp.partition): tp.offset for tp in committed if tp.offset >= 0}
        assert got == {**_lasts(first), **_lasts(second)}
    finally:
        source.close()


def test_a_seek_on_assignment_marks_nothing_until_a_message_is_consumed(
    kafka_bootstrap: str, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=2)
    produce(kafka_bootstrap, topic, [b"{}"] * 20, partition=0)
    produce(kafka_bootstrap, topic, [b"{}"] * 20, partition=1)
    # Partition 1 resumes at its end, as from a checkpoint that covers all of it.
    source, assigned = _source(kafka_bootstrap, topic, seek={(topic, 0): 5, (topic, 1): 20})
    try:
        batch = _first_batch(source, 100)
        assert assigned and batch.read_to is not None
        assert {(m.partition(), m.offset()) for m in batch} <= {(0, o) for o in range(5, 20)}
        assert (topic, 1) not in batch.read_to  # the seek alone gives no position
        source.mark_processed(batch)
        assert source.positions == {(topic, 1): 20, **_lasts(batch)}
    finally:
        source.leave()
