"""Topic ids from the broker, so a deleted and recreated topic is never read as the old one.

A checkpoint's offsets belong to one incarnation of a topic. When the topic is deleted and
created again under the same name (while driftmon was stopped), its offsets start over,
and seeking to the old checkpoint offset silently skips the new topic's first events.
Kafka gives every incarnation its own id (``DescribeTopics``); checkpoints keep the id
next to the offsets, and the recovery compares them on assignment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient

__all__ = ["TopicIds", "admin_config"]

logger = logging.getLogger(__name__)

# Options a client of any type needs to reach the same brokers the consumer reaches.
_SHARED_PREFIXES = ("security.", "sasl.", "ssl.", "socket.", "client.", "broker.")


def admin_config(bootstrap_servers: str, consumer: Mapping[str, Any]) -> dict[str, Any]:
    """The admin client's config: the bootstrap servers and the consumer's connection
    and security options (not its consumer-only ones, which librdkafka would warn about)."""
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap_servers}
    conf.update((k, v) for k, v in consumer.items() if k.startswith(_SHARED_PREFIXES))
    return conf


class TopicIds:
    """Looks topic ids up; an id the broker does not give is left out (no check then)."""

    def __init__(
        self,
        conf: Mapping[str, Any],
        *,
        timeout_seconds: float = 5.0,
        admin_factory: Callable[[dict[str, Any]], Any] = AdminClient,
    ) -> None:
        self._conf = dict(conf)
        self._timeout = timeout_seconds
        self._factory = admin_factory
        self._admin: Any = None

    def lookup(self, topics: Iterable[str]) -> dict[str, str]:
        """``topic -> id`` for the topics the broker describes in time."""
        names = sorted(set(topics))
        if not names:
            return {}
        try:
            if self._admin is None:
                self._admin = self._factory(self._conf)
            futures = self._admin.describe_topics(
                TopicCollection(names), request_timeout=self._timeout
            )
        except (KafkaException, ValueError, TypeError) as exc:
            logger.warning("topic ids unavailable: %s", exc)
            return {}
        ids: dict[str, str] = {}
        for name, future in futures.items():
            try:
                description = future.result(timeout=self._timeout)
            except Exception as exc:
                logger.debug("no topic id for %s: %s", name, exc)
                continue
            topic_id = getattr(description, "topic_id", None)
            if topic_id is not None and str(topic_id):
                ids[name] = str(topic_id)
        return ids
