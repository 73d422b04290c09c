"""What a format decoder is handed: one batch of one topic's messages.

Values and Kafka timestamps as the native decoder takes them, plus headers and topic
names, read only by the formats that need them (the accessors are functions, so a batch
of the native format never pays for a pass over its headers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from monitor.ingest.decode.schema import KafkaTimes

__all__ = ["Headers", "MessageBatch", "header_text"]

#: A message's headers as confluent-kafka gives them.
Headers = Sequence[tuple[str, str | bytes | None]] | dict[str, str | bytes | None] | None


@dataclass(frozen=True, slots=True)
class MessageBatch:
    """A batch of messages: values, Kafka timestamps, and (lazily) headers and topics."""

    payloads: Sequence[bytes | None]
    kafka_ts: KafkaTimes
    headers: Callable[[], Sequence[Headers]] | None = None
    topics: Callable[[], Sequence[str | None]] | None = None

    def all_headers(self) -> Sequence[Headers]:
        return self.headers() if self.headers is not None else [None] * len(self.payloads)

    def all_topics(self) -> Sequence[str | None]:
        return self.topics() if self.topics is not None else [None] * len(self.payloads)

    def subset(self, indices: Sequence[int], kafka_ts: np.ndarray) -> MessageBatch:
        """The messages at ``indices``, in that order (``kafka_ts``: the batch's times)."""
        rows = list(indices)
        headers, topics = self.headers, self.topics
        return MessageBatch(
            [self.payloads[i] for i in rows],
            kafka_ts[rows],
            None if headers is None else (lambda: [headers()[i] for i in rows]),
            None if topics is None else (lambda: [topics()[i] for i in rows]),
        )


def header_text(headers: Headers, name: str) -> str | None:
    """The first header called ``name`` (any case) as UTF-8 text, or ``None``."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, dict) else headers
    for key, value in pairs:
        if value is None or key.lower() != name:
            continue
        if isinstance(value, bytes):
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                return None
        return value
    return None
