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
from dataclasses import dataclass, field, replace
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
    """Per row what the join and the version routing read (see the module docstring).

    ``join`` and ``shape`` (the model's numeric and categorical column counts) say where
    the carried values sit among the decoded columns; ``version`` (int32 per row, ``-1``
    none, into ``versions``) is there for a model with versions only, with ``grids``: per
    version key (``""`` for the default reference) the fingerprint of the grid its rows
    were binned against.
    """

    join: JoinColumns
    shape: tuple[int, int]
    ids: list[str | None]
    labels: list[Any] | None
    values: np.ndarray  # float64, rows x len(join.numeric)
    text: np.ndarray  # int32, rows x len(join.categorical): table index, -1 missing
    tables: list[list[str]]  # per carried categorical column its strings
    version: np.ndarray | None = None  # int32 per row, -1 none
    versions: list[str] = field(default_factory=list)
    grids: dict[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return int(self.values.shape[0])

    @staticmethod
    def of(
        columns: ModelColumns,
        join: JoinColumns,
        versions: Sequence[str | None] | None = None,
        grids: dict[str, str] | None = None,
        *,
        ids: bool = True,
    ) -> Carried:
        """What ``columns`` (decoded with category strings) carry for ``join``; with
        ``versions`` (one per row, header versions resolved) the version of each row."""
        rows = columns.rows
        values = np.ascontiguousarray(columns.numeric[:, list(join.numeric)], np.float64)
        pairs = [indexed(columns.categorical[j]) for j in join.categorical]
        text = np.stack([i for _, i in pairs], axis=1) if pairs else np.zeros((rows, 0), np.int32)
        table: list[str] = []
        version = None
        if versions is not None:
            table, version = indexed(versions)
        return Carried(
            join,
            (int(columns.numeric.shape[1]), len(columns.categorical)),
            list(columns.ids) if ids else [None] * rows,
            None if columns.labels is None else list(columns.labels),
            values.reshape(rows, len(join.numeric)),
            text,
            [t for t, _ in pairs],
            version,
            table,
            dict(grids or {}),
        )

    def row_versions(self) -> list[str | None]:
        if self.version is None:
            return [None] * self.rows
        lookup: list[str | None] = [*self.versions, None]
        return [lookup[i] for i in self.version.tolist()]

    def columns(self, ts: np.ndarray, *, every_column: bool = False) -> ModelColumns:
        """The decoded columns one process would hand the join and the version routing:
        the carried values at their positions, everything else missing (``binned`` is
        set by the caller). ``every_column``: a list of categorical values for each
        categorical column (to hold these rows as raw ones)."""
        rows = self.rows
        numeric, categorical = self.shape
        values = np.full((rows, numeric), np.nan)
        if self.join.numeric:
            values[:, list(self.join.numeric)] = self.values
        # Only the join reads category strings of binned rows (by position): none without
        # a categorical join column, so routing rows by version copies no lists of None.
        strings: list[list[str | None]] = (
            [[None] * rows for _ in range(categorical)]
            if self.join.categorical or every_column
            else []
        )
        for k, j in enumerate(self.join.categorical):
            lookup: list[str | None] = [*self.tables[k], None]
            strings[j] = [lookup[i] for i in self.text[:, k].tolist()]
        return ModelColumns(
            numeric=values,
            categorical=strings,
            ts=ts,
            ids=list(self.ids),
            msg_index=np.arange(rows, dtype=np.int64),
            versions=self.row_versions(),
            labels=None if self.labels is None else list(self.labels),
        )

    def take(self, rows: np.ndarray) -> Carried:
        pick = rows.tolist()
        return replace(
            self,
            ids=[self.ids[i] for i in pick],
            labels=None if self.labels is None else [self.labels[i] for i in pick],
            values=self.values[rows],
            text=self.text[rows],
            version=None if self.version is None else self.version[rows],
        )

    @staticmethod
    def concat(parts: Sequence[Carried]) -> Carried:
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        width = first.text.shape[1]
        merged = [
            merge_tables([p.tables[k] for p in parts], [p.text[:, k] for p in parts])
            for k in range(width)
        ]
        rows = sum(p.rows for p in parts)
        labels = None
        if any(p.labels is not None for p in parts):
            labels = [v for p in parts for v in (p.labels or [None] * p.rows)]
        versions: list[str] = []
        version = None
        if first.version is not None:
            versions, version = merge_tables(
                [p.versions for p in parts],
                [p.version if p.version is not None else np.full(p.rows, -1, np.int32)
                 for p in parts],
            )  # fmt: skip
        grids: dict[str, str] = {}
        for p in parts:
            grids.update(p.grids)
        return Carried(
            first.join,
            first.shape,
            [i for p in parts for i in p.ids],
            labels,
            np.concatenate([p.values for p in parts]).reshape(rows, first.values.shape[1]),
            np.stack([i for _, i in merged], axis=1) if merged else np.zeros((rows, 0), np.int32),
            [t for t, _ in merged],
            version,
            versions,
            grids,
        )

    # -- wire and checkpoint form --------------------------------------------------------

    def header(self) -> dict[str, Any]:
        header: dict[str, Any] = {
            "rows": self.rows,
            "join": [list(self.join.numeric), list(self.join.categorical)],
            "shape": list(self.shape),
            "tables": self.tables,
            "ids": None if all(i is None for i in self.ids) else self.ids,
            "labels": self.labels,
        }
        if self.version is not None:
            header["versions"] = self.versions
            header["grids"] = self.grids
        return header

    def arrays(self) -> dict[str, np.ndarray]:
        found = {"values": self.values, "text": self.text}
        if self.version is not None:
            found["version"] = self.version
        return found


CARRIED_ARRAYS = (("values", np.float64), ("text", np.int32), ("version", np.int32))


def carried_sizes(header: dict[str, Any], rows: int) -> dict[str, int]:
    """Element counts of the arrays :func:`carried_from` reads."""
    join = header["join"]
    return {
        "values": rows * len(join[0]),
        "text": rows * len(join[1]),
        "version": rows if "versions" in header else 0,
    }


def carried_from(header: dict[str, Any], arrays: dict[str, np.ndarray], rows: int) -> Carried:
    """:class:`Carried` from :meth:`Carried.header` and its arrays."""
    join = JoinColumns(tuple(int(i) for i in header["join"][0]),
                       tuple(int(i) for i in header["join"][1]))  # fmt: skip
    numeric, categorical = (int(n) for n in header["shape"])
    tables = [[str(s) for s in t] for t in header["tables"]]
    ids = header["ids"]
    versioned = "versions" in header
    carried = Carried(
        join,
        (numeric, categorical),
        [None] * rows if ids is None else [None if i is None else str(i) for i in ids],
        None if header["labels"] is None else list(header["labels"]),
        np.asarray(arrays["values"], np.float64).reshape(rows, len(join.numeric)),
        np.asarray(arrays["text"], np.int32).reshape(rows, len(join.categorical)),
        tables,
        np.asarray(arrays["version"], np.int32).reshape(rows) if versioned else None,
        [str(v) for v in header["versions"]] if versioned else [],
        {str(k): str(v) for k, v in header["grids"].items()} if versioned else {},
    )
    if len(carried.ids) != rows or (carried.labels is not None and len(carried.labels) != rows):
        raise ValueError("carried ids or labels do not match the row count")
    if any(i >= numeric for i in join.numeric) or any(j >= categorical for j in join.categorical):
        raise ValueError("carried columns outside the model's columns")
    if len(tables) != len(join.categorical):
        raise ValueError("carried category tables do not match the columns")
    for k, table in enumerate(tables):
        if rows and carried.text[:, k].max() >= len(table):
            raise ValueError("carried category index outside its table")
    if carried.version is not None and rows and carried.version.max() >= len(carried.versions):
        raise ValueError("carried version index outside its table")
    return carried
