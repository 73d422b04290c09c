"""Stage 2 of one model, without Kafka: row batches in, today's model fed in event-time order.

:class:`ModelStage` pairs a model (the same :class:`~monitor.model.model.Model` a single
process runs) with its :class:`~monitor.scaleout.codec.RowCodec` and
:class:`~monitor.scaleout.reorder.ReorderBuffer`: batches binned against another grid are
rejected, the rest deduplicated and ordered, and what the watermark releases is fed to the
model as binned columns (counted into the window's slots as they are, never rebuilt into
values and binned again), whose windows, evaluations, alerts and drift events are exactly a
single process's. Its checkpoint is the model's :class:`ModelState` with the
buffer's state under the ``reorder.`` prefix.

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
from dataclasses import dataclass

import numpy as np

from monitor.config import CaptureReference
from monitor.ingest.decode import ModelColumns
from monitor.model.evaluation import ModelStep
from monitor.model.model import Model
from monitor.model.state import ModelState
from monitor.scaleout.codec import RowBatch, RowCodec
from monitor.scaleout.halves import PairStep, StagePairing, in_message_order
from monitor.scaleout.profiles import captured_codec, switches
from monitor.scaleout.raw import RawColumns, raw_fingerprint
from monitor.scaleout.reorder import Marker, ReorderBuffer
from monitor.stats.binned import BinnedRows
from monitor.stats.profile import ReferenceProfile

__all__ = [
    "ModelStage",
    "StageStep",
    "bin_raw",
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
    model with versions (one grid per version), a performance join (raw predictions,
    labels and ids) or a captured reference (no grid until the owner has captured)."""
    config = model.default.config
    return (
        config.versions is not None
        or config.performance is not None
        or isinstance(config.reference, CaptureReference)
    )


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


def bin_raw(codec: RowCodec, batch: RowBatch) -> RowBatch:
    """A raw row batch binned as stage 1 would have binned it with ``codec``."""
    raw = batch.raw
    if raw is None:
        return batch
    columns = raw.columns(batch.ts)
    codes = columns.codes
    if codes is None:
        codes = codec.encode_categories(columns.categorical)
    return codec.bin(
        raw.numeric.reshape(batch.rows, len(codec.numeric_columns)),
        codes.reshape(batch.rows, len(codec.categorical_columns)),
        batch.ts,
        batch.source,
        batch.offset,
        batch.ranges,
    )


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
        self.raw = pairing is not None or sends_raw(model)
        self.switches = pairing is None and switches(model)
        self.codec: RowCodec | None = None
        #: The captured profile the stage bins against once switched.
        self.captured: ReferenceProfile | None = None
        self.raw_fingerprint: str | None = None
        if self.raw:
            fingerprint = self.raw_fingerprint = raw_fingerprint(model)
            width = 0
            self._shape = (
                len(model.default.numeric_columns),
                len(model.default.categorical_columns),
            )
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
        self.buffer.rebin(codec.fingerprint, codec.width, lambda batch: bin_raw(codec, batch))

    def _fits(self, batch: RowBatch) -> bool:
        raw = batch.raw
        if raw is None:
            return (
                self.codec is not None
                and batch.fingerprint == self.fingerprint
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
        if batch.raw is not None and self.codec is not None:
            batch = bin_raw(self.codec, batch)
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
        columns = ModelColumns(
            numeric=np.broadcast_to(np.float64(np.nan), (n, len(self._num_cols))),
            categorical=[],
            ts=rows.ts,
            ids=[None] * n,
            msg_index=np.zeros(n, np.int64),
            binned=binned,
        )
        return StageStep(n, self.model.feed(columns), float(rows.ts.max()))

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
            return
        raw = self.raw_fingerprint
        if codec is not None and raw is not None and buffer_scalars.get("fingerprint") == raw:
            # Raw rows buffered before the switch (a checkpoint of an older driftmon).
            self.buffer.rebin(raw, 0, lambda batch: batch)
            self.buffer.restore(buffer_scalars, buffered)
            self.buffer.rebin(codec.fingerprint, codec.width, lambda batch: bin_raw(codec, batch))
        else:
            self.buffer.restore(buffer_scalars, buffered)
