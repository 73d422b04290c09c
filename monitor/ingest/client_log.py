"""librdkafka's log lines, routed to the ``monitor.librdkafka`` logger and de-duplicated.

Shared by the consumer and the dead-letter producer (``"logger"`` in their client config).
A failed connection is said once per outage by the consumer in driftmon's words
(:mod:`monitor.ingest.connection`), so librdkafka's own ``FAIL`` lines about it are kept
for DEBUG; every other line passes at most once per facility and level every 10 s.
"""

from __future__ import annotations

import logging
import time

__all__ = ["LIBRDKAFKA_LOGGER", "forget_connection_failures", "last_connection_failure"]

# librdkafka's facility for connection failures (refused, resolve, non-Kafka port, TLS).
_CONNECTION_FAILURE = "FAIL"


class _RepeatFilter(logging.Filter):
    """Lets one librdkafka line per facility and level through every ``interval`` seconds.

    While a broker is down librdkafka repeats the same connection failure about every
    50 ms; the first line says it all, the rest would flood the log.
    """

    def __init__(self, interval_seconds: float = 10.0) -> None:
        super().__init__()
        self.interval_seconds = interval_seconds
        self._last: dict[tuple[int, str], float] = {}
        self._suppressed: dict[tuple[int, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        fac = str(record.args[0]) if isinstance(record.args, tuple) and record.args else ""
        if fac == _CONNECTION_FAILURE:
            _remember_failure(record)
            if not LIBRDKAFKA_LOGGER.isEnabledFor(logging.DEBUG):
                return False
        key = (record.levelno, fac or record.getMessage()[:40])
        now = time.monotonic()
        if now - self._last.get(key, -1e18) < self.interval_seconds:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            record.suppressed = suppressed
        return True


# Newest FAIL text per broker address: some failures (a non-Kafka server closing the
# connection) reach the error callback only as "all brokers are down", without a reason.
_FAILURES: dict[str, str] = {}


def _remember_failure(record: logging.LogRecord) -> None:
    text = str(record.args[-1]) if isinstance(record.args, tuple) and record.args else ""
    start = text.find("[thrd:")
    if start >= 0:
        address = text[start + 6 :].split("/", 1)[0]
        _FAILURES[address] = text


def last_connection_failure(bootstrap_servers: str) -> str | None:
    """librdkafka's newest connection failure line for any of these ``host:port``."""
    for address in bootstrap_servers.split(","):
        text = _FAILURES.get(address.strip())
        if text is not None:
            return text
    return None


def forget_connection_failures(bootstrap_servers: str) -> None:
    """Drop the remembered failures of these addresses (a broker answered since)."""
    for address in bootstrap_servers.split(","):
        _FAILURES.pop(address.strip(), None)


LIBRDKAFKA_LOGGER = logging.getLogger("monitor.librdkafka")
LIBRDKAFKA_LOGGER.addFilter(_RepeatFilter())
