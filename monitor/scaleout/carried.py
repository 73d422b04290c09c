"""What binned rows carry alongside their codes for a model's performance join.

A model with ``performance`` joins predictions and labels by event id on their raw values:
the prediction column(s) the metrics read (``prediction`` or ``prediction.<class>``), the
model's own predicted class when ``performance.predicted_label`` names a feature, and the
labels (label-only events included). Its drift windows need only the codes. So stage 1
bins such a model's rows like any other (:class:`~monitor.scaleout.codec.RowCodec`) and
carries, per row, only what the join reads (:class:`Carried`): the event id, the label,
the raw values of the join's numeric columns (float64, NaN missing) and the strings of its
categorical ones (per-column tables plus int32 indices, ``-1`` missing).
:func:`join_columns` names those columns for a model.

Stage 2 rebuilds :class:`~monitor.ingest.decode.ModelColumns` whose ``binned`` field holds
the codes (the windows count them as they are) and whose numeric and categorical columns
hold the carried values at their decoded positions (every other value missing): the label
split (``label_only_rows`` reads the codes of binned columns) and the join then see exactly
the values one process decodes.

``header()``/``arrays()`` are the wire and checkpoint form; :func:`carried_from` reads them
back, a ``ValueError`` for anything malformed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.ingest.decode import ModelColumns
from monitor.scaleout.raw import indexed, merge_tables

__all__ = [
    "CARRIED_ARRAYS",
    "Carried",
    "JoinColumns",
    "carried_from",
    "carried_sizes",
    "join_columns",
]


@dataclass(frozen=True)
class JoinColumns:
    """The decoded columns a model's performance join reads (indices into the model's
    numeric and categorical columns)."""

    numeric: tuple[int, ...]
    categorical: tuple[int, ...]


def join_columns(model: Any) -> JoinColumns | None:
    """What the join of ``model`` (a :class:`~monitor.model.model.Model`) reads; ``None``
    without ``performance``."""
    performance = model.default.performance
    if performance is None:
        return None
    numeric = [int(i) for i in performance.prediction_index.tolist()]
    categorical: list[int] = []
    predicted = performance.predicted_column
    if predicted is not None:
        kind, index = predicted
        if kind == "numeric":
            numeric.append(index)
        else:
            categorical.append(index)
    return JoinColumns(tuple(dict.fromkeys(numeric)), tuple(categorical))


@dataclass(frozen=True)
class Carried:
    """Per row what the join reads (see the module docstring)."""

    ids: list[str | None]
    labels: list[Any] | None
    values: np.ndarray  # float64, rows x len(JoinColumns.numeric)
    text: np.ndarray  # int32, rows x len(JoinColumns.categorical): table index, -1 missing
    tables: list[list[str]]  # per carried categorical column its strings

    @property
    def rows(self) -> int:
        return len(self.ids)

    @staticmethod
    def of(columns: ModelColumns, join: JoinColumns) -> Carried:
        """What ``columns`` (decoded with category strings) carry for ``join``."""
        rows = columns.rows
        values = np.ascontiguousarray(columns.numeric[:, list(join.numeric)], np.float64)
        pairs = [indexed(columns.categorical[j]) for j in join.categorical]
        text = np.stack([i for _, i in pairs], axis=1) if pairs else np.zeros((rows, 0), np.int32)
        return Carried(
            list(columns.ids),
            None if columns.labels is None else list(columns.labels),
            values.reshape(rows, len(join.numeric)),
            text,
            [t for t, _ in pairs],
        )

    def columns(
        self, join: JoinColumns, numeric: int, categorical: int, ts: np.ndarray
    ) -> ModelColumns:
        """The decoded columns one process would hand the join: the carried values at
        their positions, everything else missing (``binned`` is set by the caller)."""
        rows = self.rows
        values = np.full((rows, numeric), np.nan)
        if join.numeric:
            values[:, list(join.numeric)] = self.values
        strings: list[list[str | None]] = [[None] * rows for _ in range(categorical)]
        for k, j in enumerate(join.categorical):
            lookup: list[str | None] = [*self.tables[k], None]
            strings[j] = [lookup[i] for i in self.text[:, k].tolist()]
        return ModelColumns(
            numeric=values,
            categorical=strings,
            ts=ts,
            ids=list(self.ids),
            msg_index=np.arange(rows, dtype=np.int64),
            versions=[None] * rows,
            labels=None if self.labels is None else list(self.labels),
        )

    def take(self, rows: np.ndarray) -> Carried:
        pick = rows.tolist()
        return Carried(
            [self.ids[i] for i in pick],
            None if self.labels is None else [self.labels[i] for i in pick],
            self.values[rows],
            self.text[rows],
            self.tables,
        )

    @staticmethod
    def concat(parts: Sequence[Carried]) -> Carried:
        if len(parts) == 1:
            return parts[0]
        width = parts[0].text.shape[1]
        merged = [
            merge_tables([p.tables[k] for p in parts], [p.text[:, k] for p in parts])
            for k in range(width)
        ]
        rows = sum(p.rows for p in parts)
        labels = None
        if any(p.labels is not None for p in parts):
            labels = [v for p in parts for v in (p.labels or [None] * p.rows)]
        return Carried(
            [i for p in parts for i in p.ids],
            labels,
            np.concatenate([p.values for p in parts]).reshape(rows, parts[0].values.shape[1]),
            np.stack([i for _, i in merged], axis=1) if merged else np.zeros((rows, 0), np.int32),
            [t for t, _ in merged],
        )

    # -- wire and checkpoint form --------------------------------------------------------

    def header(self) -> dict[str, Any]:
        return {
            "values": int(self.values.shape[1]),
            "tables": self.tables,
            "ids": self.ids,
            "labels": self.labels,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        return {"values": self.values, "text": self.text}


CARRIED_ARRAYS = (("values", np.float64), ("text", np.int32))


def carried_sizes(header: dict[str, Any], rows: int) -> dict[str, int]:
    """Element counts of the arrays :func:`carried_from` reads."""
    return {"values": rows * int(header["values"]), "text": rows * len(header["tables"])}


def carried_from(header: dict[str, Any], arrays: dict[str, np.ndarray], rows: int) -> Carried:
    """:class:`Carried` from :meth:`Carried.header` and its arrays."""
    tables = [[str(s) for s in t] for t in header["tables"]]
    carried = Carried(
        [None if i is None else str(i) for i in header["ids"]],
        None if header["labels"] is None else list(header["labels"]),
        np.asarray(arrays["values"], np.float64).reshape(rows, int(header["values"])),
        np.asarray(arrays["text"], np.int32).reshape(rows, len(tables)),
        tables,
    )
    if carried.rows != rows or (carried.labels is not None and len(carried.labels) != rows):
        raise ValueError("carried ids or labels do not match the row count")
    for k, table in enumerate(tables):
        if rows and carried.text[:, k].max() >= len(table):
            raise ValueError("carried category index outside its table")
    return carried
