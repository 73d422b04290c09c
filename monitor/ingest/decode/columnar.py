"""The columnar path: the Numba scanner (:mod:`~monitor.ingest.decode.scanner`) run over a
batch, and its scan results turned into :class:`ModelColumns`.

Models whose schema carries category codes (the pipeline sets them once a model's
reference is known) are read this way: no Python object per event or value. Every message
the scanner is not sure about is passed on to the object paths, which give exactly the same
columns (tests/unit/test_jsonscan.py checks this).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from monitor.ingest.decode import scanner as jsonscan
from monitor.ingest.decode.block import MessageBlock
from monitor.ingest.decode.columns import ModelColumns
from monitor.ingest.decode.schema import DecodeSchema, KafkaTimes, ModelSchema, kafka_times

__all__ = ["ColumnarScanner", "scanner_for"]

_HELPER: list[ThreadPoolExecutor] = []
_HELPER_LOCK = threading.Lock()
_SCANNERS: dict[tuple[object, ...], ColumnarScanner | None] = {}
# The schema last asked for and its scanner.
_LAST: list[tuple[DecodeSchema, ColumnarScanner | None] | None] = [None]
_PRED_KINDS = {
    None: jsonscan.PRED_NONE,
    "numeric": jsonscan.PRED_NUMERIC,
    "categorical": jsonscan.PRED_CATEGORICAL,
    "probabilities": jsonscan.PRED_PROBABILITIES,
}


def scanner_for(schema: DecodeSchema) -> ColumnarScanner | None:
    """The scanner of the schema's models with codes (cached by content); None if none."""
    last = _LAST[0]  # one read of one tuple: safe between threads
    if last is not None and last[0] is schema:  # the pipeline's cached schema, batch after
        return last[1]  # batch: no hashing of every model's schema each time
    key = (tuple(schema.models.items()), schema.fields, schema.bound_model)
    found = _scanner_by_content(key, schema)
    _LAST[0] = (schema, found)
    return found


def _scanner_by_content(key: tuple[object, ...], schema: DecodeSchema) -> ColumnarScanner | None:
    try:
        return _SCANNERS[key]
    except KeyError:
        pass
    if len(_SCANNERS) >= 64:
        _SCANNERS.clear()
    fields = schema.fields
    top = tuple(getattr(fields, name) for name in jsonscan.TOP_FIELDS)
    coded = [ms for ms in schema.models.values() if ms.codes is not None]
    bound = schema.bound_model
    scanner = None
    # Colliding field names, or a bound model without codes, keep the object paths.
    if coded and len(set(top)) == len(top) and (bound is None or bound in schema.models):
        if bound is None or schema.models[bound].codes is not None:
            models = coded if bound is None else [schema.models[bound]]
            scanner = ColumnarScanner(schema, models, top)
    _SCANNERS[key] = scanner
    return scanner


