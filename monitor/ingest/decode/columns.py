"""Decode's answer: per-model columns of the accepted events, and the batch's rejections.

:class:`ModelColumns` owns its row operations (take, slice, drop, concatenate), so every
field travels with the rows wherever they are cut or joined; a new field is added there
once, and tests/unit/test_decode_columns.py fails if an operation forgets it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from itertools import compress
from typing import Any

import numpy as np

from monitor.ingest.decode import coded
from monitor.ingest.decode.coded import Values
from monitor.ingest.decode.schema import Reason, Rejection
from monitor.stats.binned import BinnedRows

__all__ = ["REQUEST", "RESPONSE", "WHOLE", "DecodedBatch", "ModelColumns", "merge_models"]


@dataclass(frozen=True, slots=True)
class ModelColumns:
    """The accepted events of one model in one batch, as columns (rows in arrival order).

    Row operations keep ``unknown_features`` as it is (it counts keys over the events the
    columns were decoded from, not per row); :meth:`concat` adds it up.
    """

    #: rows x len(numeric_names), float64, NaN where missing.
    numeric: np.ndarray
    #: One column per categorical feature (categorical_names order), ``None`` where
    #: missing: a list, or (model servers' formats) a :class:`~.coded.Coded` table.
    categorical: Sequence[Values]
    #: Event time per row, float64 epoch seconds (the Kafka timestamp when absent).
    ts: np.ndarray
    ids: Values
    #: Index of each row's message in the batch, int64.
    msg_index: np.ndarray
    #: Keys of features objects that are not monitored (ignored), over the model's events.
    unknown_features: int = 0
    versions: Values = field(default_factory=list)
    #: Raw label values per row, or ``None`` when no event carried one.
    labels: list[Any] | None = None
    #: rows x len(categorical_names) int64 category codes (-1 missing) when the schema
    #: gives ``codes``; ``categorical`` is then empty.
    codes: np.ndarray | None = None
    #: Per row, which half of an inference it is (``WHOLE``, ``REQUEST`` or ``RESPONSE``,
    #: int8) when the format logs requests and responses apart; ``None``: all whole.
    halves: np.ndarray | None = None
    #: Per row, the key its other half carries (``<request key>:<row>``), with ``halves``.
    pair_keys: Values | None = None
    #: The rows already binned against the model's reference (scale-out's stage 2): the
    #: window counts these instead of binning ``numeric`` and ``codes``.
    binned: BinnedRows | None = None

    @property
    def rows(self) -> int:
        """Number of accepted events."""
        return len(self.ts)

    def take(self, rows: np.ndarray) -> ModelColumns:
        """The given rows (int64 indices, in the order given)."""
        return ModelColumns(
            numeric=self.numeric[rows],
            categorical=[coded.take(values, rows) for values in self.categorical],
            ts=self.ts[rows],
            ids=coded.take(self.ids, rows),
            msg_index=self.msg_index[rows],
            unknown_features=self.unknown_features,
            versions=coded.take(self.versions, rows),
            labels=None if self.labels is None else coded.take(self.labels, rows),
            codes=None if self.codes is None else self.codes[rows],
            halves=None if self.halves is None else self.halves[rows],
            pair_keys=None if self.pair_keys is None else coded.take(self.pair_keys, rows),
            binned=None if self.binned is None else self.binned.take(rows),
        )

    def slice_rows(self, start: int, stop: int) -> ModelColumns:
        """Rows ``start:stop`` (views of the arrays, no copy)."""
        return ModelColumns(
            numeric=self.numeric[start:stop],
            categorical=[values[start:stop] for values in self.categorical],
            ts=self.ts[start:stop],
            ids=self.ids[start:stop],
            msg_index=self.msg_index[start:stop],
            unknown_features=self.unknown_features,
            versions=self.versions[start:stop],
            labels=None if self.labels is None else self.labels[start:stop],
            codes=None if self.codes is None else self.codes[start:stop],
            halves=None if self.halves is None else self.halves[start:stop],
            pair_keys=None if self.pair_keys is None else self.pair_keys[start:stop],
            binned=None if self.binned is None else self.binned.slice_rows(start, stop),
        )

    def drop_rows(self, rows: Collection[int]) -> ModelColumns:
        """The columns without the given rows (itself when there are none)."""
        if not rows:
            return self
        keep = np.ones(self.rows, dtype=bool)
        keep[list(rows)] = False
        return ModelColumns(
            numeric=self.numeric[keep],
            categorical=[coded.keep(values, keep) for values in self.categorical],
            ts=self.ts[keep],
            ids=coded.keep(self.ids, keep),
            msg_index=self.msg_index[keep],
            unknown_features=self.unknown_features,
            versions=coded.keep(self.versions, keep),
            labels=None if self.labels is None else list(compress(self.labels, keep.tolist())),
            codes=None if self.codes is None else self.codes[keep],
            halves=None if self.halves is None else self.halves[keep],
            pair_keys=None if self.pair_keys is None else coded.keep(self.pair_keys, keep),
            binned=None if self.binned is None else self.binned.take(np.flatnonzero(keep)),
        )

    @staticmethod
    def concat(parts: Sequence[ModelColumns]) -> ModelColumns:
        """The rows of ``parts`` one after the other (all with codes, or none; binned
        likewise)."""
        if len(parts) == 1:
            return parts[0]
        labels = None
        if any(p.labels is not None for p in parts):
            labels = [v for p in parts for v in (p.labels or [None] * p.rows)]
        codes = None
        if parts[0].codes is not None:
            codes = np.concatenate([p.codes for p in parts])
        halves = pair_keys = None
        if any(p.halves is not None for p in parts):
            halves = np.concatenate([_halves(p) for p in parts])
            pair_keys = coded.concat(
                [p.pair_keys if p.pair_keys is not None else [None] * p.rows for p in parts]
            )
        binned = None
        if parts[0].binned is not None:
            binned = BinnedRows.concat([p.binned for p in parts if p.binned is not None])
        return ModelColumns(
            numeric=np.concatenate([p.numeric for p in parts]),
            categorical=[
                coded.concat(c) for c in zip(*(p.categorical for p in parts), strict=True)
            ],
            ts=np.concatenate([p.ts for p in parts]),
            ids=coded.concat([p.ids for p in parts]),
            msg_index=np.concatenate([p.msg_index for p in parts]),
            unknown_features=sum(p.unknown_features for p in parts),
            versions=coded.concat([p.versions for p in parts]),
            labels=labels,
            codes=codes,
            halves=halves,
            pair_keys=pair_keys,
            binned=binned,
        )


#: ``ModelColumns.halves`` values: a whole inference, or the half logged on its own.
WHOLE, REQUEST, RESPONSE = 0, 1, 2


def _halves(part: ModelColumns) -> np.ndarray:
    if part.halves is not None:
        return part.halves
    return np.zeros(part.rows, dtype=np.int8)


def merge_models(a: dict[str, ModelColumns], b: dict[str, ModelColumns]) -> dict[str, ModelColumns]:
    """Columns of two disjoint sets of messages, rows back in message order."""
    out = dict(a)
    for name, cols in b.items():
        first = out.get(name)
        if first is None:
            out[name] = cols
            continue
        both = ModelColumns.concat([first, cols])
        out[name] = both.take(np.argsort(both.msg_index, kind="stable"))
    return out


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """Result of :func:`~monitor.ingest.decode.decode_batch`."""

    models: dict[str, ModelColumns]
    rejected: list[Rejection]
    #: Models whose columns hold no strings (the columnar scanner reads none): the length
    #: limits have nothing to check in them.
    plain: frozenset[str] = frozenset()

    @property
    def accepted(self) -> int:
        """Events accepted over all models."""
        return sum(c.rows for c in self.models.values())

    def reason_counts(self) -> dict[Reason, int]:
        """Rejected events per reason (only reasons that occurred)."""
        counts: dict[Reason, int] = {}
        for rej in self.rejected:
            counts[rej.reason] = counts.get(rej.reason, 0) + 1
        return counts
