"""Logging for the ``monitor`` logger: text or JSON lines, rate limiting, secret redaction.

Modules log through ``logging.getLogger(__name__)`` and pass structured fields as
``extra``; both formats render them as ``key=value`` (text) or JSON keys::

    log.info("drift confirmed", extra={"model": "fraud", "features": 3})

Only the CLI calls :func:`configure_logging`. Per-event problems go through a
:class:`RateLimitedLogger` so a flood of bad messages writes a bounded number of lines.
Values passed to :func:`register_secret` are replaced by ``**********`` in every record
handled by driftmon's handler, whatever logged it.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

import orjson

__all__ = [
    "JsonFormatter",
    "RateLimitedLogger",
    "RedactionFilter",
    "TextFormatter",
    "configure_logging",
    "register_secret",
]

ROOT = "monitor"
MASK = "**********"

# Attributes every LogRecord has; anything else on a record came in through ``extra``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _text_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    if record.exc_text:  # already rendered (and scrubbed) by the redaction filter
        return record.exc_text
    return formatter.formatException(record.exc_info) if record.exc_info else ""


class TextFormatter(logging.Formatter):
    """``2026-11-26T10:00:00.123Z INFO monitor.pipeline message key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record as a single line (tracebacks follow on their own lines)."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"{stamp}.{int(record.msecs):03d}Z",
            record.levelname,
            record.name,
            record.getMessage(),
        ]
        parts += [f"{k}={_text_value(v)}" for k, v in _extra(record).items()]
        line = " ".join(parts)
        exc = _exception_text(self, record)
        return f"{line}\n{exc}" if exc else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, then extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record as a JSON line."""
        doc: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _extra(record).items():
            doc.setdefault(key, value)
        exc = _exception_text(self, record)
        if exc:
            doc["exc"] = exc
        return orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class RedactionFilter(logging.Filter):
    """Replaces every registered secret in a record's message, arguments and extra fields."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        """Register one secret value (empty and very short values are ignored)."""
        if len(secret) < 4:  # masking "a" would mangle every line and protect nothing
            return
        with self._lock:
            # Longest first, so a secret containing another is masked whole.
            self._secrets = tuple(sorted({*self._secrets, secret}, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        """``text`` with every registered secret masked."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        if not self._secrets:
            return True
        message = record.getMessage()
        scrubbed = self.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        for key, value in _extra(record).items():
            if isinstance(value, str):
                setattr(record, key, self.scrub(value))
            elif not isinstance(value, int | float | bool | type(None)):
                text = str(value)
                if self.scrub(text) != text:
                    setattr(record, key, self.scrub(text))
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback now so the secret cannot come back through it.
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


_REDACTION = RedactionFilter()


def register_secret(value: str) -> None:
    """Mask ``value`` in everything driftmon's log handler writes from now on."""
    _REDACTION.add(value)


def configure_logging(
    level: str = "info", fmt: str = "text", stream: IO[str] | None = None
) -> logging.Handler | None:
    """Install one handler on the ``monitor`` logger; returns it, or ``None`` if the
    logger already had handlers (the embedding application configured it: leave it be)."""
    logger = logging.getLogger(ROOT)
    if logger.handlers:
        return None
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_REDACTION)
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return handler


class RateLimitedLogger:
    """Logs at most ``limit`` lines per key (e.g. reject reason) per ``interval_seconds``.

    The first line after a quiet period carries ``suppressed=N``, the number of lines
    dropped for that key in between, so nothing disappears without a trace::

        limited = RateLimitedLogger(log, limit=5, interval_seconds=60)
        limited.warning("not_json", "invalid message", extra={"partition": 3, "offset": 17})
    """

    def __init__(
        self,
        logger: logging.Logger,
        limit: int = 5,
        interval_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or interval_seconds <= 0:
            raise ValueError("limit must be >= 1 and interval_seconds > 0")
        self.logger = logger
        self.limit = limit
        self.interval_seconds = interval_seconds
        self._clock = clock
        # key -> [window start, lines in this window, suppressed since last line]
        self._state: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> int | None:
        """``None`` to suppress this line, else the number suppressed before it."""
        now = self._clock()
        with self._lock:
            state = self._state.get(key)
            if state is None or now - state[0] >= self.interval_seconds:
                suppressed = int(state[2]) if state else 0
                self._state[key] = [now, 1, 0]
                return suppressed
            if state[1] < self.limit:
                state[1] += 1
                suppressed, state[2] = int(state[2]), 0
                return suppressed
            state[2] += 1
            return None

    def suppress(self, key: str, n: int) -> None:
        """Count ``n`` lines of ``key`` as suppressed without offering them one by one
        (a batch's rejections past the budget); the next line written reports them."""
        if n <= 0:
            return
        with self._lock:
            state = self._state.get(key)
            if state is None:
                self._state[key] = [self._clock(), self.limit, n]
            else:
                state[2] += n

    def log(
        self, level: int, key: str, msg: str, *args: Any, extra: dict[str, Any] | None = None
    ) -> bool:
        """Log unless ``key`` is over its budget; returns whether a line was written."""
        if not self.logger.isEnabledFor(level):
            return False
        suppressed = self.allow(key)
        if suppressed is None:
            return False
        fields = dict(extra or {})
        fields.setdefault("reason", key)
        if suppressed:
            fields["suppressed"] = suppressed
        self.logger.log(level, msg, *args, extra=fields)
        return True

    def warning(self, key: str, msg: str, *args: Any, extra: dict[str, Any] | None = None) -> bool:
        """:meth:`log` at WARNING."""
        return self.log(logging.WARNING, key, msg, *args, extra=extra)

    def info(self, key: str, msg: str, *args: Any, extra: dict[str, Any] | None = None) -> bool:
        """:meth:`log` at INFO."""
        return self.log(logging.INFO, key, msg, *args, extra=extra)
