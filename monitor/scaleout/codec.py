"""Binned rows: what stage 1 sends stage 2 for one model, compact and exact.

A :class:`RowBatch` holds one model's rows of one stage-1 batch as columns: per row its
source (``topic index << 20 | partition``), source offset and event time, and one small
integer code per monitored column (numeric columns: ``1 + bin`` of the reference profile's
grid; categorical: ``1 + category code``; ``0`` is missing). A numeric value in an outer
bin (below the first edge or at or above the last) is *out of the grid*: the window's
Wasserstein support needs its value, so it travels alongside, sparse, as
(row, column, value). Every other value is rebuilt as its bin's left edge, which falls in
the same bin, so the window's counts and every statistic equal those of the raw values
(only the outer bins' extremes are read by any statistic: ``stats.kernels._w1_shared``).

``ranges`` lists, per source, the offsets the stage-1 batch covered (first, last): stage 2
deduplicates by them exactly. ``fingerprint`` is the model's configuration and reference
digest: a batch binned against another grid is rejected, never mixed in.

Wire format (:func:`encode_rows` / :func:`decode_rows`): ``DMR1``, a 4-byte header length,
a JSON header, then the arrays' raw little-endian bytes. About 18 bytes a row plus one per
column, against ~300 bytes of JSON per event.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from monitor.errors import DriftmonError
from monitor.scaleout.carried import CARRIED_ARRAYS, Carried, carried_from, carried_sizes
from monitor.scaleout.raw import RAW_ARRAYS, RawColumns, raw_from, raw_sizes
from monitor.stats.binned import codes_below
from monitor.stats.profile import CategoricalProfile, NumericProfile, ReferenceProfile

__all__ = [
    "CodecError",
    "RowBatch",
    "RowCodec",
    "decode_rows",
    "encode_rows",
    "source_id",
    "source_name",
]

MAGIC = b"DMR1"
PARTITION_BITS = 20


class CodecError(DriftmonError):
    """A message on the internal topic is not a row batch driftmon can read."""


def source_id(topic_index: int, partition: int) -> int:
    """The one integer a source partition is known by (sorts like (topic, partition))."""
    return (topic_index << PARTITION_BITS) | partition


def source_name(source: int, topics: Sequence[str]) -> str:
    """``topic/partition`` of a source id, for logs and ``/status``."""
    index, partition = source >> PARTITION_BITS, source & ((1 << PARTITION_BITS) - 1)
    topic = topics[index] if index < len(topics) else f"topic#{index}"
    return f"{topic}/{partition}"


@dataclass(frozen=True)
class RowBatch:
    """One model's binned rows (see the module docstring)."""

    model: str
    fingerprint: str
    source: np.ndarray  # int32, per row
    offset: np.ndarray  # int64, per row
    ts: np.ndarray  # float64, per row
    codes: np.ndarray  # uint8 or uint16, rows x columns (numeric columns, then categorical)
    outer_row: np.ndarray  # int32
    outer_col: np.ndarray  # int32
    outer_value: np.ndarray  # float64
    ranges: np.ndarray  # int64, n x 3: source, first offset, last offset covered
    # The decoded values themselves, for models one grid cannot bin (``raw``); codes are
    # then rows x 0.
    raw: RawColumns | None = None
    # Binned rows of a model with a performance join or versions: per row what the join
    # and the version routing read.
    carried: Carried | None = None
    # Rows of both forms (a versioned model's buffer): per row whether it is binned;
    # ``raw`` then holds every row (binned rows: the carried values, the rest missing).
    mask: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return int(self.ts.shape[0])

    def take(self, rows: np.ndarray) -> RowBatch:
        """The given rows (int64 indices, in the order given); ranges are kept."""
        rows = np.asarray(rows, np.int64)
        outer_row, outer_col, outer_value = self.outer_row, self.outer_col, self.outer_value
        if outer_row.size:
            position = np.full(self.rows, -1, np.int64)
            position[rows] = np.arange(rows.shape[0])
            moved = position[outer_row]
            keep = moved >= 0
            outer_row = moved[keep].astype(np.int32)
            outer_col, outer_value = outer_col[keep], outer_value[keep]
        return RowBatch(
            self.model,
            self.fingerprint,
            np.take(self.source, rows),
            np.take(self.offset, rows),
            np.take(self.ts, rows),
            np.take(self.codes, rows, axis=0),
            outer_row,
            outer_col,
            outer_value,
            self.ranges,
            None if self.raw is None else self.raw.take(rows),
            None if self.carried is None else self.carried.take(rows),
            None if self.mask is None else self.mask[rows],
        )

    @staticmethod
    def concat(parts: Sequence[RowBatch]) -> RowBatch:
        """The rows of ``parts`` one after the other (same model, same fingerprint)."""
        if len(parts) == 1:
            return parts[0]
        if len({_form(p) for p in parts}) > 1:
            parts = [_mixed(p, max(q.codes.shape[1] for q in parts)) for p in parts]
        first = parts[0]
        shift = np.cumsum([0] + [p.rows for p in parts[:-1]])
        width = max(p.codes.shape[1] for p in parts)
        dtype = np.uint16 if any(p.codes.dtype == np.uint16 for p in parts) else np.uint8
        return RowBatch(
            first.model,
            first.fingerprint,
            np.concatenate([p.source for p in parts]),
            np.concatenate([p.offset for p in parts]),
            np.concatenate([p.ts for p in parts]),
            np.concatenate([p.codes.astype(dtype, copy=False) for p in parts]).reshape(
                -1 if width else sum(p.rows for p in parts), width
            ),
            np.concatenate([p.outer_row + s for p, s in zip(parts, shift, strict=True)]).astype(
                np.int32
            ),
            np.concatenate([p.outer_col for p in parts]),
            np.concatenate([p.outer_value for p in parts]),
            np.concatenate([p.ranges for p in parts]).reshape(-1, 3),
            None
            if first.raw is None
            else RawColumns.concat([p.raw for p in parts if p.raw is not None]),
            None
            if first.carried is None
            else Carried.concat([p.carried for p in parts if p.carried is not None]),
            None
            if first.mask is None
            else np.concatenate([p.mask for p in parts if p.mask is not None]),
        )

    def runs(self) -> list[tuple[bool, RowBatch]]:
        """The batch cut where rows change form: per part whether its rows are binned."""
        mask = self.mask
        if mask is None:
            return [(self.raw is None, self)]
        cuts = np.flatnonzero(mask[1:] != mask[:-1]) + 1
        bounds = [0, *cuts.tolist(), self.rows]
        return [
            (bool(mask[a]), self.take(np.arange(a, b)))
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]


