"""When to try a webhook again: exponential backoff with full jitter, and ``Retry-After``.

The delivery worker asks :func:`backoff_delay` for the wait after a failed attempt; a
receiver's ``Retry-After`` header, parsed by :func:`parse_retry_after`, replaces the
jittered delay (the worker applies the same ``max_backoff_seconds`` cap to both).
"""

from __future__ import annotations

import math
import random
from datetime import UTC
from email.utils import parsedate_to_datetime

from monitor.webhooks.config import RetryConfig

__all__ = ["backoff_cap", "backoff_delay", "parse_retry_after"]


def backoff_cap(attempts: int, retry: RetryConfig) -> float:
    """Upper bound of the delay after ``attempts`` failed attempts (1, 2, ...).

    ``initial_backoff_seconds * 2 ** (attempts - 1)``, capped at ``max_backoff_seconds``.
    """
    exponent = min(attempts - 1, 62)  # 2**62 seconds is already far past any cap
    return min(retry.max_backoff_seconds, retry.initial_backoff_seconds * 2.0**exponent)


def backoff_delay(attempts: int, retry: RetryConfig, rng: random.Random) -> float:
    """Full jitter: uniform in ``[0, backoff_cap(attempts)]`` (spreads retry storms)."""
    return rng.uniform(0.0, backoff_cap(attempts, retry))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
