"""The demo's wait for the daemon to be ready, and its verdict at the end.

The 60 s of the demo start when the daemon is ready, not when it is started: a first run
compiles the Numba kernels first, and the screen says so instead of showing an empty
window. The verdict turns "nothing happened" into a non-zero exit with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["DemoOutcome", "verdict", "wait_until_ready"]

READY_TIMEOUT_SECONDS = 600.0


def _waiting_line(daemon: Any, elapsed: float) -> str:
    progress = daemon.kernels.progress
    if progress.compiling and not progress.finished:
        step = f"{progress.step} ({progress.done + 1}/{progress.total})" if progress.total else ""
        return f"compiling kernels (first run only): {step}, {elapsed:.0f} s"
    reasons = ", ".join(daemon.health.reasons_not_ready()) or "starting"
    return f"waiting for the daemon to be ready ({reasons}), {elapsed:.0f} s"


def wait_until_ready(
    daemon: Any,
    alive: Callable[[], bool],
    say: Callable[[str], None],
    *,
    timeout: float = READY_TIMEOUT_SECONDS,
    every: float = 2.0,
) -> str | None:
    """Wait until ``daemon`` is ready, saying what it waits for every ``every`` seconds.

    Returns None when ready, else why not (the daemon stopped, or ``timeout`` passed).
    """
    started = time.monotonic()
    said = -every
    while not daemon.health.is_ready:
        elapsed = time.monotonic() - started
        if not alive():
            return "the daemon stopped before it was ready (see the messages above)"
        if elapsed >= timeout:
            reasons = ", ".join(daemon.health.reasons_not_ready())
            return f"the daemon was not ready after {timeout:.0f} s ({reasons})"
        if elapsed - said >= every:
            said = elapsed
            say(_waiting_line(daemon, elapsed))
        time.sleep(0.1)
    seconds = time.monotonic() - started
    compiled = " (kernels compiled; later starts load them from the cache)"
    say(
        f"driftmon ready after {seconds:.1f} s"
        + (compiled if daemon.kernels.progress.compiling else "")
    )
    return None


@dataclass(frozen=True)
class DemoOutcome:
    """What the demo saw by the end."""

    events_counted: int
    webhooks_received: int
    drift_injected: bool
    daemon_alive: bool


def verdict(outcome: DemoOutcome) -> list[str]:
    """Why the demo failed; empty when it showed the whole loop.

    >>> verdict(DemoOutcome(20_000, 1, True, True))
    []
    >>> verdict(DemoOutcome(0, 0, True, True))[0]
    'the daemon counted no events: nothing reached it from the broker'
    """
    reasons = []
    if not outcome.daemon_alive:
        reasons.append("the daemon stopped before the end (see the messages above)")
    if outcome.events_counted == 0:
        reasons.append("the daemon counted no events: nothing reached it from the broker")
    if outcome.webhooks_received == 0:
        if outcome.drift_injected:
            reasons.append("no retrain webhook arrived although drift was injected")
        else:
            reasons.append(
                "no retrain webhook arrived: the run ended before drift was injected "
                "(use --duration 30 or more)"
            )
    return reasons
