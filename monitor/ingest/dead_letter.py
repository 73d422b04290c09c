"""The dead-letter topic: copies of rejected messages, with why they were rejected."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from monitor.ingest.client_log import LIBRDKAFKA_LOGGER

__all__ = ["DeadLetterSink"]

# The logger name is part of every log line: it stays the one from before this module
# was split out of monitor.ingest.source.
logger = logging.getLogger("monitor.ingest.source")


class DeadLetterSink:
    """Copies rejected messages to a topic, with the reason in headers."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        extra: Mapping[str, Any] | None = None,
        on_result: Callable[[bool], None] | None = None,
    ) -> None:
        conf: dict[str, Any] = {"linger.ms": 50}
        conf.update(extra or {})
        conf.update(
            {
                "bootstrap.servers": bootstrap_servers,
                "logger": LIBRDKAFKA_LOGGER,
            }
        )
        self.topic = topic
        self._on_result = on_result
        self.producer = Producer(conf)

    def _delivered(self, err: KafkaError | None, _msg: Any) -> None:
        if self._on_result:
            self._on_result(err is None)
        if err is not None:
            logger.warning("dead-letter copy failed", extra={"error": err.str()})

    def send(
        self, value: bytes | None, reason: str, detail: str, source: tuple[str, int, int]
    ) -> None:
        topic, partition, offset = source
        headers: list[tuple[str, str | bytes | None]] = [
            ("driftmon-reason", reason.encode()),
            ("driftmon-detail", detail[:512].encode("utf-8", "replace")),
            ("driftmon-source", f"{topic}/{partition}/{offset}".encode()),
        ]
        try:
            self.producer.produce(
                self.topic, value=value, headers=headers, on_delivery=self._delivered
            )
        except BufferError:
            self.producer.poll(1.0)
            self.producer.produce(
                self.topic, value=value, headers=headers, on_delivery=self._delivered
            )
        except KafkaException as exc:
            logger.warning("dead-letter produce failed", extra={"error": str(exc)})
            if self._on_result:
                self._on_result(False)
        self.producer.poll(0)

    def flush(self, timeout_seconds: float) -> int:
        return int(self.producer.flush(timeout_seconds))
