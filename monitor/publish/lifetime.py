"""Prometheus counters that only go up for the life of the process.

A model's totals (events, evaluations, labels, ...) live in its state: they restart from
zero when the model is reset because its partitions went to another replica, and jump to a
checkpoint's values when a model is restored. Exported as they are, Prometheus reads the
drop as a counter reset and ``increase()`` over-counts, and a restore adds events this
process never saw. So each counter is exported as ``raw + offset``, where the offset
absorbs the step at every reset and restore: the exported value counts what this process
counted, and never decreases.

    >>> life = LifetimeCounters()
    >>> before = {"events_total": 3000.0}
    >>> life.rebase("fraud", before, {"events_total": 0.0})         # partitions lost
    >>> life.adjusted("fraud", {"events_total": 500.0})["events_total"]
    3500.0
    >>> life.rebase("fraud", {"events_total": 500.0}, {"events_total": 9000.0})  # restored
    >>> life.adjusted("fraud", {"events_total": 9100.0})["events_total"]
    3600.0
"""

from __future__ import annotations

from collections.abc import Mapping

from monitor.model.status import ModelStatus

__all__ = ["LifetimeCounters", "counter_values"]

_TOTALS = (
    "events_total",
    "evaluations",
    "late_events",
    "retrain_triggers",
    "retrain_suppressed",
    "ignored_version_events",
)


def counter_values(status: ModelStatus) -> dict[str, float]:
    """Every counter a model's status carries, by a flat key (``evicted:<reason>``,
    ``delay_count:<bucket>``, ``delay_sum`` for the label-delay histogram)."""
    values = {name: float(getattr(status, name)) for name in _TOTALS}
    perf = status.performance
    if perf is not None:
        values["labels_total"] = float(perf.labels_total)
        values["labels_joined_total"] = float(perf.labels_joined_total)
        for reason, n in perf.evicted.items():
            values[f"evicted:{reason}"] = float(n)
        for i, n in enumerate(perf.delay_counts):
            values[f"delay_count:{i}"] = float(n)
        values["delay_sum"] = float(perf.delay_sum)
    return values


class LifetimeCounters:
    """Per model, the offset added to each raw counter; written under the results lock."""

    def __init__(self) -> None:
        self._offsets: dict[str, Mapping[str, float]] = {}

    def rebase(self, model: str, before: Mapping[str, float], after: Mapping[str, float]) -> None:
        """The model's raw counters stepped from ``before`` to ``after`` without counting."""
        offsets = dict(self._offsets.get(model, {}))
        for key in before.keys() | after.keys():
            step = before.get(key, 0.0) - after.get(key, 0.0)
            if step:
                offsets[key] = offsets.get(key, 0.0) + step
        self._offsets[model] = offsets  # replaced whole: readers never see a half update

    def adjusted(self, model: str, raw: Mapping[str, float]) -> dict[str, float]:
        """``raw`` plus the model's offsets (keys only an offset knows included)."""
        offsets = self._offsets.get(model, {})
        out = dict(raw)
        for key, offset in offsets.items():
            out[key] = out.get(key, 0.0) + offset
        return out
