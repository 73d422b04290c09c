"""Raw rows: what stage 1 sends for a model whose rows one grid cannot bin.

A model with ``versions`` routes each row to its version's monitor, each binned against its
own reference (configured, or captured from the version's first rows); a model with
``performance`` joins predictions and labels by event id on their raw values (label-only
rows included); a model capturing its reference has no grid until it has captured. For
those, stage 1 forwards the decoded columns themselves alongside the row batch's source,
offset and event time: :class:`RawColumns` holds the numeric values (float64, NaN missing),
the categorical values (strings as per-column tables plus int32 indices, or the reference's
category codes when decode gave codes), and per row the version (table plus index, ``-1``
none), event id and label; for the formats that log a request and its response apart,
per row its half (``halves``, int8: whole, request or response) and pairing key, so the
model's owner pairs them as one process would. Stage 2 rebuilds the :class:`ModelColumns`
a single process would have fed (:meth:`RawColumns.columns`) and feeds the model as it
is, so routing by version, capture and the join are today's code on event-time-ordered
rows.

``header()``/``arrays()`` are the wire and checkpoint form (JSON-able scalars plus arrays);
:func:`raw_from` reads them back, a ``ValueError`` for anything malformed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.ingest.decode import ModelColumns
from monitor.ingest.decode.columns import REQUEST, RESPONSE, WHOLE
from monitor.stats.profile import profile_to_json

__all__ = ["RawColumns", "indexed", "merge_tables", "raw_fingerprint", "raw_from"]

_HALF_KINDS = frozenset({WHOLE, REQUEST, RESPONSE})


def indexed(values: Sequence[str | None]) -> tuple[list[str], np.ndarray]:
    """A string table and per value its index (``-1`` for ``None``)."""
    table: dict[str, int] = {}
    index = np.fromiter(
        (-1 if v is None else table.setdefault(v, len(table)) for v in values),
        np.int32,
        count=len(values),
    )
    return list(table), index


def merge_tables(
    tables: Sequence[list[str]], indices: Sequence[np.ndarray]
) -> tuple[list[str], np.ndarray]:
    """One table for several (table, index) pairs, indices remapped."""
    merged: dict[str, int] = {}
    out = []
    for table, index in zip(tables, indices, strict=True):
        remap = np.array([merged.setdefault(v, len(merged)) for v in table] + [-1], np.int32)
        out.append(remap[index])  # -1 indexes the trailing -1
    return list(merged), (np.concatenate(out) if out else np.zeros(0, np.int32))


@dataclass(frozen=True)
class RawColumns:
    """One row batch's decoded values (see the module docstring)."""

    numeric: np.ndarray  # float64, rows x numeric columns
    categorical: np.ndarray  # int32, rows x categorical columns: table index or category code
    tables: list[list[str]] | None  # per categorical column its strings; None: codes
    version: np.ndarray  # int32 per row, -1 none
    versions: list[str]
    ids: list[str | None]
    labels: list[Any] | None
    # Request/response halves (``ModelColumns.halves``) and their pairing keys, or None.
    halves: np.ndarray | None = None
    pair_keys: list[str | None] | None = None

    @property
    def rows(self) -> int:
        return int(self.numeric.shape[0])

    @staticmethod
    def of(columns: ModelColumns, header_versions: Sequence[str | None] | None) -> RawColumns:
        """The values of decoded columns; a row without a version field takes its
        message's ``version`` header (as ``VersionedModel.feed`` would)."""
        rows = columns.rows
        if columns.codes is not None:
            categorical = np.asarray(columns.codes, np.int32).reshape(rows, -1)
            tables = None
        else:
            pairs = [indexed(values) for values in columns.categorical]
            tables = [t for t, _ in pairs]
            categorical = (
                np.stack([i for _, i in pairs], axis=1) if pairs else np.zeros((rows, 0), np.int32)
            )
        versions: list[str | None] = list(columns.versions)
        if len(versions) != rows:
            versions = [None] * rows
        if header_versions is not None and None in versions:
            from_header = [header_versions[i] for i in columns.msg_index.tolist()]
            versions = [
                v if v is not None else h for v, h in zip(versions, from_header, strict=True)
            ]
        table, version = indexed(versions)
        return RawColumns(
            np.ascontiguousarray(columns.numeric, np.float64).reshape(rows, -1),
            categorical,
            tables,
            version,
            table,
            list(columns.ids),
            None if columns.labels is None else list(columns.labels),
            *_halves_of(columns),
        )

    def columns(self, ts: np.ndarray) -> ModelColumns:
        """The :class:`ModelColumns` a single process decodes from these events."""
        rows = self.rows
        categorical: list[list[str | None]] = []
        codes = None
        if self.tables is None:
            codes = self.categorical.astype(np.int64)
        else:
            for j, table in enumerate(self.tables):
                lookup: list[str | None] = [*table, None]
                categorical.append([lookup[i] for i in self.categorical[:, j].tolist()])
        lookup_v: list[str | None] = [*self.versions, None]
        return ModelColumns(
            numeric=self.numeric,
            categorical=categorical,
            ts=ts,
            ids=list(self.ids),
            msg_index=np.arange(rows, dtype=np.int64),
            versions=[lookup_v[i] for i in self.version.tolist()],
            labels=None if self.labels is None else list(self.labels),
            codes=codes,
            halves=self.halves,
            pair_keys=None if self.pair_keys is None else list(self.pair_keys),
        )

    def take(self, rows: np.ndarray) -> RawColumns:
        pick = rows.tolist()
        return RawColumns(
            self.numeric[rows],
            self.categorical[rows],
            self.tables,
            self.version[rows],
            self.versions,
            [self.ids[i] for i in pick],
            None if self.labels is None else [self.labels[i] for i in pick],
            None if self.halves is None else self.halves[rows],
            None if self.pair_keys is None else [self.pair_keys[i] for i in pick],
        )

    @staticmethod
    def concat(parts: Sequence[RawColumns]) -> RawColumns:
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        if first.tables is None:
            categorical = np.concatenate([p.categorical for p in parts])
            tables = None
        else:
            width = first.categorical.shape[1]
            merged = [
                merge_tables([p.tables[j] for p in parts if p.tables is not None],
                       [p.categorical[:, j] for p in parts])
                for j in range(width)
            ]  # fmt: skip
            tables = [t for t, _ in merged]
            categorical = (
                np.stack([i for _, i in merged], axis=1)
                if merged
                else np.zeros((sum(p.rows for p in parts), 0), np.int32)
            )
        versions, version = merge_tables([p.versions for p in parts], [p.version for p in parts])
        labels = None
        if any(p.labels is not None for p in parts):
            labels = [v for p in parts for v in (p.labels or [None] * p.rows)]
        halves, pair_keys = None, None
        if any(p.halves is not None for p in parts):
            halves = np.concatenate(
                [p.halves if p.halves is not None else np.zeros(p.rows, np.int8) for p in parts]
            )
            pair_keys = [k for p in parts for k in (p.pair_keys or [None] * p.rows)]
        return RawColumns(
            np.concatenate([p.numeric for p in parts]),
            categorical,
            tables,
            version,
            versions,
            [i for p in parts for i in p.ids],
            labels,
            halves,
            pair_keys,
        )

    # -- wire and checkpoint form --------------------------------------------------------

    def header(self) -> dict[str, Any]:
        header: dict[str, Any] = {
            "numeric": int(self.numeric.shape[1]),
            "categorical": int(self.categorical.shape[1]),
            "tables": self.tables,
            "versions": self.versions,
            "ids": self.ids,
            "labels": self.labels,
        }
        if self.halves is not None:  # absent for whole rows: older readers see no change
            header["halves"] = self.halves.tolist()
            # the keys are usually the row ids (oip, kserve): written once
            header["pair_keys"] = "ids" if self.pair_keys == self.ids else self.pair_keys
        return header

    def arrays(self) -> dict[str, np.ndarray]:
        return {"numeric": self.numeric, "categorical": self.categorical, "version": self.version}


