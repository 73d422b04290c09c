"""Polling with a deadline: the one way tests wait for something another thread or process does."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    predicate: Callable[[], object], timeout: float, message: str, interval: float = 0.1
) -> None:
    """Call ``predicate`` every ``interval`` seconds until it returns something truthy.

    Raises ``AssertionError`` naming ``message`` after ``timeout`` seconds, so a failed wait
    reads as a failed expectation in the test report, not as an infrastructure error.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for: {message}")
