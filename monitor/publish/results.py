"""The latest status of every model, published by the pipeline and read at scrape time.

The pipeline builds a new frozen :class:`~monitor.model.status.ModelStatus` after each
batch step that changed a model and hands it to :meth:`ResultsStore.publish`. A step that
only moved a model's :class:`~monitor.model.status.HotCounts` (events, window fill) goes
to :meth:`ResultsStore.count` instead: one row of a table, no status rebuilt, so a batch
spread over hundreds of models costs no per-model status. The store swaps in a new
read-only picture (copy on write), so readers (the metrics collector and ``/status``) take
one reference with :meth:`ResultsStore.snapshot` and see a consistent picture without a
lock, however long they take to render it; the hot counts are laid over each status as it
is read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from types import MappingProxyType

from monitor.model.status import HotCounts, ModelStatus
from monitor.publish.lifetime import LifetimeCounters, counter_values
from monitor.scaleout.status import ScaleOutStatus

__all__ = ["ResultsStore"]


class Statuses(Mapping[str, ModelStatus]):
    """A read-only picture: each model's status with its latest hot counts laid over it."""

    __slots__ = ("_hot", "_statuses")

    def __init__(self, statuses: Mapping[str, ModelStatus], hot: Mapping[str, HotCounts]):
        self._statuses = statuses
        self._hot = hot

    def __getitem__(self, model: str) -> ModelStatus:
        status = self._statuses[model]
        hot = self._hot.get(model)
        if hot is None or hot == HotCounts.of(status):
            return status
        return replace(status, **hot._asdict())

    def __iter__(self) -> Iterator[str]:
        return iter(self._statuses)

    def __len__(self) -> int:
        return len(self._statuses)

    def parts(self) -> tuple[Mapping[str, ModelStatus], Mapping[str, HotCounts]]:
        """The statuses as published and the hot counts laid over them."""
        return self._statuses, self._hot


class ResultsStore:
    """Per-model latest :class:`ModelStatus`, swapped atomically, read without locks.

    Writers are serialised by a lock and replace the whole picture; a reader's
    :meth:`snapshot` is a single attribute read, atomic under the GIL.
    """

    def __init__(self) -> None:
        self._view = Statuses(MappingProxyType({}), MappingProxyType({}))
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
        self.update(statuses, ())

    def count(self, hot: Iterable[tuple[str, HotCounts]]) -> None:
        """Replace the hot counts of models whose status is otherwise unchanged."""
        self.update((), hot)

    def update(self, statuses: Iterable[ModelStatus], hot: Iterable[tuple[str, HotCounts]]) -> None:
        """:meth:`publish` and :meth:`count` of one batch, visible together: one copy of
        the picture per batch, however many models the batch touched."""
        with self._write_lock:
            old_statuses, old_hot = self._view.parts()
            new_statuses, new_hot = dict(old_statuses), dict(old_hot)
            for status in statuses:
                new_statuses[status.model] = status
                new_hot.pop(status.model, None)
            new_hot.update(hot)
            self._view = Statuses(MappingProxyType(new_statuses), MappingProxyType(new_hot))

    def withdraw(self, *models: str) -> None:
        """Stop publishing these models (scale-out: another replica owns them now)."""
        with self._write_lock:
            old_statuses, old_hot = self._view.parts()
            kept = {k: v for k, v in old_statuses.items() if k not in models}
            hot = {k: v for k, v in old_hot.items() if k not in models}
            self._view = Statuses(MappingProxyType(kept), MappingProxyType(hot))

    def publish_scale_out(self, status: ScaleOutStatus) -> None:
        """Replace the scale-out report (ownership, buffers); one reference swap."""
        self._scale_out = status

    def scale_out(self) -> ScaleOutStatus | None:
        return self._scale_out

    def snapshot(self) -> Statuses:
        """The current read-only picture of model name to status; never mutated later."""
        return self._view

    def get(self, model: str) -> ModelStatus | None:
        """The current status of one model, if any."""
        return self._view.get(model)
