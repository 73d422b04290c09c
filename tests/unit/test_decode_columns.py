"""ModelColumns row operations carry every field, so a new field cannot be forgotten."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from monitor.ingest.decode import ModelColumns
from monitor.ingest.decode.columns import merge_models
from monitor.stats.binned import BinnedRows

ROWS = 5
#: Fields that are not one entry per row: what each row operation does with them.
BATCH_LEVEL = {"unknown_features"}


def full(rows: int = ROWS, first: int = 0, unknown: int = 7) -> ModelColumns:
    """Columns with every field set; row ``k`` holds values derived from ``first + k``."""
    r = np.arange(first, first + rows)
    return ModelColumns(
        numeric=np.column_stack([r * 1.0, r * 10.0]),
        categorical=[[f"c{k}" for k in r.tolist()], [f"d{k}" for k in r.tolist()]],
        ts=r * 100.0,
        ids=[f"id{k}" for k in r.tolist()],
        msg_index=r.astype(np.int64),
        unknown_features=unknown,
        versions=[f"v{k}" for k in r.tolist()],
        labels=[k % 2 for k in r.tolist()],
        codes=np.column_stack([r, -r]).astype(np.int64),
        halves=(r % 3).astype(np.int8),
        pair_keys=[f"p{k}" for k in r.tolist()],
        binned=BinnedRows(
            np.column_stack([r % 7, r % 5, r % 3]).astype(np.uint8),
            np.array([0, 1]),
            np.array([2]),
            np.flatnonzero(r % 2 == 0).astype(np.int32),
            np.ones(int((r % 2 == 0).sum()), np.int32),
            (r[r % 2 == 0] * 1.5).astype(np.float64),
        ),
    )


def test_every_field_is_set_by_the_fixture() -> None:
    defaults = ModelColumns(np.empty((0, 0)), [], np.empty(0), [], np.empty(0, dtype=np.int64))
    for f in dataclasses.fields(ModelColumns):
        value = getattr(full(), f.name)
        default = getattr(defaults, f.name)
        assert value is not None and not _same(value, default), f"fixture leaves {f.name} unset"


def rows_of(columns: ModelColumns, name: str) -> list[Any]:
    """Field ``name`` as one entry per row, whatever its container."""
    value = getattr(columns, name)
    if name == "categorical":
        return [tuple(col[k] for col in value) for k in range(columns.rows)]
    if isinstance(value, BinnedRows):
        outer = [
            sorted((c, v) for r, c, v in zip(*_outer(value), strict=True) if r == k)
            for k in range(value.rows)
        ]
        return [(tuple(row), tuple(o)) for row, o in zip(value.codes.tolist(), outer, strict=True)]
    if isinstance(value, np.ndarray):
        return [tuple(row) if value.ndim == 2 else row for row in value.tolist()]
    return list(value)


def _outer(value: BinnedRows) -> tuple[list[int], list[int], list[float]]:
    return value.outer_row.tolist(), value.outer_col.tolist(), value.outer_value.tolist()


def expect_rows(got: ModelColumns, source: ModelColumns, picked: list[int]) -> None:
    assert got.rows == len(picked)
    for f in dataclasses.fields(ModelColumns):
        if f.name in BATCH_LEVEL:
            continue
        whole = rows_of(source, f.name)
        assert rows_of(got, f.name) == [whole[k] for k in picked], f.name


OPERATIONS = {
    "take": (lambda c: c.take(np.array([4, 1, 3], dtype=np.int64)), [4, 1, 3]),
    "slice_rows": (lambda c: c.slice_rows(1, 4), [1, 2, 3]),
    "drop_rows": (lambda c: c.drop_rows({0, 3}), [1, 2, 4]),
    "drop_rows of a dict's keys": (lambda c: c.drop_rows({2: "why"}), [0, 1, 3, 4]),
}


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_row_operations_keep_every_field(name: str) -> None:
    operation, picked = OPERATIONS[name]
    source = full()
    got = operation(source)
    expect_rows(got, source, picked)
    assert got.unknown_features == source.unknown_features


def test_concat_joins_every_field_and_adds_up_the_unknown_keys() -> None:
    a, b = full(3, first=0, unknown=2), full(2, first=3, unknown=5)
    got = ModelColumns.concat([a, b])
    expect_rows(got, full(5), [0, 1, 2, 3, 4])
    assert got.unknown_features == 7
    assert ModelColumns.concat([a]) is a


def test_concat_fills_missing_labels_with_none() -> None:
    a, b = full(2), dataclasses.replace(full(1, first=2), labels=None)
    assert ModelColumns.concat([a, b]).labels == [0, 1, None]


def test_dropping_nothing_or_taking_nothing() -> None:
    source = full()
    assert source.drop_rows({}) is source
    empty = source.take(np.empty(0, dtype=np.int64))
    expect_rows(empty, source, [])


def test_merge_puts_rows_back_in_message_order() -> None:
    source = full()
    evens = source.take(np.array([0, 2, 4], dtype=np.int64))
    odds = source.take(np.array([1, 3], dtype=np.int64))
    merged = merge_models({"m": evens}, {"m": odds, "other": odds})
    expect_rows(merged["m"], source, [0, 1, 2, 3, 4])
    assert merged["other"] is odds


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
    return a == b
