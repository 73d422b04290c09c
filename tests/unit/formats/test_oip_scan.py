"""The Numba scanner of OIP JSON bodies reads exactly what the orjson paths read: the same
columns, the same rejections, over tritonclient-written bodies and hostile ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import monitor.ingest.decode.formats.oip as oip_module
from monitor.ingest.decode import CategoryCodes, DecodedBatch, DecodeSchema, ModelSchema
from monitor.ingest.decode.formats import MessageBatch, decode_messages
from monitor.ingest.decode.formats.oip_columns import scanned_oip_json
from monitor.ingest.decode.formats.oip_groups import distinct_strings
from monitor.ingest.decode.formats.oip_scan import scan_bodies
from tests.support.payloads import oip_json_request, oip_json_response

MODEL = ModelSchema(
    "fraud",
    numeric=("age", "income", "limit"),
    categorical=("country", "active"),
    prediction="probabilities",
    classes=("no", "yes"),
)
CODES = (CategoryCodes({"DE": 0, "US": 1, "é": 2}, 4), CategoryCodes({"true": 0, "false": 1}, 3))
SCHEMA = DecodeSchema(
    models={"fraud": MODEL},
    bound_model="fraud",
    format="oip",
    tensors={"wide": ("income", "limit")},
    max_message_bytes=4000,
)


def decode(payloads: Sequence[bytes | None], schema: DecodeSchema) -> DecodedBatch:
    ts = np.arange(len(payloads), dtype=np.float64) + 100.0
    return decode_messages(MessageBatch(payloads, ts, lambda: [None] * len(payloads)), schema)


def without_scanner(
    payloads: Sequence[bytes | None], schema: DecodeSchema, monkeypatch: pytest.MonkeyPatch
) -> DecodedBatch:
    with monkeypatch.context() as m:
        m.setattr(oip_module, "scanned_oip_json", lambda p, ts, s: ([], list(range(len(p)))))
        return decode(payloads, schema)


def assert_same(a: DecodedBatch, b: DecodedBatch) -> None:
    key = lambda r: r.index  # noqa: E731
    assert sorted(a.rejected, key=key) == sorted(b.rejected, key=key)
    assert a.models.keys() == b.models.keys()
    for name in a.models:
        x, y = a.models[name], b.models[name]
        x = x.take(np.argsort(x.msg_index, kind="stable"))
        y = y.take(np.argsort(y.msg_index, kind="stable"))
        np.testing.assert_array_equal(x.numeric, y.numeric)
        np.testing.assert_array_equal(np.signbit(x.numeric), np.signbit(y.numeric))
        for field in ("categorical", "ids", "pair_keys", "versions", "unknown_features"):
            assert getattr(x, field) == getattr(y, field), field
        for field in ("ts", "msg_index", "halves", "codes"):
            np.testing.assert_array_equal(getattr(x, field), getattr(y, field))


# mostly numbers the scanner converts, some it passes on (huge, tiny, long mantissas)
floats = st.one_of(
    st.floats(-1e6, 1e6),
    st.integers(-(10**6), 10**6).map(lambda v: v / 1000),
    st.floats(allow_nan=False, allow_infinity=False),
)
ints = st.one_of(st.integers(-(2**31), 2**31), st.integers(-(2**62), 2**62))
small = st.integers(-1000, 1000)
# mostly plain categories, some with escapes or non-ASCII (passed on)
plain = st.sampled_from(["DE", "US", "", "x/y", "a b"])
words = st.one_of(plain, plain, plain, st.sampled_from(["é", 'a"b', "a\\b"]), st.text(max_size=4))


@st.composite
def request(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(1, 4))
    age_type = draw(st.sampled_from(["INT64", "FP64"]))
    inputs: dict[str, tuple[str, list[Any]]] = {
        "age": (age_type, draw(st.lists(st.one_of(ints, small), min_size=n, max_size=n))),
        "country": ("BYTES", draw(st.lists(words, min_size=n, max_size=n))),
    }
    shapes = {}
    if draw(st.booleans()):
        inputs["wide"] = ("FP64", draw(st.lists(floats, min_size=2 * n, max_size=2 * n)))
        shapes["wide"] = [n, 2]
    else:
        single = st.floats(allow_nan=False, allow_infinity=False, width=32)
        inputs["income"] = ("FP32", draw(st.lists(single, min_size=n, max_size=n)))
    if draw(st.booleans()):
        inputs["active"] = ("BOOL", draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    if draw(st.booleans()):
        inputs["extra"] = ("INT32", draw(st.lists(st.integers(0, 255), min_size=n, max_size=n)))
    order = draw(st.permutations(list(inputs)))
    rid = draw(st.one_of(st.none(), st.sampled_from(["r1", "r2", "x" * 300]), st.text(max_size=5)))
    rid = rid if draw(st.booleans()) else "r3"
    return oip_json_request({k: inputs[k] for k in order}, rid, shapes=shapes)[0]


@st.composite
def response(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(1, 3))
    probs = draw(st.lists(floats, min_size=2 * n, max_size=2 * n))
    rid = draw(st.one_of(st.none(), st.sampled_from(["r1", "r2"])))
    version = draw(st.one_of(st.none(), st.just("3")))
    shapes = {"probs": [n, 2]}
    return oip_json_response({"probs": ("FP64", probs)}, rid, version=version, shapes=shapes)


EDITS = [
    (b'"data":[', b'"data":[['),  # unbalanced nesting
    (b'"shape":[', b'"shape":[0,'),
    (b'"shape":[', b'"shape":[1,1,'),
    (b'"datatype":"FP64"', b'"datatype":"FP128"'),
    (b'"datatype":"BYTES"', b'"datatype":"FP64"'),
    (b'"datatype":"INT64"', b'"datatype":"BYTES"'),
    (b'"name":"', b'"parameters":{"x":1},"name":"'),
    (b'"name":"', b'"parameters":{"binary_data_size":8},"name":"'),
    (b'"name":"', b'"name":"a","name":"'),
    (b'"name":"age"', b'"name":"\\u0061ge"'),
    (b'"id":"', b'"id":"r","id":"'),
    (b'"id":', b'"model_version":7,"id":'),
    (b'"id":', b'"id":12,"x":'),
    (b"]}", b"]},"),
    (b"1", b"1e400"),
    (b"1", b"true"),
    (b"1", b"null"),
    (b"1", b"-0"),
    (b"2", b"9007199254740993"),
    (b'"inputs":', b'"outputs":[],"inputs":'),
    (b'"outputs":', b'"inputs":[],"outputs":'),
    (b'"DE"', b'"D\\u0045"'),
    (b'"DE"', b'["DE"]'),
    (b"{", b" \n{"),
    (b"}", b"} x"),
]


@st.composite
def hostile(draw: st.DrawFn) -> bytes | None:
    body = draw(st.one_of(request(), response()))
    how = draw(st.integers(0, 3))
    if how == 0 and len(body) > 1:
        return body[: draw(st.integers(0, len(body) - 1))]
    if how == 1:
        at = draw(st.integers(0, len(body) - 1))
        return body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1 :]
    if how == 2:
        old, new = draw(st.sampled_from(EDITS))
        return body.replace(old, new, 1)
    return draw(st.sampled_from([None, b"", b"[]", b"{}", b'{"inputs": {}}', b"x" * 5000]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(request(), response(), hostile()), min_size=1, max_size=10),
    st.booleans(),
)
def test_the_scanner_reads_what_the_orjson_paths_read(
    payloads: list[bytes | None], whole: bool
) -> None:
    # whole rows (a model without prediction) and halves (with one)
    model = replace(MODEL, prediction=None, classes=(), codes=CODES) if whole else MODEL
    schema = replace(SCHEMA, models={"fraud": model})
    mp = pytest.MonkeyPatch()
    try:
        assert_same(decode(payloads, schema), without_scanner(payloads, schema, mp))
    finally:
        mp.undo()


def test_a_boolean_row_count_is_a_bad_shape_on_every_path() -> None:
    # Found by the property above: numpy took the per-message path's `true` for 1 when
    # a regular message of the same tensors shared its group.
    good = (
        b'{"model_name":"fraud","outputs":'
        b'[{"name":"probs","shape":[1,2],"datatype":"FP64","data":[0.0,0.0]}]}'
    )
    payloads: list[bytes | None] = [good, good.replace(b"[1,2]", b"[true,2]")]
    for batch in (
        decode(payloads, SCHEMA),
        without_scanner(payloads, SCHEMA, pytest.MonkeyPatch()),
    ):
        assert [(r.index, r.reason.value) for r in batch.rejected] == [(1, "bad_shape")]


def _status(payloads: list[bytes]) -> list[int]:
    lengths = np.array([len(p) for p in payloads], np.int64)
    ends = np.cumsum(lengths)
    buf = np.frombuffer(b"".join(payloads), np.uint8)
    return scan_bodies(buf, ends - lengths, ends).status.tolist()  # type: ignore[no-any-return]


def test_tritonclient_bodies_are_read_by_the_scanner(monkeypatch: pytest.MonkeyPatch) -> None:
    inputs: dict[str, tuple[str, list[Any]]] = {
        "age": ("INT64", [41, 29]),
        "country": ("BYTES", ["DE", "US"]),
        "wide": ("FP64", [1.5, 2.0, -0.25, 1e20]),
        "active": ("BOOL", [True, False]),
    }
    payloads = [
        oip_json_request(inputs, "r1", shapes={"wide": [2, 2]})[0],
        oip_json_response(
            {"probs": ("FP32", [0.25, 0.75, 0.5, 0.5])}, "r1", shapes={"probs": [2, 2]}
        ),  # fmt: skip
        b'{"inputs": [{"name": "age", "shape": [2], "datatype": "INT64", "data": [[1], [2]]}]}',
    ]
    assert _status(payloads) == [0, 0, 0]
    taken = scanned_oip_json(payloads, np.zeros(3), SCHEMA)
    assert taken[1] == [] and sum(c.rows for c in taken[0]) == 6
    batch = decode(payloads, SCHEMA)
    cols = batch.models["fraud"]
    np.testing.assert_array_equal(cols.numeric[:2, :3], [[41, 1.5, 2], [29, -0.25, 1e20]])
    np.testing.assert_array_equal(cols.numeric[2:4, 3:], [[0.25, 0.75], [0.5, 0.5]])
    assert cols.categorical[0][:2] == ["DE", "US"] and cols.categorical[1][:2] == ["true", "false"]
    assert_same(batch, without_scanner(payloads, SCHEMA, monkeypatch))


@pytest.mark.parametrize(
    "body",
    [
        b'{"inputs": [{"name": "a\\u0062", "shape": [1], "datatype": "FP64", "data": [1]}]}',
        b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1], '
        b'"parameters": {"binary_data_size": 8}}]}',
        b'{"inputs": [{"name": "a", "shape": [1], "datatype": "BYTES", "data": [1]}]}',
        b'{"inputs": [{"name": "a", "shape": [2], "datatype": "FP64", "data": [[1], [2, 3]]}]}',
        b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [null]}]}',
        b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]},]}',
        b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}]}}',
        b'{"id": 7, "inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}]}',
    ],
)
def test_what_the_scanner_is_unsure_of_goes_to_the_orjson_paths(body: bytes) -> None:
    assert _status([body]) == [1]


def test_equal_hashes_of_different_strings_stay_apart() -> None:
    buf = np.frombuffer(b"abacab", np.uint8)
    starts = np.array([0, 2, 4, 0], np.int64)  # "ab", "ac", "ab", "a"
    ends = np.array([2, 4, 6, 1], np.int64)
    hashes = np.zeros(4, np.int64)  # every string collides
    idx = np.arange(4, dtype=np.int64)
    inverse, reps = np.empty(4, np.int64), np.empty(4, np.int64)
    table = np.empty(16, np.int64)
    count = distinct_strings(buf, starts, ends, hashes, idx, table, inverse, reps)
    assert count == 3 and inverse.tolist() == [0, 1, 0, 2] and reps[:3].tolist() == [0, 1, 3]
