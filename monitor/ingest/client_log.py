"""librdkafka's log lines, routed to the ``monitor.librdkafka`` logger and de-duplicated.

Shared by the consumer and the dead-letter producer (``"logger"`` in their client config).
"""

from __future__ import annotations

import logging
import time

__all__ = ["LIBRDKAFKA_LOGGER"]


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


LIBRDKAFKA_LOGGER = logging.getLogger("monitor.librdkafka")
LIBRDKAFKA_LOGGER.addFilter(_RepeatFilter())
