"""Binned rows of a model with ``versions``: each row against its own version's grid.

A versioned model routes each row by its version (the event's field, else the message's
``version`` header) to a monitor with its own reference. :func:`grid_key` says which
reference a row is counted against: the default one (``""``) for rows without a version
and for unlisted versions the model does not capture (``fallback``, and ``ignore``, whose
rows are dropped but still split into label and drift rows by their codes), else the
version's own (configured, or captured from its first rows).

Stage 1 (:class:`VersionGrids`) bins a batch when every row's key has a grid it knows (the
model's file reference, the configured version profiles, and captured profiles shared on
``<group_id>.profiles`` under :func:`profile_key`); the batch's rows then carry their
version and, per key, the fingerprint of the grid they were binned against
(:attr:`~monitor.scaleout.carried.Carried.grids`). A batch with a row of a version still
capturing goes raw, as the whole model did before. Stage 2 (:func:`expected_grid`) takes
a key's rows only when that fingerprint is the one of the reference its own monitor of the
key has installed: a version it has not captured yet, or captured again since (evicted by
``max_versions``), rejects them (counted).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from monitor.ingest.decode import ModelColumns
from monitor.model.model import Model
from monitor.model.monitor import ModelMonitor, model_fingerprint
from monitor.model.versioned import VersionedModel, with_versions
from monitor.model.versions import DEFAULT_VERSION
from monitor.scaleout.carried import Carried, JoinColumns, join_columns
from monitor.scaleout.codec import RowBatch, RowCodec
from monitor.scaleout.raw import raw_fingerprint
from monitor.stats.profile import ReferenceProfile

__all__ = [
    "ExpectedGrids",
    "VersionGrids",
    "rejected_rows",
    "expected_grid",
    "grid_fingerprint",
    "grid_key",
    "monitor_codec",
    "profile_key",
    "split_profile_key",
]

NONE = JoinColumns((), ())
#: Separates model and version in a key of the profiles topic.
SEPARATOR = "@"


def profile_key(model: str, key: str) -> str:
    """The profiles topic's key of a reference: the model's name for its default one."""
    return model if key == DEFAULT_VERSION else f"{model}{SEPARATOR}{key}"


def split_profile_key(key: str, models: Sequence[str]) -> tuple[str, str] | None:
    """``(model, version key)`` of a profiles topic key, ``None`` for no configured model."""
    if key in models:
        return key, DEFAULT_VERSION
    model, sep, version = key.rpartition(SEPARATOR)
    if sep and model in models and version:
        return model, version
    return None


def grid_key(model: VersionedModel, version: str | None) -> str:
    """The reference a row of ``version`` is counted against (see the module docstring)."""
    settings = model.settings
    if version is None or version in settings.references:
        return DEFAULT_VERSION if version is None else version
    return version if settings.on_new_version == "capture" else DEFAULT_VERSION


def grid_fingerprint(monitor: ModelMonitor) -> str | None:
    """The fingerprint of rows binned against the monitor's installed reference."""
    profile = monitor.profile
    if profile is None:
        return None
    return model_fingerprint(monitor.config, monitor.performance, profile)


def monitor_codec(name: str, monitor: ModelMonitor) -> RowCodec | None:
    """The row codec of a monitor's installed reference (``None`` while capturing)."""
    profile = monitor.profile
    fingerprint = grid_fingerprint(monitor)
    if profile is None or fingerprint is None:
        return None
    return RowCodec(
        name, profile, monitor.numeric_columns, monitor.categorical_columns, fingerprint
    )


