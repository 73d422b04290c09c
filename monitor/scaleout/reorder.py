"""Stage 2's reorder buffer for one model: exact dedup, event-time watermark, ordered release.

Rows of one model reach stage 2 from every source partition, each source's rows in offset
order, but sources interleave as stage-1 replicas happen to run, and a stage-1 batch whose
offsets were not committed before a crash or rebalance arrives again. The buffer turns that
into the one order a single process reading the events sorted by event time would see:

- **dedup**: a stage-1 batch names the offset range it covered per source; a row whose
  offset lies in a range seen before (or below the source's committed offset, from the
  progress markers) is a duplicate. Ranges merge as they arrive, so this is exact and small.
- **lateness**: a row more than ``allowed_lateness_seconds`` behind the newest event time of
  the model's earlier rows from the same source is late: counted and dropped. This depends
  only on the source's offset order, never on timing.
- **watermark**: the lowest progress (newest row event time) over the model's source
  partitions, minus the lateness. A source that has sent nothing yet holds it; a source
  stage 1 reports idle (caught up, nothing new for a while) does not; with every source
  idle it is just past the newest row seen (never infinite). Rows below the
  watermark are released sorted by (event time, source, offset). No later non-late row can
  sort before a released one while every source is live, so the window sees exactly the
  time-sorted events. Rows that arrive behind the watermark after an idle source woke up or
  a forced release are applied in arrival order.
- **bound**: more than ``max_buffered_rows`` buffered (a source that stopped without being
  idle) forces the watermark past the oldest rows; those are counted as ``forced``.

The state (dedup ranges, progress, watermark, buffered rows, counters) checkpoints with
:meth:`ReorderBuffer.state` and comes back with :meth:`ReorderBuffer.restore`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monitor.errors import CheckpointError
from monitor.scaleout.carried import Carried, carried_from
from monitor.scaleout.codec import RowBatch, empty_rows
from monitor.scaleout.order import release_order
from monitor.scaleout.raw import RawColumns, raw_from

__all__ = ["Marker", "ReorderBuffer", "RowCounts"]

RAW = "raw."
CARRIED = "carried."


@dataclass(frozen=True)
class Marker:
    """Stage 1's progress note for one source partition, sent to every internal partition.

    ``committed``: the source offset stage 1 committed (every row below it was acknowledged
    before); ``idle``: the source is caught up and quiet, so it need not hold watermarks.
    """

    source: int
    committed: int
    idle: bool


@dataclass
class RowCounts:
    """Rows by outcome (``driftmon_partial_rows_total``), plus forced releases."""

    applied: int = 0
    duplicate: int = 0
    late: int = 0
    rejected: int = 0
    forced: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass
class _Ranges:
    """Offsets covered per source: all below ``floor``, plus merged ``spans`` above it."""

    floor: int = 0
    spans: list[tuple[int, int]] = field(default_factory=list)

    def covered(self, offsets: np.ndarray) -> np.ndarray:
        seen = offsets < self.floor
        if self.spans:
            starts = np.array([a for a, _ in self.spans], np.int64)
            ends = np.array([b for _, b in self.spans], np.int64)
            at = np.searchsorted(starts, offsets, side="right") - 1
            inside = (at >= 0) & (offsets <= ends[np.maximum(at, 0)])
            seen |= inside
        return seen

    def add(self, first: int, last: int) -> None:
        spans = sorted([*self.spans, (first, last)])
        merged: list[tuple[int, int]] = []
        for a, b in spans:
            if b < self.floor:
                continue
            a = max(a, self.floor)
            if merged and a <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        if merged and merged[0][0] <= self.floor:
            self.floor = merged.pop(0)[1] + 1
        self.spans = merged

    def raise_floor(self, floor: int) -> None:
        if floor > self.floor:
            self.floor = floor
            self._prune()

    def _prune(self) -> None:
        spans, self.spans = self.spans, []
        for a, b in spans:
            if b >= self.floor:
                self.add(a, b)


class ReorderBuffer:
    """One model's stage-2 buffer (see the module docstring)."""

    def __init__(
        self,
        model: str,
        fingerprint: str,
        width: int,
        sources: Iterable[int],
        *,
        allowed_lateness_seconds: float,
        max_buffered_rows: int,
    ) -> None:
        self.model = model
        self.fingerprint = fingerprint
        self.lateness = float(allowed_lateness_seconds)
        self.max_buffered_rows = int(max_buffered_rows)
        self.counts = RowCounts()
        self._width = width
        self._sources: frozenset[int] = frozenset(sources)
        self._ranges: dict[int, _Ranges] = {}
        self._progress: dict[int, float] = {}
        self._idle: set[int] = set()
        self._watermark = -math.inf
        self._buffer: list[RowBatch] = []
        self._buffered = 0

    # -- what the buffer knows ---------------------------------------------------------

    @property
    def watermark(self) -> float:
        """Event time below which rows have been released (``-inf`` before any)."""
        return self._watermark

    @property
    def buffered(self) -> int:
        return self._buffered

    @property
    def sources(self) -> frozenset[int]:
        return self._sources

    def progress(self) -> dict[int, float]:
        """Newest row event time per source."""
        return dict(self._progress)

    def holding(self) -> list[int]:
        """The sources that hold the watermark: live, and the furthest behind (or silent)."""
        live = [s for s in self._sources if s not in self._idle]
        if not live:
            return []
        low = min(self._progress.get(s, -math.inf) for s in live)
        return sorted(s for s in live if self._progress.get(s, -math.inf) == low)

    def set_sources(self, sources: Iterable[int]) -> None:
        """The source partitions whose progress the watermark waits for (topic metadata)."""
        self._sources = frozenset(sources)

    def rebin(self, fingerprint: str, width: int, convert: Callable[[RowBatch], RowBatch]) -> None:
        """Hold rows of another form from now on (a model's captured reference switched it
        from raw to binned rows): the buffered rows are converted."""
        self.fingerprint = fingerprint
        self._width = width
        self._buffer = [convert(batch) for batch in self._buffer]

    # -- input -------------------------------------------------------------------------

    def reject(self, rows: int) -> None:
        """Rows stage 2 could not use (another fingerprint, a corrupt batch)."""
        self.counts.rejected += rows

    def mark(self, marker: Marker) -> None:
        """A progress marker: raise the source's dedup floor; note it idle or live."""
        self._ranges.setdefault(marker.source, _Ranges()).raise_floor(marker.committed)
        if marker.idle:
            self._idle.add(marker.source)
        else:
            self._idle.discard(marker.source)

    def push(self, batch: RowBatch) -> None:
        """Take a row batch: drop duplicates and late rows, buffer the rest."""
        keep = np.ones(batch.rows, bool)
        sources = np.unique(batch.source) if batch.rows else np.zeros(0, np.int32)
        for s in sources.tolist():
            rows = np.flatnonzero(batch.source == s)
            ranges = self._ranges.setdefault(s, _Ranges())
            dup = ranges.covered(batch.offset[rows])
            keep[rows[dup]] = False
            self.counts.duplicate += int(dup.sum())
            fresh = rows[~dup]
            if fresh.size:
                ts = batch.ts[fresh]
                before = np.maximum.accumulate(
                    np.concatenate(([self._progress.get(s, -math.inf)], ts))
                )
                late = ts < before[:-1] - self.lateness
                keep[fresh[late]] = False
                self.counts.late += int(late.sum())
                self._progress[s] = float(before[-1])
                self._idle.discard(s)
        for s, first, last in batch.ranges.tolist():
            self._ranges.setdefault(int(s), _Ranges()).add(int(first), int(last))
        if keep.all() and batch.rows:
            self._store(batch)
        elif keep.any():
            self._store(batch.take(np.flatnonzero(keep)))

    def _store(self, batch: RowBatch) -> None:
        self._buffer.append(batch)
        self._buffered += batch.rows

    # -- output ------------------------------------------------------------------------

    def _target(self) -> float:
        live = [s for s in self._sources if s not in self._idle]
        if not self._sources:
            return -math.inf
        if not live:
            # Every source caught up: release all buffered rows, but only through the
            # newest row seen, so rows sent after the sources wake are ordered again (an
            # infinite watermark would apply every later row in arrival order).
            newest = max(self._progress.values(), default=-math.inf)
            return float(np.nextafter(newest, math.inf)) if math.isfinite(newest) else newest
        return min(self._progress.get(s, -math.inf) for s in live) - self.lateness

    def release(self) -> RowBatch:
        """The buffered rows the watermark has passed, in (event time, source, offset)
        order (forced past the oldest rows when over the bound)."""
        self._watermark = max(self._watermark, self._target())
        if not self._buffer:
            return empty_rows(self.model, self.fingerprint, self._width)
        over = self._buffered - self.max_buffered_rows
        if over > 0:
            ts = np.concatenate([b.ts for b in self._buffer])
            passed = int(np.count_nonzero(ts < self._watermark))
            if over > passed:
                # Release through the event time of the oldest row that must go, ties too.
                forced_to = float(np.partition(ts, over - 1)[over - 1])
                self._watermark = float(np.nextafter(forced_to, math.inf))
                self.counts.forced += int(np.count_nonzero(ts < self._watermark)) - passed
        rows = RowBatch.concat(self._buffer)
        out, rest = release_order(rows.ts, rows.source, rows.offset, self._watermark)
        if not out.size:
            self._buffer = [rows]
            return empty_rows(self.model, self.fingerprint, self._width)
        self._buffer = [rows.take(rest)] if rest.size else []
        self._buffered -= out.size
        self.counts.applied += out.size
        return rows.take(out)

    # -- checkpoints -------------------------------------------------------------------

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON scalars and arrays enough to resume exactly."""
        rows = (
            RowBatch.concat(self._buffer)
            if self._buffer
            else empty_rows(self.model, self.fingerprint, self._width)
        )
        scalars: dict[str, Any] = {
            "fingerprint": self.fingerprint,
            "watermark": _json_float(self._watermark),
            "progress": {str(s): _json_float(t) for s, t in self._progress.items()},
            "idle": sorted(self._idle),
            "ranges": {str(s): [r.floor, r.spans] for s, r in self._ranges.items()},
            "counts": self.counts.as_dict(),
        }
        arrays = {
            "source": rows.source,
            "offset": rows.offset,
            "ts": rows.ts,
            "codes": rows.codes,
            "outer_row": rows.outer_row,
            "outer_col": rows.outer_col,
            "outer_value": rows.outer_value,
        }
        if rows.raw is not None:
            scalars["raw"] = rows.raw.header()
            arrays.update({RAW + k: v for k, v in rows.raw.arrays().items()})
        if rows.carried is not None:
            scalars["carried"] = rows.carried.header()
            arrays.update({CARRIED + k: v for k, v in rows.carried.arrays().items()})
        if rows.mask is not None:
            arrays["mask"] = rows.mask
        return scalars, arrays

    def restore(self, scalars: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Resume from :meth:`state`; ``CheckpointError`` when it does not fit."""
        if scalars.get("fingerprint") != self.fingerprint:
            raise CheckpointError(
                f"reorder buffer of model {self.model!r} was checkpointed with another "
                "configuration or reference"
            )
        try:
            self._watermark = _float(scalars["watermark"])
            self._progress = {int(s): _float(t) for s, t in scalars["progress"].items()}
            self._idle = {int(s) for s in scalars["idle"]}
            self._ranges = {
                int(s): _Ranges(int(floor), [(int(a), int(b)) for a, b in spans])
                for s, (floor, spans) in scalars["ranges"].items()
            }
            self.counts = RowCounts(**{k: int(v) for k, v in scalars["counts"].items()})
            rows = RowBatch(
                self.model,
                self.fingerprint,
                np.asarray(arrays["source"], np.int32),
                np.asarray(arrays["offset"], np.int64),
                np.asarray(arrays["ts"], np.float64),
                _codes(arrays["codes"], len(arrays["ts"]), self._width),
                np.asarray(arrays["outer_row"], np.int32),
                np.asarray(arrays["outer_col"], np.int32),
                np.asarray(arrays["outer_value"], np.float64),
                np.zeros((0, 3), np.int64),
                _raw(scalars.get("raw"), arrays),
                _carried(scalars.get("carried"), arrays),
                None if "mask" not in arrays else np.asarray(arrays["mask"], bool),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"reorder buffer state is incomplete: {exc}") from exc
        self._buffer = [rows] if rows.rows else []
        self._buffered = rows.rows


def _raw(header: dict[str, Any] | None, arrays: dict[str, np.ndarray]) -> RawColumns | None:
    if header is None:
        return None
    found = {k[len(RAW) :]: v for k, v in arrays.items() if k.startswith(RAW)}
    return raw_from(header, found, len(arrays["ts"]))


def _codes(codes: np.ndarray, rows: int, width: int) -> np.ndarray:
    """Buffered codes: ``width`` columns, or none for raw rows (a versioned model's buffer
    holds either form)."""
    found = np.asarray(codes)
    return found.reshape(rows, -1) if rows else found.reshape(0, width)


def _carried(header: dict[str, Any] | None, arrays: dict[str, np.ndarray]) -> Carried | None:
    if header is None:
        return None
    found = {k[len(CARRIED) :]: v for k, v in arrays.items() if k.startswith(CARRIED)}
    return carried_from(header, found, len(arrays["ts"]))


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def _float(x: float | str) -> float:
    return float(x)
