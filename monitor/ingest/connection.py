"""The broker connection and the subscribed topics, in driftmon's words.

librdkafka reports an unreachable broker as a transport error about every 50 ms (and
a non-Kafka port as ``probably due to broker version < 0.10``), and a subscribed topic
that does not exist as one consumer error. :class:`BrokerWatch` turns both into the
readiness conditions ``kafka_connected`` and ``kafka_topics`` with a specific reason,
and logs one line per episode naming the config key to fix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from monitor.ingest.client_log import forget_connection_failures, last_connection_failure

__all__ = ["BrokerWatch", "ConditionReport", "unreachable_reason"]

# The source's logger: these lines are about the consumer, whoever words them.
logger = logging.getLogger("monitor.ingest.source")

# (readiness condition, holds, detail when it does not): ``Health.set``'s signature.
ConditionReport = Callable[[str, bool, str], None]

# librdkafka's wording of a failed connection → what a person should read instead.
_REASONS = (
    ("broker version < 0.10", "the server there does not speak the Kafka protocol"),
    ("ApiVersion", "the server there does not speak the Kafka protocol"),
    ("APIVERSION_QUERY", "the server there does not speak the Kafka protocol"),
    ("Connection refused", "connection refused"),
    ("Failed to resolve", "host name not resolved"),
    ("Connection timed out", "connection timed out"),
    ("timed out", "connection timed out"),
    ("SSL handshake failed", "TLS handshake failed"),
    ("Authentication", "authentication failed"),
)
_NOT_KAFKA = "the server there does not speak the Kafka protocol"


def unreachable_reason(error_text: str | None) -> str:
    """Why a connection failed, from librdkafka's error text (its own text if unknown)."""
    if not error_text:
        return "no connection to any broker"
    for needle, reason in _REASONS:
        if needle.lower() in error_text.lower():
            return reason
    # Unknown wording: librdkafka's text, without its "host:port/id: " prefix.
    return error_text.split(": ", 1)[-1]


class BrokerWatch:
    """Connection and topic state of one consumer, reported and logged once per episode.

    ``report`` receives ``("kafka_connected" | "kafka_topics", ok, detail)``. Nothing is
    reported before the first evidence: a condition starts false in ``Health`` anyway.
    """

    def __init__(
        self, bootstrap_servers: str, topics: Iterable[str], report: ConditionReport | None
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topics = list(topics)
        self.connected = False
        self.missing: set[str] = set()
        self._report = report
        self._outage: str | None = None  # the reason last logged for the current outage
        self._reported_down = False
        self._topics_reported: str | None = None

    # -- the broker --------------------------------------------------------------------

    def unreachable(self, error_text: str | None = None) -> None:
        """A connection failed (``error_text`` is librdkafka's, ``None`` if it gave none)."""
        if error_text is None:  # "all brokers are down": librdkafka's log line says why
            error_text = last_connection_failure(self.bootstrap_servers)
        reason = unreachable_reason(error_text)
        if error_text is None and self._outage is not None:
            reason = self._outage
        changed = reason != self._outage
        if not self.connected and not changed and self._reported_down:
            return  # the same failure again: said once already
        self.connected = False
        self._reported_down = True
        self._outage = reason
        self._emit(
            "kafka_connected", False, f"broker at {self.bootstrap_servers} unreachable: {reason}"
        )
        if changed:
            self._log_unreachable(reason)

    def reachable(self) -> None:
        """A broker answered (a batch arrived, or statistics show a broker up)."""
        if self.connected:
            return
        self.connected = True
        forget_connection_failures(self.bootstrap_servers)
        if self._outage is not None:
            logger.info(
                "kafka broker reachable again",
                extra={"bootstrap_servers": self.bootstrap_servers},
            )
        else:
            logger.info(
                "kafka broker reachable", extra={"bootstrap_servers": self.bootstrap_servers}
            )
        self._outage = None
        self._reported_down = False
        self._emit("kafka_connected", True, "")

    def _log_unreachable(self, reason: str) -> None:
        bootstrap = self.bootstrap_servers
        if reason == _NOT_KAFKA:
            hint = "point kafka.bootstrap_servers at the broker's Kafka listener (host:port)"
            what = f"the server at kafka.bootstrap_servers {bootstrap} is not a Kafka broker"
            reason = "it does not answer the Kafka protocol"
        else:
            hint = (
                "check kafka.bootstrap_servers (or DRIFTMON_KAFKA__BOOTSTRAP_SERVERS) and that "
                "the broker is running; driftmon keeps retrying and is not ready until it connects"
            )
            what = f"cannot reach the Kafka broker at kafka.bootstrap_servers {bootstrap}"
        logger.error(
            f"{what}: {reason}; {hint}",
            extra={"key": "kafka.bootstrap_servers", "bootstrap_servers": bootstrap},
        )

    # -- the topics --------------------------------------------------------------------

    def topic_missing(self, topic: str) -> None:
        """The broker says a subscribed topic does not exist."""
        if topic in self.missing:
            return
        self.missing.add(topic)
        logger.error(
            f"subscribed topic {topic!r} does not exist on the broker at {self.bootstrap_servers}; "
            "create it (see the README, 'Topics must exist') or remove it from kafka.topics",
            extra={"key": "kafka.topics", "topic": topic},
        )
        self._emit_topics()

    def topics_seen(self, topics: Iterable[str]) -> None:
        """The group assigned partitions of these topics, or metadata lists them.

        Called on every assignment (possibly with no topics: another replica may own them
        all), which is when a subscription with no missing topic becomes ready.
        """
        back = self.missing.intersection(topics)
        for topic in sorted(back):
            logger.info("subscribed topic now exists", extra={"topic": topic})
        self.missing -= back
        self._emit_topics()

    def _emit_topics(self) -> None:
        detail = "topic missing: " + ", ".join(sorted(self.missing)) if self.missing else ""
        if detail != self._topics_reported:  # on change only: stats call this every 5 s
            self._topics_reported = detail
            self._emit("kafka_topics", not self.missing, detail)

    def _emit(self, name: str, ok: bool, detail: str) -> None:
        if self._report is not None:
            self._report(name, ok, detail)
