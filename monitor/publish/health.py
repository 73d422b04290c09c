"""Readiness conditions behind ``/readyz``, ``/status`` and ``driftmon_ready``.

Each component owns one named condition and flips it as its state changes: the CLI sets
``config_loaded``, the pipeline ``references_ready``, ``stats.warmup`` ``kernels_warm``,
the source ``consumer_assigned``, ``kafka_connected`` and ``kafka_topics`` (every
subscribed topic exists). Details name the cause: ``broker at HOST:PORT unreachable:
connection refused``, ``topic missing: NAME``. Components added later register
their own conditions (``state_dir_writable``, a webhook worker's liveness) with
:meth:`Health.register`. The process is ready when every condition holds.
"""

from __future__ import annotations

import threading
from typing import Any

CORE_CONDITIONS = (
    "config_loaded",
    "references_ready",
    "kernels_warm",
    "consumer_assigned",
    "kafka_connected",
    "kafka_topics",
)


class Health:
    """A set of named boolean conditions, each with an optional detail for when it fails.

    Conditions start false: a component must say it is ready, never be assumed so.
    Thread-safe; conditions change rarely, so a plain lock is enough.
    """

    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, tuple[bool, str]] = {}
        for name in (*CORE_CONDITIONS, *extra):
            self._state[name] = (False, "")

    def register(self, name: str, ok: bool = False, detail: str = "") -> None:
        """Add a condition (idempotent: an existing condition keeps its state)."""
        with self._lock:
            self._state.setdefault(name, (ok, detail))

    def set(self, name: str, ok: bool, detail: str = "") -> None:
        """Set a registered condition; ``detail`` says why it is false (shown by /readyz).

        Unknown names raise ``KeyError`` so a typo cannot create a condition nobody clears.
        """
        with self._lock:
            if name not in self._state:
                raise KeyError(f"unknown readiness condition {name!r}; register it first")
            self._state[name] = (ok, "" if ok else detail)

    def conditions(self) -> dict[str, bool]:
        """Every condition and whether it holds, in registration order."""
        with self._lock:
            return {name: ok for name, (ok, _) in self._state.items()}

    @property
    def is_ready(self) -> bool:
        """True when every condition holds."""
        with self._lock:
            return all(ok for ok, _ in self._state.values())

    def reasons_not_ready(self) -> list[str]:
        """One line per failing condition: its name, then its detail when one was given."""
        with self._lock:
            return [
                f"{name}: {detail}" if detail else name
                for name, (ok, detail) in self._state.items()
                if not ok
            ]


def readiness_document(health: Health) -> dict[str, Any]:
    """The ``/readyz`` JSON body, which also opens the ``/status`` body.

    ``{"ready": bool, "reasons": [str], "conditions": {name: bool}}``.
    """
    return {
        "ready": health.is_ready,
        "reasons": health.reasons_not_ready(),
        "conditions": health.conditions(),
    }
