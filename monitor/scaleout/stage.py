"""Stage 2 of one model, without Kafka: row batches in, today's model fed in event-time order.

:class:`ModelStage` pairs a model (the same :class:`~monitor.model.model.Model` a single
process runs) with its :class:`~monitor.scaleout.codec.RowCodec` and
:class:`~monitor.scaleout.reorder.ReorderBuffer`: batches binned against another grid are
rejected, the rest deduplicated and ordered, and what the watermark releases is fed to the
model as binned columns (counted into the window's slots as they are, never rebuilt into
values and binned again), whose windows, evaluations, alerts and drift events are exactly a
single process's. Its checkpoint is the model's :class:`ModelState` with the
buffer's state under the ``reorder.`` prefix.

A model with a performance join gets binned rows that carry what the join reads
(:mod:`~monitor.scaleout.carried`): the windows count the codes, the join gets the carried
ids, labels and prediction values as one process decodes them.

A model with versions (:mod:`~monitor.scaleout.versions`) gets rows binned against each
row's version's grid, with their version, and raw rows while a version captures: rows of a
version whose grid is not the one its monitor installed are rejected (counted), the buffer
holds both forms, and each released run of one form is fed as one process decodes it.
:meth:`ModelStage.shared_profiles` names what the owner captured, for the profiles topic.

A model capturing its reference (:func:`~monitor.scaleout.profiles.switches`) starts on raw
rows. The release that completes the capture *switches* the stage: from then on it bins
against the captured profile, accepting binned rows with that profile's fingerprint and
still raw rows (a stage 1 that has not read the profile yet), which it bins on arrival; the
rows still buffered are binned at the switch. A restored stage whose model had captured
switches at once.

A model whose requests and responses are logged apart travels raw and never switches: its
owner pairs the released halves (:mod:`~monitor.scaleout.halves`) before feeding the model.

``partition_of`` decides which internal partition carries a model's rows: a stable hash,
so every stage-1 replica sends a model's rows to the same partition.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from monitor.config import CaptureReference
from monitor.ingest.decode import ModelColumns
from monitor.model.evaluation import ModelStep
from monitor.model.model import Model
from monitor.model.monitor import ModelMonitor
from monitor.model.state import ModelState
from monitor.model.versioned import VersionedModel
from monitor.scaleout.carried import Carried, JoinColumns, join_columns
from monitor.scaleout.codec import RowBatch, RowCodec
from monitor.scaleout.halves import PairStep, StagePairing, in_message_order
from monitor.scaleout.profiles import captured_codec, captured_monitor, switches
from monitor.scaleout.raw import RawColumns, raw_fingerprint
from monitor.scaleout.reorder import Marker, ReorderBuffer
from monitor.scaleout.versions import ExpectedGrids, grid_key, profile_key, rejected_rows
from monitor.stats import FeatureKind
from monitor.stats.binned import BinnedRows
from monitor.stats.profile import ReferenceProfile

__all__ = [
    "ModelStage",
    "StageStep",
    "bin_raw",
    "binned_rows",
    "codec_for",
    "partition_of",
    "raw_fingerprint",
    "raw_rows",
    "sends_raw",
]

REORDER = "reorder."


def partition_of(model: str, partitions: int) -> int:
    """The internal partition of a model's rows (CRC-32 of its name)."""
    return zlib.crc32(model.encode()) % partitions


def sends_raw(model: Model) -> bool:
    """Whether stage 1 forwards the model's decoded values (``raw``) instead of codes: a
    model with versions (one grid per version) or a captured reference (no grid until the
    owner has captured). A performance join alone does not: its rows are binned and carry
    what the join reads."""
    config = model.default.config
    return config.versions is not None or isinstance(config.reference, CaptureReference)


def raw_rows(
    name: str,
    fingerprint: str,
    columns: ModelColumns,
    header_versions: Sequence[str | None] | None,
    source: np.ndarray,
    offset: np.ndarray,
    ranges: np.ndarray,
) -> RowBatch:
    """A raw row batch of decoded columns (stage 1, models that :func:`sends_raw` or whose
    halves their owner pairs)."""
    if columns.halves is not None:
        columns, source, offset = in_message_order(columns, source, offset)
    rows = columns.rows
    empty = np.zeros(0, np.int32)
    return RowBatch(
        name,
        fingerprint,
        np.ascontiguousarray(source, np.int32),
        np.ascontiguousarray(offset, np.int64),
        np.ascontiguousarray(columns.ts, np.float64),
        np.zeros((rows, 0), np.uint8),
        empty,
        empty,
        np.zeros(0, np.float64),
        np.ascontiguousarray(ranges, np.int64).reshape(-1, 3),
        RawColumns.of(columns, header_versions),
    )