class ExpectedGrids:
    """Stage 2: per key the fingerprint its rows must carry, ``None`` while it captures
    (each reference hashed once: the profile is kept, so its id is never reused)."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[ReferenceProfile, str | None]] = {}

    def of(self, monitor: ModelMonitor) -> str | None:
        profile = monitor.profile
        if profile is None:
            return None
        known = self._known.get(id(profile))
        if known is None or known[0] is not profile:
            known = self._known[id(profile)] = (profile, grid_fingerprint(monitor))
        return known[1]

    def __call__(self, model: VersionedModel, key: str) -> str | None:
        if key == DEFAULT_VERSION:
            return self.of(model.default)
        monitor = model.monitors.get(key)
        if monitor is None and key in model.settings.references:
            monitor = model.new_monitor(key)
        return None if monitor is None else self.of(monitor)


def expected_grid(model: VersionedModel, key: str) -> str | None:
    """Stage 2: the fingerprint rows of ``key`` must carry, ``None`` while it captures."""
    return ExpectedGrids()(model, key)


def row_keys(model: VersionedModel, versions: Sequence[str | None]) -> list[str]:
    return [grid_key(model, v) for v in versions]


class VersionGrids:
    """Stage 1's grids of one versioned model by key (see the module docstring)."""

    def __init__(self, name: str, model: Model) -> None:
        if not isinstance(model, VersionedModel):
            raise TypeError(f"model {name!r} has no versions")
        self.name = name
        self.model = model
        self.fingerprint = raw_fingerprint(model)
        self.join = join_columns(model)
        self.codecs: dict[str, RowCodec] = {}
        #: The keys of the rows binned or sent so far.
        self.seen: set[str] = set()
        default = monitor_codec(name, model.default)
        if default is not None:
            self.codecs[DEFAULT_VERSION] = default
        for version in model.settings.references:
            codec = monitor_codec(name, model.new_monitor(version))
            if codec is not None:
                self.codecs[version] = codec

    @property
    def sends(self) -> str:
        """``binned`` once every reference seen so far has a grid here, else ``raw``."""
        return "binned" if self.seen and self.seen <= set(self.codecs) else "raw"

    def use(self, key: str, codec: RowCodec | None) -> None:
        """A captured reference read from the profiles topic (``None``: dropped)."""
        if codec is None:
            self.codecs.pop(key, None)
        else:
            self.codecs[key] = codec

    def rows(
        self,
        columns: ModelColumns,
        header_versions: Sequence[str | None] | None,
        source: np.ndarray,
        offset: np.ndarray,
        ranges: np.ndarray,
    ) -> RowBatch | None:
        """The batch binned, each row against its key's grid; ``None`` when a row's key
        has no grid here yet (the batch then goes raw)."""
        versions = list(with_versions(columns, header_versions).versions)
        keys = row_keys(self.model, versions)
        unique = sorted(set(keys))
        self.seen.update(unique)
        if any(k not in self.codecs for k in unique):
            return None
        rows = columns.rows
        codecs = [self.codecs[k] for k in unique]
        dtype = np.uint16 if any(c.dtype == np.uint16 for c in codecs) else np.uint8
        codes = np.zeros((rows, codecs[0].width), dtype)
        outer: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        key_of = np.array([unique.index(k) for k in keys], np.int64)
        for i, codec in enumerate(codecs):
            pick = np.flatnonzero(key_of == i)
            part = columns if pick.size == rows else columns.take(pick)
            cats = part.codes
            if cats is None:
                cats = codec.encode_categories(part.categorical)
            binned = codec.bin(np.asarray(part.numeric, np.float64), cats, part.ts,
                               source[pick], offset[pick], ranges)  # fmt: skip
            codes[pick] = binned.codes
            outer.append((pick[binned.outer_row], binned.outer_col, binned.outer_value))
        carried = Carried.of(columns, self.join or NONE, versions,
                             {k: c.fingerprint for k, c in zip(unique, codecs, strict=True)},
                             ids=self.join is not None)  # fmt: skip
        return RowBatch(
            self.name,
            self.fingerprint,
            np.ascontiguousarray(source, np.int32),
            np.ascontiguousarray(offset, np.int64),
            np.ascontiguousarray(columns.ts, np.float64),
            codes,
            np.concatenate([o[0] for o in outer]).astype(np.int32),
            np.concatenate([o[1] for o in outer]).astype(np.int32),
            np.concatenate([o[2] for o in outer]).astype(np.float64),
            np.ascontiguousarray(ranges, np.int64).reshape(-1, 3),
            carried=carried,
        )


def rejected_rows(
    model: VersionedModel, batch: RowBatch, expected: ExpectedGrids | None = None
) -> np.ndarray:
    """Stage 2: the rows of a binned batch whose key's grid is not the one expected."""
    grid = expected or ExpectedGrids()
    carried = batch.carried
    if carried is None or carried.version is None:
        return np.ones(batch.rows, bool)
    # Per version-table entry, then the rows without a version (index -1).
    keys = [grid_key(model, v) for v in [*carried.versions, None]]
    bad = []
    for key in keys:
        wanted = grid(model, key)
        bad.append(wanted is None or carried.grids.get(key) != wanted)
    found: np.ndarray = np.array(bad, bool)[carried.version]
    return found
