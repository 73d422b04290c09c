"""What scale-out reports: which replica owns which model, and each owned model's buffer.

Stage 2 publishes a :class:`ScaleOutStatus` into the results store after every batch and
rebalance; the metrics collector and ``/status`` read it from there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from monitor.scaleout.codec import source_name
from monitor.scaleout.reorder import ReorderBuffer

__all__ = ["ModelShare", "ScaleOutStatus", "share_of"]

OUTCOMES = ("applied", "duplicate", "late", "rejected")


@dataclass(frozen=True)
class ModelShare:
    """One model as this replica sees it; only an owner has counts and a watermark."""

    model: str
    partition: int  # the internal partition carrying its rows
    owned: bool
    counts: Mapping[str, int] = field(default_factory=dict)  # OUTCOMES + "forced"
    watermark: float | None = None  # event time released up to (None before any)
    watermark_lag_seconds: float | None = None  # newest row event time - watermark
    buffered_rows: int = 0
    holding: tuple[str, ...] = ()  # source partitions the watermark waits for
    # Where this replica's reference came from: file, captured, topic or capturing.
    reference: str = "file"
    sends: str = "binned"  # what this replica's stage 1 sends the rows as: binned or raw


@dataclass(frozen=True)
class ScaleOutStatus:
    replica: str
    rows_topic: str
    source_partitions: tuple[str, ...]  # stage 1: this replica's share of the source topics
    internal_partitions: tuple[int, ...]  # stage 2: the internal partitions it owns
    models: Mapping[str, ModelShare]
    # Records read from the profiles topic by outcome (monitor.scaleout.profiles.OUTCOMES).
    profile_records: Mapping[str, int] = field(default_factory=dict)


def share_of(model: str, partition: int, buffer: ReorderBuffer, topics: list[str]) -> ModelShare:
    """An owned model's share, from its reorder buffer."""
    watermark = buffer.watermark
    newest = max(buffer.progress().values(), default=-math.inf)
    finite = math.isfinite(watermark)
    lag = max(0.0, newest - watermark) if finite and math.isfinite(newest) else None
    return ModelShare(
        model,
        partition,
        True,
        buffer.counts.as_dict(),
        watermark if finite else None,
        lag,
        buffer.buffered,
        tuple(source_name(s, topics) for s in buffer.holding()),
    )
