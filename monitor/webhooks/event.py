"""The drift event every webhook format renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DriftedFeature:
    """One feature test that crossed its threshold."""

    feature: str
    test: str
    score: float
    threshold: float
    p_value: float | None = None


@dataclass(frozen=True)
class DriftEvent:
    """A confirmed drift episode of one model; one per episode, rendered by every format.

    ``id`` is the idempotency key used end to end (webhook-id, dag_run_id suffix,
    Prefect idempotency key). ``time`` is RFC 3339 UTC.
    """

    id: str
    time: str
    model: str
    window_events: int
    window_start: float | None
    window_end: float | None
    drifted_features: tuple[DriftedFeature, ...]
    features_monitored: int
    test: bool = False
    kind: str = "drift"  # "drift" or "performance" (see the performance issue)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def features_drifted(self) -> int:
        return len({f.feature for f in self.drifted_features})