class ColumnarScanner:
    """The scan tables of one decode schema and the step from scan results to columns."""

    def __init__(self, schema: DecodeSchema, models: list[ModelSchema], top: tuple[str, ...]):
        self.names = [ms.name for ms in models]
        self.max_bytes = schema.max_message_bytes
        self.widths = [(len(ms.numeric_names), len(ms.categorical_names)) for ms in models]
        bound = 0 if schema.bound_model is not None else -1
        self.tables = jsonscan.build_tables([_scan_model(ms) for ms in models], top, bound)

    def scan(
        self, payloads: Sequence[bytes | None], kafka_ts: KafkaTimes
    ) -> tuple[dict[str, ModelColumns], np.ndarray]:
        """Columns of the messages the scanner reads, and the indices of the others."""
        n = len(payloads)
        if isinstance(payloads, MessageBlock):  # read in place: no bytes joined
            buf, starts, ends = payloads.buf, payloads.starts, payloads.ends
        else:
            buf, starts, ends = _joined(payloads)
        oversized = ends - starts > self.max_bytes
        if oversized.any():  # scanned as empty, so passed on to be rejected
            ends = np.where(oversized, starts, ends)
        result = jsonscan.scan_messages(self.tables, buf, starts, ends, scan_helper())
        ok = result.status == 0
        out: dict[str, ModelColumns] = {}
        everything = bool(ok.all())
        if len(self.names) == 1:
            if everything or ok.any():
                rows = np.arange(n, dtype=np.int64) if everything else np.flatnonzero(ok)
                whole = result if everything else None
                out[self.names[0]] = self._columns(0, rows, result, kafka_ts, whole=whole)
            return out, np.flatnonzero(~ok)
        # One pass over the batch for every model: the rows sorted (stably) by model, each
        # model's a contiguous run; models without rows are never visited. The arrays are
        # gathered in that order once, so a model's columns are slices of them (no numpy
        # work per model that does not depend on its rows).
        model = np.where(ok, result.model, len(self.names))
        # A stable sort of small integers is a radix sort in numpy: 16x faster than int64's.
        small = model.astype(np.uint16) if len(self.names) < 0xFFFF else model
        order = np.argsort(small, kind="stable")
        counts = np.bincount(model, minlength=len(self.names) + 1)
        unknown = np.bincount(model, weights=result.unknown, minlength=len(self.names) + 1)
        stops = np.cumsum(counts).tolist()
        kept = order[: stops[-2]] if len(stops) > 1 else order[:0]
        ts = result.ts.take(kept)
        missing = np.isnan(ts)
        if missing.any():  # event times: once for the batch, not per model
            ts[missing] = kafka_times(kafka_ts)[kept[missing]]
        gathered = _Gathered(
            result.numeric.take(kept, axis=0), result.codes.take(kept, axis=0), ts, kept
        )
        sizes = counts.tolist()
        for index in np.flatnonzero(counts[:-1]).tolist():
            out[self.names[index]] = self._slice(
                index, stops[index] - sizes[index], stops[index], gathered, int(unknown[index])
            )
        return out, np.flatnonzero(~ok)

    def _slice(
        self, index: int, start: int, stop: int, gathered: _Gathered, unknown: int
    ) -> ModelColumns:
        """Model ``index``'s columns: rows ``start:stop`` of the batch gathered by model."""
        n_num, n_cat = self.widths[index]
        numeric = gathered.numeric[start:stop]
        codes = gathered.codes[start:stop]
        if numeric.shape[1] != n_num:
            numeric = np.ascontiguousarray(numeric[:, :n_num])
        if codes.shape[1] != n_cat:  # no copy for none: an empty array is contiguous
            codes = np.ascontiguousarray(codes[:, :n_cat]) if n_cat else codes[:, :0]
        blank: list[str | None] = [None] * (stop - start)
        return ModelColumns(
            numeric=numeric,
            categorical=[],
            ts=gathered.ts[start:stop],
            ids=blank,
            msg_index=gathered.rows[start:stop],
            unknown_features=unknown,
            versions=blank,
            labels=None,
            codes=codes,
        )

    def _columns(
        self,
        index: int,
        rows: np.ndarray,
        result: jsonscan.ScanResult,
        kafka_ts: KafkaTimes,
        *,
        whole: jsonscan.ScanResult | None = None,
    ) -> ModelColumns:
        """The one model's columns from its ``rows`` of the scan. ``whole``: the result
        when the rows are every row in order (its arrays are taken as they are)."""
        n_num, n_cat = self.widths[index]
        if whole is not None:
            numeric, codes, ts = whole.numeric[:, :n_num], whole.codes[:, :n_cat], whole.ts
        else:  # take() along rows: numpy's fast path, unlike a[rows, :k]
            numeric = result.numeric.take(rows, axis=0)[:, :n_num]
            codes = result.codes.take(rows, axis=0)[:, :n_cat]
            ts = result.ts.take(rows)
        missing = np.isnan(ts)
        if missing.any():
            ts[missing] = kafka_times(kafka_ts)[rows[missing]]
        unknown = int(result.unknown[rows].sum())
        blank: list[str | None] = [None] * rows.size
        return ModelColumns(
            numeric=np.ascontiguousarray(numeric),
            categorical=[],
            ts=ts,
            ids=blank,
            msg_index=rows,
            unknown_features=unknown,
            versions=blank,
            labels=None,
            codes=np.ascontiguousarray(codes),
        )


class _Gathered(NamedTuple):
    """A batch's accepted rows gathered in model order (each model's a contiguous run)."""

    numeric: np.ndarray
    codes: np.ndarray
    ts: np.ndarray
    rows: np.ndarray  # each row's message index


def scan_helper() -> ThreadPoolExecutor:
    """The one thread that scans the second half of large batches (made on first use)."""
    if not _HELPER:
        with _HELPER_LOCK:
            if not _HELPER:
                _HELPER.append(ThreadPoolExecutor(1, thread_name_prefix="driftmon-scan"))
    return _HELPER[0]


def _joined(payloads: Sequence[bytes | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The payloads end to end in one buffer, with each one's start and end offset."""
    n = len(payloads)
    try:
        lengths = np.fromiter(map(len, payloads), dtype=np.int64, count=n)  # type: ignore[arg-type]
        joined = b"".join(payloads)  # type: ignore[arg-type]
    except TypeError:  # a message without a value: scanned as empty, so passed on
        present = [p if p is not None else b"" for p in payloads]
        lengths = np.fromiter(map(len, present), dtype=np.int64, count=n)
        joined = b"".join(present)
    ends = np.cumsum(lengths)
    return np.frombuffer(joined, dtype=np.uint8), ends - lengths, ends


def _scan_model(ms: ModelSchema) -> jsonscan.ScanModel:
    codes = ms.codes or ()
    n_num, n_cat = len(ms.numeric), len(ms.categorical)
    prediction_column = {"numeric": n_num, "categorical": n_cat}.get(ms.prediction or "", -1)
    classes = None
    if ms.prediction == "probabilities":
        classes = {cls: n_num + k for k, cls in enumerate(ms.classes)}
    return jsonscan.ScanModel(
        name=ms.name,
        numeric={name: col for col, name in enumerate(ms.numeric)},
        categorical={name: col for col, name in enumerate(ms.categorical)},
        num_width=len(ms.numeric_names),
        cat_width=len(ms.categorical_names),
        vocab=[c.codes for c in codes],
        unseen=[c.unseen for c in codes],
        prediction=_PRED_KINDS[ms.prediction],
        prediction_column=prediction_column,
        classes=classes,
    )
