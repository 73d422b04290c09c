"""Consumer lag of every assigned partition, measured on a timer, paused partitions too.

librdkafka's statistics carry a high watermark only for partitions it fetches from, so a
consumer paused by failing checkpoints (or stuck behind a slow batch) reported the lag of
its last fetch while the real lag grew by tens of thousands. :class:`LagProbe` asks the
broker instead (``get_watermark_offsets``: ListOffsets) every ``interval_seconds`` and
reports ``high - position``, the position being what the daemon has accounted for (the
next offset it would commit). It runs on the consume loop's thread, between consume calls
(:meth:`LagProbe.poll`), which keep coming while the consumer is paused: a thread of its
own calling into the consumer concurrently with ``consume()`` stopped answering under
load. One round costs a local round trip per partition, once per interval.

The high watermark is the larger of ListOffsets' answer and the cached value of the last
fetch: both are exact on Apache Kafka, and on brokers whose ListOffsets answers the base
offset of the last record batch (the test broker, Tansu) the fetch value is exact while
fetching and ListOffsets still a close lower bound, which keeps growing, while paused.

Partitions revoked or lost are forgotten under the same lock that guards reports, so a
measurement in flight never brings back a series the source just removed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaException, TopicPartition

__all__ = ["LagProbe"]

logger = logging.getLogger(__name__)

Pair = tuple[str, int]
LagReport = Callable[[str, int, "int | None"], None]


class LagProbe:
    """Measures the lag of the tracked partitions every ``interval_seconds``.

    ``consumer`` is the source's confluent-kafka consumer (only ``get_watermark_offsets``
    and ``committed`` are used);
    ``position_of`` returns the accounted-for position of a partition, or ``None``;
    ``on_lag(topic, partition, lag)`` receives each measurement and ``None`` when a
    partition is forgotten. Call :meth:`poll` from the consume loop and :meth:`stop` before
    closing the consumer.
    """

    def __init__(
        self,
        consumer: Any,
        *,
        interval_seconds: float,
        position_of: Callable[[Pair], int | None],
        on_lag: LagReport,
        timeout_seconds: float = 2.0,
    ) -> None:
        self._consumer = consumer
        self._interval = interval_seconds
        self._timeout = timeout_seconds
        self._position_of = position_of
        self._on_lag = on_lag
        self._lock = threading.Lock()
        self._tracked: set[Pair] = set()
        self._stopping = threading.Event()
        self._last = time.monotonic()
        self._failing = False

    def track(self, pairs: Iterable[Pair]) -> None:
        """Measure these partitions from now on (an assignment)."""
        with self._lock:
            self._tracked.update(pairs)

    def forget(self, pairs: Iterable[Pair]) -> None:
        """Stop measuring these partitions and drop their series (revoked or lost)."""
        with self._lock:
            for pair in pairs:
                self._tracked.discard(pair)
                self._on_lag(pair[0], pair[1], None)

    def stop(self) -> None:
        """No further rounds (before the consumer is closed)."""
        self._stopping.set()

    def poll(self) -> None:
        """A round when one is due; called by the consume loop between batches."""
        now = time.monotonic()
        if self._stopping.is_set() or not self._tracked or now - self._last < self._interval:
            return
        self._last = now
        try:
            self.measure()
            self._failing = False
        except Exception as exc:  # the lag must never stop the loop or stop being measured
            if not self._failing:  # once per episode, not every interval
                logger.warning("consumer lag not measured", extra={"error": repr(exc)})
            self._failing = True

    def measure(self) -> None:
        """One round over the tracked partitions (the thread's step; tests call it)."""
        with self._lock:
            pairs = sorted(self._tracked)
        lags: dict[Pair, int] = {}
        for pair in pairs:
            if self._stopping.is_set():
                return
            high = self._high(pair)
            if high is None:
                break  # the broker does not answer: keep the last values, try next round
            position = self._position(pair)
            if high >= 0 and position is not None and position >= 0:
                lags[pair] = max(0, high - position)
        with self._lock:
            for pair, lag in lags.items():
                if pair in self._tracked:
                    self._on_lag(pair[0], pair[1], lag)

    def _high(self, pair: Pair) -> int | None:
        tp = TopicPartition(pair[0], pair[1])
        try:
            listed = self._consumer.get_watermark_offsets(tp, timeout=self._timeout)
        except KafkaException:
            return None
        if listed is None:  # timed out
            return None
        try:
            fetched = self._consumer.get_watermark_offsets(tp, cached=True)
        except KafkaException:
            fetched = None
        high = int(listed[1])
        if fetched is not None:
            high = max(high, int(fetched[1]))
        return high

    def _position(self, pair: Pair) -> int | None:
        accounted = self._position_of(pair)
        if accounted is not None:
            return accounted
        # Nothing accounted for since the assignment: where the group resumes.
        tp = TopicPartition(pair[0], pair[1])
        try:
            [committed] = self._consumer.committed([tp], timeout=self._timeout)
        except KafkaException:
            return None
        offset = int(committed.offset)
        return offset if offset >= 0 else None