RAW_ARRAYS = (("numeric", np.float64), ("categorical", np.int32), ("version", np.int32))


def raw_sizes(header: dict[str, Any], rows: int) -> dict[str, int]:
    """Element counts of the arrays :func:`raw_from` reads."""
    return {
        "numeric": rows * int(header["numeric"]),
        "categorical": rows * int(header["categorical"]),
        "version": rows,
    }


def raw_from(header: dict[str, Any], arrays: dict[str, np.ndarray], rows: int) -> RawColumns:
    """:class:`RawColumns` from :meth:`RawColumns.header` and its arrays."""
    tables = header["tables"]
    raw = RawColumns(
        np.asarray(arrays["numeric"], np.float64).reshape(rows, int(header["numeric"])),
        np.asarray(arrays["categorical"], np.int32).reshape(rows, int(header["categorical"])),
        None if tables is None else [[str(s) for s in t] for t in tables],
        np.asarray(arrays["version"], np.int32).reshape(rows),
        [str(v) for v in header["versions"]],
        [None if i is None else str(i) for i in header["ids"]],
        None if header["labels"] is None else list(header["labels"]),
        *_halves_from(header, rows),
    )
    if len(raw.ids) != rows or (raw.labels is not None and len(raw.labels) != rows):
        raise ValueError("raw rows' ids or labels do not match the row count")
    if raw.version.size and raw.version.max() >= len(raw.versions):
        raise ValueError("raw rows' version index outside its table")
    if raw.tables is not None:
        if len(raw.tables) != raw.categorical.shape[1]:
            raise ValueError("raw rows' category tables do not match the columns")
        for j, table in enumerate(raw.tables):
            if rows and raw.categorical[:, j].max() >= len(table):
                raise ValueError("raw rows' category index outside its table")
    return raw