def codec_for(name: str, model: Model) -> RowCodec:
    """The row codec of a model with its reference installed (stage 1 and 2 alike)."""
    monitor = model.default
    profile = monitor.profile
    if profile is None:
        raise ValueError(f"model {name!r} has no reference installed: rows cannot be binned")
    return RowCodec(
        name, profile, monitor.numeric_columns, monitor.categorical_columns, monitor.fingerprint
    )


def binned_rows(
    codec: RowCodec,
    join: JoinColumns | None,
    columns: ModelColumns,
    source: np.ndarray,
    offset: np.ndarray,
    ranges: np.ndarray,
) -> RowBatch:
    """Decoded columns binned with ``codec``, carrying what ``join`` reads (stage 1)."""
    codes = columns.codes
    if codes is None:
        codes = codec.encode_categories(columns.categorical)
    rows = columns.rows
    batch = codec.bin(
        np.asarray(columns.numeric, np.float64).reshape(rows, len(codec.numeric_columns)),
        codes.reshape(rows, len(codec.categorical_columns)),
        columns.ts,
        source,
        offset,
        ranges,
    )
    return batch if join is None else replace(batch, carried=Carried.of(columns, join))


def bin_raw(codec: RowCodec, batch: RowBatch, join: JoinColumns | None = None) -> RowBatch:
    """A raw row batch binned as stage 1 would have binned it with ``codec``."""
    raw = batch.raw
    if raw is None:
        return batch
    columns = raw.columns(batch.ts)
    return binned_rows(codec, join, columns, batch.source, batch.offset, batch.ranges)


def _layout(monitor: ModelMonitor) -> tuple[np.ndarray, np.ndarray]:
    """Per numeric and categorical feature (configuration order, as every reference of the
    model is restricted to), its column in the rows' codes."""
    columns = monitor.numeric_columns + monitor.categorical_columns
    kinds = monitor.kinds.items()
    numeric = [columns.index(f) for f, k in kinds if k is FeatureKind.NUMERIC]
    categorical = [columns.index(f) for f, k in kinds if k is not FeatureKind.NUMERIC]
    return np.array(numeric, np.int64), np.array(categorical, np.int64)


@dataclass
class StageStep:
    """What one release did: rows fed, the model's step, the newest event time fed, and
    whether it completed a reference capture (the stage switched to binned rows)."""

    rows: int
    step: ModelStep
    last_event_time: float | None
    switched: bool = False
    #: What pairing did (a model whose halves are logged apart): rows fed are ``pairs.fed``.
    pairs: PairStep | None = None