def _form(batch: RowBatch) -> str:
    if batch.mask is not None:
        return "mixed"
    return "raw" if batch.raw is not None else "binned"


def _mixed(batch: RowBatch, width: int) -> RowBatch:
    """A batch in the mixed form (every row raw, codes for the binned ones, a mask)."""
    if batch.mask is not None:
        return batch
    rows = batch.rows
    if batch.raw is not None:  # raw rows: codes all missing
        return replace(batch, codes=np.zeros((rows, width), np.uint8), mask=np.zeros(rows, bool))
    carried = batch.carried
    if carried is None:
        raise ValueError("binned rows without carried values cannot mix with raw ones")
    raw = RawColumns.of(carried.columns(batch.ts, every_column=True), None)
    return replace(batch, raw=raw, carried=None, mask=np.ones(rows, bool))


def empty_rows(model: str, fingerprint: str, width: int) -> RowBatch:
    return RowBatch(
        model,
        fingerprint,
        np.zeros(0, np.int32),
        np.zeros(0, np.int64),
        np.zeros(0, np.float64),
        np.zeros((0, width), np.uint8),
        np.zeros(0, np.int32),
        np.zeros(0, np.int32),
        np.zeros(0, np.float64),
        np.zeros((0, 3), np.int64),
    )


class RowCodec:
    """Bins one model's columns against its reference grid, and rebuilds them.

    ``numeric_columns``/``categorical_columns`` are the decoded columns' order (the
    model's config order); every one must be a feature of ``profile``.
    """

    def __init__(
        self,
        model: str,
        profile: ReferenceProfile,
        numeric_columns: Sequence[str],
        categorical_columns: Sequence[str],
        fingerprint: str,
    ) -> None:
        self.model = model
        self.fingerprint = fingerprint
        self.numeric_columns = list(numeric_columns)
        self.categorical_columns = list(categorical_columns)
        numeric: list[NumericProfile] = []
        categorical: list[CategoricalProfile] = []
        for name in numeric_columns:
            feature = profile.features.get(name)
            if not isinstance(feature, NumericProfile):
                raise ValueError(f"column {name!r} is not a numeric feature of the profile")
            numeric.append(feature)
        for name in categorical_columns:
            feature = profile.features.get(name)
            if not isinstance(feature, CategoricalProfile):
                raise ValueError(f"column {name!r} is not a categorical feature of the profile")
            categorical.append(feature)
        self._edges = [f.edges for f in numeric]
        self._categorical = categorical
        widths = [f.edges.size + 2 for f in numeric] + [len(f.categories) + 3 for f in categorical]
        self.width = len(widths)
        self._widths = np.array(widths, np.int64)
        self.dtype = np.uint8 if max(widths, default=1) <= 256 else np.uint16
        # Per numeric column, the value each code is rebuilt as: NaN for missing, the left
        # edge of an inner bin, NaN for the outer bins (their values travel alongside).
        most = max((f.edges.size + 2 for f in numeric), default=1)
        self._rebuild = np.full((len(numeric), most), math.nan)
        for j, edges in enumerate(self._edges):
            self._rebuild[j, 2 : edges.size + 1] = edges[:-1]

    # -- stage 1 ---------------------------------------------------------------------

    def bin(
        self,
        numeric: np.ndarray,
        codes: np.ndarray,
        ts: np.ndarray,
        source: np.ndarray,
        offset: np.ndarray,
        ranges: np.ndarray,
    ) -> RowBatch:
        """Rows of decoded columns (numeric: rows x numeric columns float64, NaN missing;
        codes: rows x categorical columns int64, -1 missing) as a :class:`RowBatch`."""
        rows = int(ts.shape[0])
        out = np.zeros((rows, self.width), self.dtype)
        outer_rows: list[np.ndarray] = []
        outer_cols: list[np.ndarray] = []
        outer_values: list[np.ndarray] = []
        for j, edges in enumerate(self._edges):
            values = numeric[:, j]
            bins = np.searchsorted(edges, values, side="right")
            present = ~np.isnan(values)
            out[:, j] = np.where(present, bins + 1, 0)
            outer = np.flatnonzero(present & ((bins == 0) | (bins == edges.size)))
            if outer.size:
                outer_rows.append(outer.astype(np.int32))
                outer_cols.append(np.full(outer.size, j, np.int32))
                outer_values.append(values[outer])
        first = len(self._edges)
        for j in range(len(self._categorical)):
            out[:, first + j] = codes[:, j] + 1
        return RowBatch(
            self.model,
            self.fingerprint,
            np.ascontiguousarray(source, np.int32),
            np.ascontiguousarray(offset, np.int64),
            np.ascontiguousarray(ts, np.float64),
            out,
            _cat(outer_rows, np.int32),
            _cat(outer_cols, np.int32),
            _cat(outer_values, np.float64),
            np.ascontiguousarray(ranges, np.int64).reshape(-1, 3),
        )

    def encode_categories(self, categorical: Sequence[Sequence[str | None]]) -> np.ndarray:
        """Category strings (per categorical column) as the profile's int64 codes."""
        rows = len(categorical[0]) if categorical else 0
        codes = np.empty((rows, len(self._categorical)), np.int64)
        for j, feature in enumerate(self._categorical):
            codes[:, j] = feature.encode(categorical[j])
        return codes

    # -- stage 2 ---------------------------------------------------------------------

    def fits(self, batch: RowBatch) -> bool:
        """Whether every code of ``batch`` is one of this grid's (a batch that passed the
        fingerprint check but not this one is corrupt)."""
        if batch.codes.shape[1] != self.width:
            return False
        return codes_below(batch.codes, self._widths)

    def rebuild(self, batch: RowBatch) -> tuple[np.ndarray, np.ndarray]:
        """``(numeric float64, codes int64)`` in column order, binning exactly as sent."""
        n_num = len(self._edges)
        codes = batch.codes.astype(np.int64)
        numeric = np.empty((batch.rows, n_num), np.float64)
        for j in range(n_num):
            numeric[:, j] = self._rebuild[j, codes[:, j]]
        if batch.outer_row.size:
            numeric[batch.outer_row, batch.outer_col] = batch.outer_value
        return numeric, codes[:, n_num:] - 1