def _halves_of(columns: ModelColumns) -> tuple[np.ndarray | None, list[str | None] | None]:
    if columns.halves is None:
        return None, None
    keys = columns.pair_keys if columns.pair_keys is not None else [None] * columns.rows
    return np.asarray(columns.halves, np.int8), list(keys)


def _halves_from(
    header: dict[str, Any], rows: int
) -> tuple[np.ndarray | None, list[str | None] | None]:
    """The halves and pairing keys of a header (none in rows written without them)."""
    if "halves" not in header:
        return None, None
    halves, keys = header["halves"], header["pair_keys"]
    if keys == "ids":
        keys = header["ids"]
    if not isinstance(halves, list) or not isinstance(keys, list):
        raise ValueError("raw rows' halves or pairing keys are not lists")
    if len(halves) != rows or len(keys) != rows:
        raise ValueError("raw rows' halves or pairing keys do not match the row count")
    if not all(type(h) is int and h in _HALF_KINDS for h in halves):
        raise ValueError("raw rows' half kind is not whole, request or response")
    if not all(k is None or isinstance(k, str) for k in keys):
        raise ValueError("raw rows' pairing key is not a string")
    return np.array(halves, np.int8).reshape(rows), list(keys)


def raw_fingerprint(model: Any) -> str:
    """The model's fingerprint with its versions section and version profiles: raw rows of
    another configuration are rejected like binned rows of another grid."""
    default = model.default
    digest = hashlib.sha256(b"raw:" + default.fingerprint.encode())
    versions = default.config.versions
    if versions is not None:
        digest.update(json.dumps(versions.model_dump(mode="json"), sort_keys=True).encode())
        for version, profile in sorted(getattr(model, "_profiles", {}).items()):
            digest.update(version.encode())
            digest.update(json.dumps(profile_to_json(profile), sort_keys=True).encode())
    return digest.hexdigest()
