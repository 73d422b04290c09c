"""The drift event every webhook format renders."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DriftedFeature:
    """One feature check that crossed its threshold.

    ``compared`` names what was compared with ``threshold``: the test's ``score``
    (crossed above), its ``p_value`` (crossed below) or, for the missing-ratio check, the
    ``missing_ratio_increase`` (window missing share minus the reference's; ``score`` is
    then the window's missing ratio). ``value`` is that compared quantity.

    >>> DriftedFeature("amount", "ks", 0.3102, 0.001, 2.1e-09, "p_value").describe()
    'ks p_value 2.1e-09 < 0.001 (statistic 0.3102)'
    >>> DriftedFeature("amount", "psi", 0.4213, 0.2).describe()
    'psi score 0.4213 > 0.2'
    """

    feature: str
    test: str
    score: float
    threshold: float
    p_value: float | None = None
    compared: str = "score"  # "score" | "p_value" | "missing_ratio_increase"
    missing_ratio_increase: float | None = None

    @property
    def value(self) -> float | None:
        """The quantity compared with ``threshold``."""
        if self.compared == "p_value":
            return self.p_value
        if self.compared == "missing_ratio_increase":
            return self.missing_ratio_increase
        return self.score

    def describe(self) -> str:
        """The check as a person reads it: ``ks p_value 2.1e-09 < 0.001 (statistic 0.3102)``."""
        op = "<" if self.compared == "p_value" else ">"
        text = f"{self.test} {self.compared} {_num(self.value)} {op} {_num(self.threshold)}"
        if self.compared == "p_value":
            text += f" (statistic {_num(self.score)})"
        elif self.compared == "missing_ratio_increase":
            text += f" (missing ratio {_num(self.score)})"
        return text


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
    version: str | None = None  # model version the drift was seen on (models with versions)

    @property
    def features_drifted(self) -> int:
        return len({f.feature for f in self.drifted_features})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form, used by the outbox to store the event.

        ``extra`` must hold JSON values only; it is stored as given.
        """
        return {
            "id": self.id,
            "time": self.time,
            "model": self.model,
            "window_events": self.window_events,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "drifted_features": [
                {
                    "feature": f.feature,
                    "test": f.test,
                    "score": f.score,
                    "threshold": f.threshold,
                    "p_value": f.p_value,
                    "compared": f.compared,
                    "missing_ratio_increase": f.missing_ratio_increase,
                }
                for f in self.drifted_features
            ],
            "features_monitored": self.features_monitored,
            "test": self.test,
            "kind": self.kind,
            "extra": dict(self.extra),
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftEvent:
        """Inverse of :meth:`to_dict`."""
        return cls(
            id=str(data["id"]),
            time=str(data["time"]),
            model=str(data["model"]),
            window_events=int(data["window_events"]),
            window_start=_opt_float(data.get("window_start")),
            window_end=_opt_float(data.get("window_end")),
            drifted_features=tuple(
                DriftedFeature(
                    feature=str(f["feature"]),
                    test=str(f["test"]),
                    score=float(f["score"]),
                    threshold=float(f["threshold"]),
                    p_value=_opt_float(f.get("p_value")),
                    compared=str(f.get("compared") or _stored_before_compared(f)),
                    missing_ratio_increase=_opt_float(f.get("missing_ratio_increase")),
                )
                for f in data.get("drifted_features", ())
            ),
            features_monitored=int(data["features_monitored"]),
            test=bool(data.get("test", False)),
            kind=str(data.get("kind", "drift")),
            extra=dict(data.get("extra") or {}),
            version=None if data.get("version") is None else str(data["version"]),
        )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _stored_before_compared(f: Mapping[str, Any]) -> str:
    """What an entry stored before ``compared`` existed compared: p-value tests carried
    their p-value threshold, the missing-ratio check its increase."""
    if f.get("test") == "missing_ratio":
        return "missing_ratio_increase"
    return "p_value" if f.get("p_value") is not None else "score"


def _num(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a" if value is None or math.isnan(value) else ("inf" if value > 0 else "-inf")
    return f"{value:.4g}"
