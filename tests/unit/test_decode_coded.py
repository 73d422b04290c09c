"""``Coded`` string columns (a table plus per-row indices and row numbers): every row
operation and reader gives what the plain list of the same strings gives."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.ingest.decode import coded
from monitor.ingest.decode.coded import Coded
from monitor.ingest.decode.columns import DecodedBatch, ModelColumns
from monitor.ingest.decode.limits import MAX_CATEGORY_CHARS, MAX_ID_CHARS, enforce_limits
from monitor.stats.profile import CategoryCodes


def ids() -> Coded:
    # three messages: "r1" of 3 rows, no id (2 rows), "r2" of 1 row; one row with index -1
    return Coded(
        ["r1", None, "r2"],
        np.array([0, 0, 0, 1, 1, 2, -1]),
        np.array([0, 1, 2, 0, 1, 0, 0]),
    )


EXPECTED = ["r1:0", "r1:1", "r1:2", None, None, "r2:0", None]


def test_rows_read_as_the_strings_they_stand_for() -> None:
    col = ids()
    assert col.tolist() == EXPECTED == list(col) == [col[i] for i in range(len(col))]
    assert col == EXPECTED and None in col and "r1:2" in col and "r1:3" not in col
    assert col[1:3].tolist() == EXPECTED[1:3]
    versions = Coded(["v1", "v2"], np.array([1, 1, 0]))
    assert versions.tolist() == ["v2", "v2", "v1"] and None not in versions


@pytest.mark.parametrize("plain", [False, True])
def test_row_operations_agree_with_lists(plain: bool) -> None:
    col: coded.Values = EXPECTED if plain else ids()
    rows = np.array([5, 0, 3, 2])
    mask = np.array([True, False, True, False, True, True, False])
    assert list(coded.take(col, rows)) == [EXPECTED[i] for i in rows.tolist()]
    assert list(coded.keep(col, mask)) == [v for v, k in zip(EXPECTED, mask, strict=True) if k]
    assert list(coded.cut(col, 2, 5)) == EXPECTED[2:5]
    both = coded.concat([col, ["x", None], Coded(["v"], np.array([0, 0]))])
    assert list(both) == [*EXPECTED, "x", None, "v", "v"]
    assert isinstance(both, Coded)
    assert isinstance(coded.concat([col, ["x"]]), list) == plain  # lists stay lists


def test_row_numbers_past_the_cached_suffixes() -> None:
    col = Coded(["r"], np.zeros(1500, np.int64), np.arange(1500))
    assert col.tolist() == [f"r:{n}" for n in range(1500)]
    assert col.longest() == len("r:1499")


def test_codes_come_from_the_table() -> None:
    table = CategoryCodes({"DE": 0, "FR": 1}, unseen=3)
    col = Coded(["FR", "XX", "DE"], np.array([2, 0, -1, 1, 0]))
    assert col.encode_with(table.encode).tolist() == [0, 1, -1, 3, 1]
    assert col.encode_with(table.encode).tolist() == table.encode(col.tolist()).tolist()


def test_length_limits_read_the_table() -> None:
    long_id = "i" * MAX_ID_CHARS
    cols = ModelColumns(
        numeric=np.zeros((3, 0)),
        categorical=[Coded(["c" * (MAX_CATEGORY_CHARS + 5), "ok"], np.array([0, 1, 0]))],
        ts=np.zeros(3),
        ids=Coded([long_id, "fine"], np.array([0, 1, 1]), np.array([0, 0, 1])),
        msg_index=np.array([0, 1, 1]),
        versions=Coded([None], np.array([0, 0, 0])),
    )
    out = enforce_limits(DecodedBatch({"m": cols}, []))
    got = out.models["m"]
    assert list(got.ids) == ["fine:0", "fine:1"]  # the id with its row suffix is too long
    assert list(got.categorical[0]) == ["ok", "c" * MAX_CATEGORY_CHARS]
    assert [(r.index, str(r.reason)) for r in out.rejected] == [(0, "too_long")]
