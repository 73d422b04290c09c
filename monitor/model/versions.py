"""Model-version awareness: which reference a row is compared against.

A deployment changes the model, and with it the prediction's distribution and often the
features it is fed. Comparing the new version with the old version's reference alarms on
the deployment itself. :class:`VersionRouter` splits each batch by the rows' version value
and says, per version, what the pipeline should do with the rows:

* ``MONITOR``: the version has a reference (configured, or captured from the stream): feed
  the version's own window and evaluate as usual;
* ``CAPTURE``: a version seen for the first time, with ``on_new_version="capture"``: its
  first ``capture_events`` rows become its reference (the pipeline's ``ModelMonitor`` with a
  ``{capture_events: N}`` reference does exactly this); nothing is evaluated, so nothing
  alarms, until the capture completes and :meth:`VersionRouter.mark_ready` is called;
* ``FALLBACK``: with ``on_new_version="fallback"``, rows of a version without a reference
  go to the default reference (the pre-version behaviour);
* ``SKIP``: with ``on_new_version="ignore"``, they are dropped (counted, not evaluated).

Rows without a version (``None``) belong to the default reference. The router keeps at
most ``max_versions`` versions; seeing one more evicts the least recently seen, and
:meth:`VersionRouter.route` reports it so the pipeline can drop that version's window.
A configured version (``references``) that was evicted is monitored again against its
own reference when it comes back; it is never captured. The active version is the
version of the newest row that was not skipped. The router holds no arrays, only the
bookkeeping, so it checkpoints as a small dict.

>>> r = VersionRouter({"v1"}, on_new_version="capture", capture_events=1000)
>>> [(s.version, s.action.value, s.rows.tolist()) for s in r.route(["v1", "v2", "v1"]).slices]
[('v1', 'monitor', [0, 2]), ('v2', 'capture', [1])]
>>> r.active_version
'v1'
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import numpy as np

__all__ = ["DEFAULT_VERSION", "Action", "RouteResult", "VersionRouter", "VersionSlice"]

#: Key of the rows without a version value (and of the model's configured reference).
DEFAULT_VERSION = ""

OnNewVersion = Literal["capture", "fallback", "ignore"]


class Action(StrEnum):
    """What the pipeline does with one version's rows of a batch."""

    MONITOR = "monitor"
    CAPTURE = "capture"
    FALLBACK = "fallback"
    SKIP = "skip"


@dataclass(frozen=True)
class VersionSlice:
    """The rows of one version in one batch (indices in batch order)."""

    version: str
    rows: np.ndarray  # int64
    action: Action
    capture_remaining: int = 0  # CAPTURE: rows still needed after this batch's rows


@dataclass(frozen=True)
class RouteResult:
    slices: tuple[VersionSlice, ...]
    evicted: tuple[str, ...] = ()  # versions forgotten to stay within max_versions
    new_versions: tuple[str, ...] = ()  # first seen in this batch


@dataclass
class _VersionState:
    ready: bool
    captured: int = 0


@dataclass
class VersionRouter:
    """Per-version reference bookkeeping of one model (see the module docstring)."""

    references: Iterable[str] = ()
    on_new_version: OnNewVersion = "capture"
    capture_events: int = 10_000
    max_versions: int = 16
    has_default: bool = True  # the model has a reference for rows without a version
    _state: OrderedDict[str, _VersionState] = field(default_factory=OrderedDict, init=False)
    _active: str | None = field(default=None, init=False)
    _listed: frozenset[str] = field(default=frozenset(), init=False)

    def __post_init__(self) -> None:
        if self.on_new_version not in ("capture", "fallback", "ignore"):
            raise ValueError("on_new_version must be 'capture', 'fallback' or 'ignore'")
        if self.capture_events < 1 or self.max_versions < 1:
            raise ValueError("capture_events and max_versions must be >= 1")
        self._listed = frozenset(self.references)
        for v in self._listed:
            self._state[v] = _VersionState(ready=True)
        if self.has_default:
            self._state.setdefault(DEFAULT_VERSION, _VersionState(ready=True))

    @property
    def active_version(self) -> str | None:
        """Version of the newest routed row (``driftmon_model_info{version}``)."""
        return self._active

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(self._state)

    def is_listed(self, version: str) -> bool:
        """The version has a configured reference (``references``)."""
        return version in self._listed

    def captured(self, version: str) -> int:
        """Rows routed to a version's capture so far (0 once ready or unknown)."""
        state = self._state.get(version)
        return 0 if state is None or state.ready else state.captured

    def is_ready(self, version: str) -> bool:
        state = self._state.get(version)
        return state is not None and state.ready

    def mark_ready(self, version: str) -> None:
        """The version's reference exists now (capture complete or profile loaded)."""
        self._state[version] = _VersionState(ready=True)

    def forget(self, version: str) -> None:
        self._state.pop(version, None)

    def _action(self, version: str, rows: int, new: list[str]) -> tuple[Action, int]:
        state = self._state.get(version)
        if state is None and version in self._listed:
            state = self._state[version] = _VersionState(ready=True)
        if state is None:
            if self.on_new_version == "fallback":
                return (Action.FALLBACK if self.has_default else Action.SKIP), 0
            if self.on_new_version == "ignore":
                return Action.SKIP, 0
            state = self._state[version] = _VersionState(ready=False)
            new.append(version)
        self._state.move_to_end(version)
        if state.ready:
            return Action.MONITOR, 0
        state.captured += rows
        return Action.CAPTURE, max(0, self.capture_events - state.captured)

    def route(self, versions: Sequence[str | None]) -> RouteResult:
        """Split one batch by version and decide what happens to each part."""
        if not versions:
            return RouteResult(())
        groups = _group(versions)
        new: list[str] = []
        slices = []
        last_row, active = -1, self._active
        for version, rows in groups.items():
            action, remaining = self._action(version, len(rows), new)
            slices.append(VersionSlice(version, rows, action, remaining))
            if action is not Action.SKIP and int(rows[-1]) > last_row:
                last_row, active = int(rows[-1]), version
        self._active = active
        evicted: list[str] = []
        while len(self._state) > self.max_versions:
            oldest = next(iter(self._state))
            if oldest == DEFAULT_VERSION and self.has_default:
                self._state.move_to_end(oldest)
                oldest = next(iter(self._state))
            self._state.pop(oldest)
            evicted.append(oldest)
        return RouteResult(tuple(slices), tuple(evicted), tuple(new))

    def state_dict(self) -> dict[str, Any]:
        """Plain data for checkpoints."""
        return {
            "versions": [[v, s.ready, s.captured] for v, s in self._state.items()],
            "active": self._active,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._state = OrderedDict(
            (str(v), _VersionState(bool(ready), int(captured)))
            for v, ready, captured in state["versions"]
        )
        active = state.get("active")
        self._active = None if active is None else str(active)


def _group(versions: Sequence[str | None]) -> dict[str, np.ndarray]:
    """Row indices per version, versions in order of first appearance."""
    first = versions[0]
    if versions.count(first) == len(versions):  # the common case: one version per batch
        key = DEFAULT_VERSION if first is None else first
        return {key: np.arange(len(versions), dtype=np.int64)}
    out: dict[str, list[int]] = {}
    for i, v in enumerate(versions):
        out.setdefault(DEFAULT_VERSION if v is None else v, []).append(i)
    return {k: np.asarray(v, dtype=np.int64) for k, v in out.items()}
