"""The latest status of every model, published by the pipeline and read at scrape time.

The pipeline builds a new frozen :class:`~monitor.model.status.ModelStatus` after each
batch step that changed a model and hands it to :meth:`ResultsStore.publish`. The store
swaps in a new read-only mapping (copy on write), so readers (the metrics collector and
``/status``) take one reference with :meth:`ResultsStore.snapshot` and see a consistent
picture without a lock, however long they take to render it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import MappingProxyType

from monitor.model.status import ModelStatus
from monitor.publish.lifetime import LifetimeCounters, counter_values
from monitor.scaleout.status import ScaleOutStatus

__all__ = ["ResultsStore"]


class ResultsStore:
    """Per-model latest :class:`ModelStatus`, swapped atomically, read without locks.

    Writers are serialised by a lock and replace the whole mapping; a reader's
    :meth:`snapshot` is a single attribute read, atomic under the GIL.
    """

    def __init__(self) -> None:
        self._statuses: Mapping[str, ModelStatus] = MappingProxyType({})
        self._write_lock = threading.Lock()
        self._scale_out: ScaleOutStatus | None = None
        self._lifetime = LifetimeCounters()

    def rebase(self, before: ModelStatus, after: ModelStatus) -> None:
        """The model was reset or restored from ``before`` to ``after`` (both exact, taken
        around the step) and ``after`` is published: its counters keep counting on from
        where ``before`` left them instead of dropping or jumping."""
        with self._write_lock:
            self._lifetime.rebase(after.model, counter_values(before), counter_values(after))
        self.publish(after)

    def counters(self, status: ModelStatus) -> dict[str, float]:
        """The process-lifetime value of each counter of ``status`` (a snapshot's entry)."""
        return self._lifetime.adjusted(status.model, counter_values(status))

    def publish(self, *statuses: ModelStatus) -> None:
        """Replace the status of each given model; several at once become visible together."""
        with self._write_lock:
            updated = dict(self._statuses)
            for status in statuses:
                updated[status.model] = status
            self._statuses = MappingProxyType(updated)

    def withdraw(self, *models: str) -> None:
        """Stop publishing these models (scale-out: another replica owns them now)."""
        with self._write_lock:
            updated = {k: v for k, v in self._statuses.items() if k not in models}
            self._statuses = MappingProxyType(updated)

    def publish_scale_out(self, status: ScaleOutStatus) -> None:
        """Replace the scale-out report (ownership, buffers); one reference swap."""
        self._scale_out = status

    def scale_out(self) -> ScaleOutStatus | None:
        return self._scale_out

    def snapshot(self) -> Mapping[str, ModelStatus]:
        """The current read-only mapping of model name to status; never mutated later."""
        return self._statuses

    def get(self, model: str) -> ModelStatus | None:
        """The current status of one model, if any."""
        return self._statuses.get(model)
