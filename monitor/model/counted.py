"""Batches that only count: many models' rows into their windows' open slots at once.

A steady model (reference installed, no performance join, thresholds settled) whose rows
of a batch all fit in its window's open slot moves nothing but its counts: no slot closes,
so nothing is evaluated. :class:`OpenSlotFeed` gathers such models while a batch is split
and counts all their rows with one kernel call (:mod:`monitor.stats.slot_batch`), instead
of one window feed and its set-up per model; any other batch goes through
:meth:`~monitor.model.monitor.ModelMonitor.feed` as before.
"""

from __future__ import annotations

import numpy as np

from monitor.ingest.decode import ModelColumns
from monitor.model.model import Model
from monitor.model.monitor import ModelMonitor
from monitor.stats import SlotWindow
from monitor.stats.slot_batch import EdgeTable, count_open_slots


class OpenSlotFeed:
    """The count-only models of one batch, fed together by :meth:`flush`."""

    def __init__(self, table: EdgeTable) -> None:
        self._table = table
        self._monitors: list[ModelMonitor] = []
        self._columns: list[ModelColumns] = []
        self._windows: list[SlotWindow] = []

    def offer(self, model: Model, columns: ModelColumns) -> bool:
        """Take the model's rows if they only count; ``False``: feed them as usual."""
        if (
            not isinstance(model, ModelMonitor)
            or columns.binned is not None
            or columns.labels is not None
            or not model.steady
        ):
            return False
        evaluator = model.evaluator
        assert evaluator is not None  # noqa: S101 - steady: a reference is installed
        window = evaluator.window
        if window.make_room() < len(columns.ts):
            return False
        self._monitors.append(model)
        self._columns.append(columns)
        self._windows.append(window)
        return True

    def flush(self) -> list[tuple[ModelMonitor, float]]:
        """Count every offered model's rows; the monitors fed (each exactly as its
        ``feed`` would have), for their hot counts, each with its rows' latest event time
        (``ts.max()``, found by the kernel that counted them)."""
        monitors, columns, windows = self._monitors, self._columns, self._windows
        self._monitors, self._columns, self._windows = [], [], []
        if not monitors:
            return []
        numeric: list[np.ndarray] = []
        codes: list[np.ndarray] = []
        for monitor, cols in zip(monitors, columns, strict=True):
            encoder = monitor.evaluator.encoder  # type: ignore[union-attr]
            if encoder.passthrough and cols.codes is not None:  # decode's columns as they are
                numeric.append(cols.numeric)
                codes.append(cols.codes)
            else:
                num, cat = encoder.encode(cols)
                numeric.append(num)
                codes.append(cat)
        counted = count_open_slots(
            self._table, windows, numeric, codes, [cols.ts for cols in columns]
        )
        for monitor, cols, good in zip(monitors, columns, counted.ok, strict=True):
            if good:
                monitor.events_seen += len(cols.ts)
            else:  # a code the profile does not know: the window's own check says so
                monitor.feed(cols)
        return list(zip(monitors, counted.latest, strict=True))