def _cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


_ARRAYS = (
    ("source", np.int32),
    ("offset", np.int64),
    ("ts", np.float64),
    ("outer_row", np.int32),
    ("outer_col", np.int32),
    ("outer_value", np.float64),
    ("ranges", np.int64),
)


def _read_arrays(
    data: bytes, at: int, specs: Sequence[tuple[str, Any]], sizes: Mapping[str, int]
) -> tuple[dict[str, np.ndarray], int]:
    """The arrays ``specs`` names, ``sizes[name]`` elements each, read one after another
    from ``data`` at ``at`` (copies: the bytes are a message's); and where they end."""
    arrays: dict[str, np.ndarray] = {}
    for name, kind in specs:
        arrays[name] = np.frombuffer(data, kind, sizes[name], at).copy()
        at += sizes[name] * np.dtype(kind).itemsize
    return arrays, at


def encode_rows(batch: RowBatch) -> bytes:
    """The wire bytes of a row batch."""
    header = {
        "model": batch.model,
        "fingerprint": batch.fingerprint,
        "rows": batch.rows,
        "width": int(batch.codes.shape[1]),
        "dtype": "u2" if batch.codes.dtype == np.uint16 else "u1",
        "outer": int(batch.outer_row.shape[0]),
        "ranges": int(batch.ranges.shape[0]),
    }
    if batch.raw is not None:
        header["raw"] = batch.raw.header()
    if batch.carried is not None:
        header["carried"] = batch.carried.header()
    head = json.dumps(header, separators=(",", ":")).encode()
    parts = [MAGIC, struct.pack("<I", len(head)), head]
    parts += [
        np.ascontiguousarray(getattr(batch, name), dtype).tobytes() for name, dtype in _ARRAYS
    ]
    parts.append(np.ascontiguousarray(batch.codes).tobytes())
    if batch.raw is not None:
        arrays = batch.raw.arrays()
        parts += [np.ascontiguousarray(arrays[name], kind).tobytes() for name, kind in RAW_ARRAYS]
    if batch.carried is not None:
        arrays = batch.carried.arrays()
        parts += [
            np.ascontiguousarray(arrays[name], kind).tobytes()
            for name, kind in CARRIED_ARRAYS
            if name in arrays
        ]
    return b"".join(parts)


