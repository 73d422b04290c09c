"""The per-model checkpoint codec: how a model's parts lay out their state in a ModelState.

A :class:`ModelState` is a flat pair of maps, ``scalars`` (the
JSON metadata) and ``arrays`` (the archive). Each part of a model keeps its entries under
a key prefix of its own (``window.``, ``sequential.``, ``capture.``, ``performance.``,
``performance.core.``, ``version.<i>/``); this module is the one place that writes and
reads those prefixes and that turns an :class:`~monitor.model.alerting.AlertStatus` into
JSON and back. The layout is the checkpoint file format: changing it changes what older
checkpoints restore to.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monitor.model.alerting import AlertState, AlertStatus

__all__ = [
    "ModelState",
    "CAPTURE",
    "PERFORMANCE",
    "PERFORMANCE_CORE",
    "SEQUENTIAL",
    "WINDOW",
    "alert_from_json",
    "alert_to_json",
    "nest_version",
    "put_core_state",
    "put_state_dict",
    "take_core_state",
    "take_prefixed",
    "unnest_version",
    "version_prefix",
]


@dataclass
class ModelState:
    """Everything needed to resume one model exactly.

    ``fingerprint`` identifies the configuration and reference the state was built with; a
    state whose fingerprint differs from the running config is discarded, not forced in.
    Arrays go into the archive; scalars, lists and dicts into the JSON metadata.
    """

    model: str
    fingerprint: str
    partitions: list[str]
    scalars: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


WINDOW = "window."
SEQUENTIAL = "sequential."
CAPTURE = "capture."
PERFORMANCE = "performance."
PERFORMANCE_CORE = "performance.core."


def alert_to_json(status: AlertStatus) -> dict[str, Any]:
    return {
        "state": int(status.state),
        "consecutive": status.consecutive,
        "last_trigger_time": status.last_trigger_time,
        "episodes": status.episodes,
    }


def alert_from_json(data: Mapping[str, Any]) -> AlertStatus:
    return AlertStatus(
        state=AlertState(int(data["state"])),
        consecutive=int(data["consecutive"]),
        last_trigger_time=data["last_trigger_time"],
        episodes=int(data["episodes"]),
    )


def put_state_dict(
    scalars: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str, values: Mapping[str, Any]
) -> None:
    """A part's state dict under ``prefix``: arrays into the archive, the rest into JSON."""
    for key, value in values.items():
        if isinstance(value, np.ndarray):
            arrays[prefix + key] = value
        else:
            scalars[prefix + key] = value


def take_prefixed(
    scalars: Mapping[str, Any], arrays: Mapping[str, np.ndarray], prefix: str
) -> dict[str, Any]:
    """Every entry under ``prefix`` (scalars, then arrays), with the prefix removed."""
    return {
        key.removeprefix(prefix): value
        for key, value in [*scalars.items(), *arrays.items()]
        if key.startswith(prefix)
    }


def put_core_state(
    scalars: dict[str, Any], arrays: dict[str, np.ndarray], values: Mapping[str, Any]
) -> None:
    """The performance core's state dict under ``performance.core.``.

    JSON has no NaN or infinity: NaN metric values are written as ``null``, a non-finite
    number (the join watermark starts at ``-inf``) as its text, which ``float()`` reads.
    """
    for key, value in values.items():
        name = PERFORMANCE_CORE + key
        if isinstance(value, np.ndarray):
            arrays[name] = value
        elif isinstance(value, dict):
            scalars[name] = {k: None if math.isnan(v) else v for k, v in value.items()}
        elif isinstance(value, float) and not math.isfinite(value):
            scalars[name] = str(value)
        else:
            scalars[name] = value


def take_core_state(scalars: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Read back :func:`put_core_state` (``null`` metric values become NaN again)."""
    core = take_prefixed(scalars, arrays, PERFORMANCE_CORE)
    return {
        key: {k: math.nan if v is None else v for k, v in value.items()}
        if isinstance(value, dict)
        else value
        for key, value in core.items()
    }


def version_prefix(index: int) -> str:
    """Where the arrays of a model's ``index``-th version live in the model's state."""
    return f"version.{index}/"


def nest_version(state: ModelState, version: str, index: int, sub: ModelState) -> dict[str, Any]:
    """Put a version's arrays into the model's state; return its entry for the scalars."""
    prefix = version_prefix(index)
    for key, array in sub.arrays.items():
        state.arrays[prefix + key] = array
    return {
        "version": version,
        "fingerprint": sub.fingerprint,
        "prefix": prefix,
        "scalars": sub.scalars,
    }


def unnest_version(state: ModelState, entry: Mapping[str, Any]) -> tuple[str, ModelState]:
    """A version's own state from its :func:`nest_version` entry and the model's state."""
    version, prefix = str(entry["version"]), str(entry["prefix"])
    sub = ModelState(
        model=state.model,
        fingerprint=str(entry["fingerprint"]),
        partitions=state.partitions,
        scalars=dict(entry["scalars"]),
        arrays={
            key.removeprefix(prefix): array
            for key, array in state.arrays.items()
            if key.startswith(prefix)
        },
    )
    return version, sub