class ModelStage:
    """One owned model's stage 2 (see the module docstring)."""

    def __init__(
        self,
        name: str,
        model: Model,
        sources: Iterable[int],
        *,
        allowed_lateness_seconds: float,
        max_buffered_rows: int,
        pairing: StagePairing | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.pairing = pairing
        # Halves travel raw: their other half (and so their values) is unknown until paired.
        self.raw = pairing is not None or sends_raw(model)
        self.switches = pairing is None and switches(model)
        #: What binned rows carry for the model's performance join (``None``: nothing).
        self.join = join_columns(model)
        self.codec: RowCodec | None = None
        #: The captured profile the stage bins against once switched.
        self.captured: ReferenceProfile | None = None
        # Raw rows are taken from a stage 1 that sends them: the models that start raw,
        # and a join's model (an older stage 1; such checkpoints hold raw rows too).
        self.raw_fingerprint: str | None = None
        if self.raw or self.join is not None:
            self.raw_fingerprint = raw_fingerprint(model)
        self._shape = (len(model.default.numeric_columns), len(model.default.categorical_columns))
        #: A model with versions: rows binned against each version's grid, or raw.
        self.versioned = isinstance(model, VersionedModel)
        self._grids = ExpectedGrids()
        self._shared = 0
        if self.versioned:
            self._num_cols, self._cat_cols = _layout(model.default)
        if self.raw:
            fingerprint = self.raw_fingerprint
            assert fingerprint is not None  # noqa: S101 - set just above
            width = sum(self._shape) if self.versioned else 0
        else:
            codec = codec_for(name, model)
            self._use(codec)
            fingerprint, width = codec.fingerprint, codec.width
        self.fingerprint = fingerprint
        self.buffer = ReorderBuffer(
            name,
            fingerprint,
            width,
            sources,
            allowed_lateness_seconds=allowed_lateness_seconds,
            max_buffered_rows=max_buffered_rows,
        )
        if self.switches and model.default.profile is not None:
            self._switch()

    def _use(self, codec: RowCodec) -> None:
        self.codec = codec
        # Per feature of the window's profile, its column in the rows' codes.
        profile = self.model.default.profile
        assert profile is not None  # noqa: S101 - a codec exists only with a reference
        columns = codec.numeric_columns + codec.categorical_columns
        self._num_cols = np.array([columns.index(f) for f in profile.numeric_names], np.int64)
        self._cat_cols = np.array([columns.index(f) for f in profile.categorical_names], np.int64)

    def _switch(self) -> None:
        """The capture is complete: bin against its profile from now on."""
        monitor = self.model.default
        profile = monitor.profile
        assert profile is not None  # noqa: S101 - called once the reference is installed
        codec = captured_codec(self.name, monitor, profile)
        self._use(codec)
        self.captured = profile
        self.fingerprint = codec.fingerprint
        join = self.join
        self.buffer.rebin(codec.fingerprint, codec.width, lambda batch: bin_raw(codec, batch, join))

    def _fits(self, batch: RowBatch) -> bool:
        raw = batch.raw
        if raw is None and self.versioned:
            carried = batch.carried
            return (
                batch.fingerprint == self.raw_fingerprint
                and carried is not None
                and carried.version is not None
                and batch.codes.shape[1] == sum(self._shape)
            )
        if raw is None:
            return (
                self.codec is not None
                and batch.fingerprint == self.fingerprint
                and (batch.carried is None) == (self.join is None)
                and self.codec.fits(batch)
            )
        return (
            batch.fingerprint == self.raw_fingerprint
            and (raw.numeric.shape[1], raw.categorical.shape[1]) == self._shape
        )

    def push(self, batch: RowBatch) -> bool:
        """Buffer a row batch; False (and counted rejected) when binned on another grid.
        A switched stage bins raw rows on arrival."""
        if not self._fits(batch):
            self.buffer.reject(batch.rows)
            return False
        if self.versioned and batch.raw is None:
            # Each version's rows against the grid its monitor has installed.
            assert isinstance(self.model, VersionedModel)  # noqa: S101 - self.versioned
            bad = rejected_rows(self.model, batch, self._grids)
            if bad.any():
                self.buffer.reject(int(bad.sum()))
                self.buffer.push(batch.take(np.flatnonzero(~bad)))  # its ranges count
                return False
        if batch.raw is not None and self.codec is not None:
            batch = bin_raw(self.codec, batch, self.join)
        self.buffer.push(batch)
        return True

    def mark(self, marker: Marker) -> None:
        self.buffer.mark(marker)

    def step(self) -> StageStep:
        """Feed the model what the watermark releases."""
        rows = self.buffer.release()
        if not rows.rows:
            return StageStep(0, ModelStep([], []), None)
        n = rows.rows
        if self.versioned and self.pairing is None:
            return self._step_versioned(rows)
        if rows.raw is not None:
            # Today's feed on the decoded values: routing by version, capture, the join.
            columns = rows.raw.columns(rows.ts)
            pairs = None
            if self.pairing is not None:
                columns, pairs = self.pairing.pair(columns)
                if not columns.rows:
                    return StageStep(n, ModelStep([], []), None, pairs=pairs)
            step = self.model.feed(columns)
            switched = (
                self.switches and self.codec is None and self.model.default.profile is not None
            )
            if switched:
                self._switch()
            last = float(columns.ts.max())
            return StageStep(n, step, last, switched, pairs)
        # The codes go to the window as they are (counted, not rebuilt and binned again).
        binned = BinnedRows(
            rows.codes, self._num_cols, self._cat_cols, rows.outer_row, rows.outer_col,
            rows.outer_value,
        )  # fmt: skip
        if rows.carried is not None and self.join is not None:
            # The join's values as decoded, every other value missing (the codes count).
            columns = replace(rows.carried.columns(rows.ts), binned=binned)
        else:
            columns = ModelColumns(
                numeric=np.broadcast_to(np.float64(np.nan), (n, len(self._num_cols))),
                categorical=[],
                ts=rows.ts,
                ids=[None] * n,
                msg_index=np.zeros(n, np.int64),
                binned=binned,
            )
        return StageStep(n, self.model.feed(columns), float(rows.ts.max()))

    def _step_versioned(self, rows: RowBatch) -> StageStep:
        """Feed the released rows, each run of one form as one process would decode it
        (binned runs: their codes plus what they carry)."""
        steps = []
        for binned, part in rows.runs():
            if not binned:
                assert part.raw is not None  # noqa: S101 - raw runs hold their values
                steps.append(self.model.feed(part.raw.columns(part.ts)))
                continue
            codes = BinnedRows(
                part.codes, self._num_cols, self._cat_cols, part.outer_row, part.outer_col,
                part.outer_value,
            )  # fmt: skip
            if part.carried is not None:
                columns = part.carried.columns(part.ts)
            else:
                assert part.raw is not None  # noqa: S101 - a mixed batch holds every row
                columns = part.raw.columns(part.ts)
            columns = self._ready(replace(columns, binned=codes))
            steps.append(self.model.feed(columns))
        step = ModelStep(
            [e for s in steps for e in s.evaluations],
            [e for s in steps for e in s.performance],
            sum(s.ignored for s in steps),
        )
        # A reference captured by this release is to be shared (stage 1 then bins it).
        shared = len(self.shared_profiles())
        switched, self._shared = shared > self._shared, shared
        return StageStep(rows.rows, step, float(rows.ts.max()), switched)

    def _ready(self, columns: ModelColumns) -> ModelColumns:
        """Binned rows whose version's monitor has no reference now (captured again after
        ``max_versions`` evicted it) are dropped, counted rejected: codes cannot feed a
        capture."""
        model = self.model
        assert isinstance(model, VersionedModel)  # noqa: S101 - versioned stages only
        versions = set(columns.versions)
        if all(self._grids(model, grid_key(model, v)) is not None for v in versions):
            return columns
        keep = np.fromiter(
            (self._grids(model, grid_key(model, v)) is not None for v in columns.versions),
            bool,
            count=columns.rows,
        )
        self.buffer.reject(int(columns.rows - keep.sum()))
        return columns.take(np.flatnonzero(keep))

    def shared_profiles(self) -> dict[str, tuple[ReferenceProfile, str]]:
        """Per profiles-topic key, the references this stage captured from the stream and
        the fingerprint of rows binned against them."""
        model = self.model
        if not isinstance(model, VersionedModel):
            captured = self.captured
            return {} if captured is None else {self.name: (captured, self.fingerprint)}
        found = {}
        for key, monitor in [("", model.default), *model.monitors.items()]:
            profile, fingerprint = monitor.profile, self._grids.of(monitor)
            if profile is None or fingerprint is None or key in found:
                continue
            if captured_monitor(model, key) is not None:
                found[profile_key(self.name, key)] = (profile, fingerprint)
        return found

    # -- checkpoints -------------------------------------------------------------------

    def state(self) -> ModelState:
        """The model's state with the buffer's under ``reorder.``."""
        state = self.model.state([])
        scalars, arrays = self.buffer.state()
        state.scalars[REORDER.rstrip(".")] = scalars
        state.arrays.update({REORDER + k: v for k, v in arrays.items()})
        if self.pairing is not None:
            self.pairing.put(state.scalars, state.arrays)
        return state

    def restore(self, state: ModelState) -> None:
        """Resume model and buffer; ``CheckpointError`` when either does not fit."""
        scalars, arrays = dict(state.scalars), dict(state.arrays)
        if self.pairing is not None:
            scalars, arrays = self.pairing.take(scalars, arrays)
        buffer_scalars = scalars.pop(REORDER.rstrip("."), None)
        buffered = {k[len(REORDER) :]: v for k, v in arrays.items() if k.startswith(REORDER)}
        arrays = {k: v for k, v in arrays.items() if not k.startswith(REORDER)}
        self.model.restore(
            ModelState(state.model, state.fingerprint, state.partitions, scalars, arrays)
        )
        codec = self.codec
        if self.switches and codec is None and self.model.default.profile is not None:
            self._switch()
            codec = self.codec
        if buffer_scalars is None:
            self._shared = len(self.shared_profiles())
            return
        raw = self.raw_fingerprint
        if codec is not None and raw is not None and buffer_scalars.get("fingerprint") == raw:
            # Raw rows buffered before the switch (a checkpoint of an older driftmon).
            self.buffer.rebin(raw, 0, lambda batch: batch)
            self.buffer.restore(buffer_scalars, buffered)
            join = self.join
            self.buffer.rebin(
                codec.fingerprint, codec.width, lambda batch: bin_raw(codec, batch, join)
            )
        else:
            self.buffer.restore(buffer_scalars, buffered)
        self._shared = len(self.shared_profiles())