def decode_rows(data: bytes) -> RowBatch:
    """A row batch from its wire bytes; ``CodecError`` for anything else."""
    if len(data) < 8 or data[:4] != MAGIC:
        raise CodecError("not a driftmon row batch (bad magic)")
    (size,) = struct.unpack_from("<I", data, 4)
    try:
        header: dict[str, Any] = json.loads(data[8 : 8 + size])
        rows, outer, ranges = int(header["rows"]), int(header["outer"]), int(header["ranges"])
        width = int(header["width"])
        dtype = np.uint16 if header["dtype"] == "u2" else np.uint8
        counts = {
            "source": rows,
            "offset": rows,
            "ts": rows,
            "outer_row": outer,
            "outer_col": outer,
            "outer_value": outer,
            "ranges": ranges * 3,
        }
        at = 8 + size
        arrays, at = _read_arrays(data, at, _ARRAYS, counts)
        codes = np.frombuffer(data, dtype, rows * width, at).reshape(rows, width).copy()
        at += codes.nbytes
        raw = None
        if "raw" in header:
            found, at = _read_arrays(data, at, RAW_ARRAYS, raw_sizes(header["raw"], rows))
            raw = raw_from(header["raw"], found, rows)
        carried = None
        if "carried" in header:
            sizes = carried_sizes(header["carried"], rows)
            extra, at = _read_arrays(data, at, CARRIED_ARRAYS, sizes)
            carried = carried_from(header["carried"], extra, rows)
        if at != len(data):
            raise CodecError("row batch has trailing bytes")
    except (KeyError, TypeError, ValueError) as exc:
        raise CodecError(f"row batch is corrupt: {exc}") from exc
    if outer and (arrays["outer_row"].max() >= rows or arrays["outer_col"].max() >= width):
        raise CodecError("row batch is corrupt: out-of-grid value outside the rows")
    return RowBatch(
        str(header["model"]),
        str(header["fingerprint"]),
        arrays["source"],
        arrays["offset"],
        arrays["ts"],
        codes,
        arrays["outer_row"],
        arrays["outer_col"],
        arrays["outer_value"],
        arrays["ranges"].reshape(-1, 3),
        raw,
        carried,
    )
