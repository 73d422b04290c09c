"""What driftmon reads of a Kafka message: the ``Message`` protocol and batch accessors.

The accessors read one attribute of every message of a batch with C-level callables, and
:func:`header_version` reads the model-version header. Nothing here needs a broker or
``confluent_kafka`` at run time, so tests build messages of their own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from itertools import chain
from operator import methodcaller
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from confluent_kafka import KafkaError

__all__ = [
    "VERSION_HEADER",
    "Message",
    "header_version",
    "last_per_partition",
    "message_errors",
    "message_headers",
    "message_partitions",
    "message_seconds",
    "message_topics",
    "message_values",
]

#: Kafka message header carrying the model version of events without a version field.
VERSION_HEADER = "version"


class Message(Protocol):
    """The parts of ``confluent_kafka.Message`` driftmon uses (tests cannot build real ones)."""

    def error(self) -> KafkaError | None: ...
    def value(self) -> bytes | None: ...
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def timestamp(self) -> tuple[int, int]: ...
    def headers(
        self,
    ) -> dict[str, str | bytes | None] | list[tuple[str, str | bytes | None]] | None: ...


# Per-message accessors as C-level callables: ``map`` over a batch of tens of thousands of
# messages then costs no Python bytecode per message.
_ERROR = methodcaller("error")
_VALUE = methodcaller("value")
_TOPIC = methodcaller("topic")
_PARTITION = methodcaller("partition")
_TIMESTAMP = methodcaller("timestamp")
_HEADERS = methodcaller("headers")


def message_errors(messages: Sequence[Message]) -> list[KafkaError | None]:
    """The error of every message (``None`` for data messages)."""
    return list(map(_ERROR, messages))


def message_values(messages: Sequence[Message]) -> list[bytes | None]:
    """The payload of every message."""
    return list(map(_VALUE, messages))


def message_headers(
    messages: Sequence[Message],
) -> list[dict[str, str | bytes | None] | list[tuple[str, str | bytes | None]] | None]:
    """The headers of every message (the formats of model servers read them)."""
    return list(map(_HEADERS, messages))


def message_topics(messages: Sequence[Message]) -> list[str | None]:
    return list(map(_TOPIC, messages))


def message_partitions(messages: Sequence[Message]) -> np.ndarray:
    """Partition of every message, int64."""
    return np.fromiter(map(_PARTITION, messages), dtype=np.int64, count=len(messages))


def message_seconds(messages: Sequence[Message]) -> np.ndarray:
    """Kafka timestamp of every message in epoch seconds; now where it has none."""
    n = len(messages)
    stamps = np.fromiter(
        chain.from_iterable(map(_TIMESTAMP, messages)), dtype=np.float64, count=2 * n
    ).reshape(n, 2)
    kind, millis = stamps[:, 0], stamps[:, 1]
    return np.where((kind != 0) & (millis > 0), millis / 1000.0, time.time())


def last_per_partition(messages: Sequence[Message], one_topic: bool) -> list[Message]:
    """The last message of each partition of a batch (a batch holds each partition's
    messages in offset order), found with C-level passes, not a Python step per message."""
    if one_topic:
        partitions = message_partitions(messages)
        n = len(partitions)
        _, from_end = np.unique(partitions[::-1], return_index=True)
        return [messages[n - 1 - i] for i in from_end.tolist()]
    pairs = zip(map(_TOPIC, messages), map(_PARTITION, messages), strict=True)
    return list(dict(zip(pairs, messages, strict=True)).values())


def header_version(msg: Message) -> str | None:
    """The ``version`` header of a message (UTF-8), or ``None``."""
    headers = msg.headers()
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, dict) else headers
    for key, value in pairs:
        if key != VERSION_HEADER or value is None:
            continue
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                return None
        return value or None
    return None
