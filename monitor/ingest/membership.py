"""The consumer's group membership: rebalances applied by their callbacks, messages of
partitions revoked mid-read, and leaving the group at shutdown without freezing.

confluent-kafka holds the GIL in its (un)assignment calls; inside ``consumer.close()``
librdkafka can leave such a call unanswered for ever (librdkafka issue 4041), and then no
thread of the process runs again. Everything here keeps rebalances out of ``close()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from monitor.ingest.messages import Message

__all__ = ["apply_rebalance", "fmt_partitions", "leave_group", "still_assigned"]

# KafkaSource's logger: these lines are about its consumer.
logger = logging.getLogger("monitor.ingest.source")

# Bounds on leaving the group at shutdown (see leave_group).
_REVOKE_SECONDS = 10.0
_CLOSE_SECONDS = 15.0


def apply_rebalance(
    consumer: Consumer, cooperative: bool, kind: str, partitions: list[TopicPartition]
) -> None:
    """Apply a rebalance in its callback, always, instead of leaving it to the client.

    When a callback does not (un)assign, confluent-kafka does it after the callback and
    first asks librdkafka for the rebalance protocol, holding the GIL. Inside
    ``consumer.close()`` that question can go unanswered for ever (librdkafka issue 4041),
    freezing every thread of the process; a scale-out test caught it one close in eight.
    """
    if kind == "assign":
        if cooperative:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)
    elif cooperative:
        consumer.incremental_unassign(partitions)
    else:
        consumer.unassign()


def still_assigned(batch: list[Message], assigned: set[tuple[str, int]]) -> list[Message]:
    """The batch without data messages of partitions revoked or lost while it was read.

    A rebalance callback runs inside the consume call that returns the messages read
    before it. A revoked partition's state was handed over in the callback and its
    offsets are not ours to commit: its new owner reads those messages from the last
    commit, so counting them here too would count them twice (and, with scale-out, could
    send progress ahead of the rows the new owner forwards).
    """
    kept = [m for m in batch if m.error() is not None or (m.topic(), m.partition()) in assigned]
    if len(kept) != len(batch):
        logger.info(
            "messages of revoked partitions left to their new owner",
            extra={"messages": len(batch) - len(kept)},
        )
    return kept


def leave_group(consumer: Consumer, assigned: set[tuple[str, int]]) -> None:
    """Hand the partitions back through an ordinary rebalance, then close.

    A rebalance callback run inside ``consumer.close()`` can wait for ever on librdkafka
    while confluent-kafka holds the GIL (its (un)assignment calls do not release it),
    freezing the whole process; seen in one close in ten on the test broker. Unsubscribing
    first revokes the partitions in ``poll()``, where the same calls are answered, so the
    close has nothing left to revoke (``assigned`` is the source's live set, emptied by
    its revoke callback). A close that still does not finish is abandoned after a bound
    (the group drops the member after ``session.timeout.ms``) instead of holding up the
    shutdown.
    """
    try:
        if assigned:
            consumer.unsubscribe()
            deadline = time.monotonic() + _REVOKE_SECONDS
            while assigned and time.monotonic() < deadline:
                consumer.poll(0.1)  # serves the revocation; a message read is dropped
    except (KafkaException, RuntimeError) as exc:
        logger.warning("leaving the group: %s", exc)
    closer = threading.Thread(target=consumer.close, name="driftmon-consumer-close")
    closer.daemon = True
    closer.start()
    closer.join(_CLOSE_SECONDS)
    if closer.is_alive():
        logger.warning(
            "the consumer did not close in time; the group drops it after its session timeout",
            extra={"seconds": _CLOSE_SECONDS, "still_assigned": fmt_partitions(assigned)},
        )


def fmt_partitions(pairs: Iterable[tuple[str, int]]) -> str:
    return ",".join(f"{t}[{p}]" for t, p in sorted(pairs))
