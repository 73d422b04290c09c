"""``oip``: Open Inference Protocol v2 bodies written by tritonclient (JSON, binary
extension) and open-inference-grpc (protobuf, contents and raw), onto model columns."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import orjson
import pytest

from monitor.ingest.decode import DecodedBatch, DecodeSchema, ModelSchema, Reason
from monitor.ingest.decode.columns import REQUEST, RESPONSE, WHOLE
from monitor.ingest.decode.formats import Headers, MessageBatch, decode_messages
from tests.support.payloads import (
    oip_json_request,
    oip_json_response,
    oip_proto_request,
    oip_proto_response,
)

FRAUD = ModelSchema(
    "fraud",
    numeric=("age", "income"),
    categorical=("country",),
    prediction="probabilities",
    classes=("no", "yes"),
)
SCHEMA = DecodeSchema(models={"fraud": FRAUD}, bound_model="fraud", format="oip")
INPUTS = {
    "age": ("INT64", [41, 29, 35]),
    "income": ("FP32", [1.5, 2.5, 3.25]),
    "country": ("BYTES", ["DE", "US", "FR"]),
}
PROBS = {"probs": ("FP32", [0.1, 0.9, 0.3, 0.7, 0.5, 0.5])}
PROB_SHAPE = {"probs": [3, 2]}


def decode(
    payloads: Sequence[bytes | None],
    schema: DecodeSchema = SCHEMA,
    headers: Sequence[Headers] | None = None,
) -> DecodedBatch:
    hdrs = list(headers) if headers is not None else [None] * len(payloads)
    batch = MessageBatch(payloads, np.arange(len(payloads), dtype=np.float64) + 100.0, lambda: hdrs)
    return decode_messages(batch, schema)


def expect_request_rows(batch: DecodedBatch, request_id: str = "42") -> None:
    cols = batch.models["fraud"]
    assert not batch.rejected
    np.testing.assert_allclose(cols.numeric[:, :2], [[41, 1.5], [29, 2.5], [35, 3.25]])
    assert np.isnan(cols.numeric[:, 2:]).all()
    assert cols.categorical == [["DE", "US", "FR"]]
    assert cols.ids == [f"{request_id}:{r}" for r in range(3)]
    assert cols.pair_keys == cols.ids
    assert cols.halves is not None and cols.halves.tolist() == [REQUEST] * 3
    assert cols.ts.tolist() == [100.0] * 3


def test_json_request_from_tritonclient() -> None:
    body, _ = oip_json_request(INPUTS, "42")
    expect_request_rows(decode([body]))


def test_binary_extension_with_the_header_length() -> None:
    body, length = oip_json_request(INPUTS, "42", binary=True)
    assert length is not None
    expect_request_rows(
        decode([body], headers=[[("inference-header-content-length", b"%d" % length)]])
    )


def test_binary_extension_without_the_header_length_says_what_is_missing() -> None:
    body, _ = oip_json_request(INPUTS, "42", binary=True)
    (rejection,) = decode([body]).rejected
    assert rejection.reason == Reason.bad_framing
    assert "inference-header-content-length" in rejection.detail


def test_nested_data_is_accepted() -> None:
    body, _ = oip_json_request(INPUTS, "42")
    doc = orjson.loads(body)
    for tensor in doc["inputs"]:
        tensor["data"] = [[v] for v in tensor["data"]]  # [N,1] written nested
    expect_request_rows(decode([orjson.dumps(doc)]))


@pytest.mark.parametrize("raw", [False, True], ids=["contents", "raw"])
def test_protobuf_request(raw: bool) -> None:
    expect_request_rows(decode([oip_proto_request(INPUTS, "42", raw=raw)]))


@pytest.mark.parametrize(
    "body",
    [
        oip_json_response(PROBS, "42", shapes=PROB_SHAPE),
        oip_proto_response(PROBS, "42", shapes=PROB_SHAPE),
        oip_proto_response(PROBS, "42", raw=False, shapes=PROB_SHAPE),
    ],
    ids=["json", "protobuf-raw", "protobuf-contents"],
)
def test_probability_response_maps_columns_to_classes(body: bytes) -> None:
    batch = decode([body])
    cols = batch.models["fraud"]
    assert not batch.rejected
    np.testing.assert_allclose(cols.numeric[:, 2:], [[0.1, 0.9], [0.3, 0.7], [0.5, 0.5]], rtol=1e-6)
    assert np.isnan(cols.numeric[:, :2]).all()
    assert cols.categorical == [[None] * 3]
    assert cols.halves is not None and cols.halves.tolist() == [RESPONSE] * 3
    assert cols.versions == ["3"] * 3
    assert cols.pair_keys == ["42:0", "42:1", "42:2"]


def test_wide_tensor_maps_to_configured_feature_names() -> None:
    schema = DecodeSchema(
        models={"fraud": FRAUD},
        bound_model="fraud",
        format="oip",
        tensors={"input-0": ("income", "age")},
    )
    body, _ = oip_json_request(
        {"input-0": ("FP64", [1.5, 41, 2.5, 29, 3.25, 35])}, "42", shapes={"input-0": [3, 2]}
    )
    cols = decode([body], schema).models["fraud"]
    np.testing.assert_allclose(cols.numeric[:, :2], [[41, 1.5], [29, 2.5], [35, 3.25]])
    assert cols.categorical == [[None] * 3]


def test_scores_labels_and_numeric_categories() -> None:
    scored = ModelSchema("fraud", numeric=("age",), categorical=("zip",), prediction="numeric")
    labelled = ModelSchema("churn", numeric=("age",), prediction="categorical")
    schema = DecodeSchema(models={"fraud": scored, "churn": labelled}, format="oip")
    request, _ = oip_json_request({"age": ("INT64", [1, 2]), "zip": ("INT64", [10115, 80331])}, "r")
    doc = orjson.loads(request)
    doc["model_name"] = "fraud"
    batch = decode(
        [
            orjson.dumps(doc),
            oip_json_response({"score": ("FP64", [0.25, 0.75])}, "r", model="fraud"),
            oip_proto_response({"label": ("BYTES", ["stay", "leave"])}, "s", model="churn"),
            oip_json_response({"label": ("BOOL", [True, False])}, "t", model="churn"),
        ],
        schema,
    )
    assert not batch.rejected
    fraud, churn = batch.models["fraud"], batch.models["churn"]
    assert fraud.categorical == [["10115", "80331", None, None]]
    np.testing.assert_allclose(fraud.numeric[2:, 1], [0.25, 0.75])
    assert churn.categorical == [["stay", "leave", "true", "false"]]


def test_requests_of_a_model_without_prediction_are_whole_and_responses_add_nothing() -> None:
    plain = ModelSchema("fraud", numeric=("age",))
    schema = DecodeSchema(models={"fraud": plain}, bound_model="fraud", format="oip")
    request, _ = oip_json_request({"age": ("INT64", [1, 2])}, "r")
    batch = decode([request, oip_json_response(PROBS, "r", shapes=PROB_SHAPE)], schema)
    cols = batch.models["fraud"]
    assert cols.rows == 2 and not batch.rejected
    assert cols.halves is not None and cols.halves.tolist() == [WHOLE, WHOLE]


def test_unmonitored_tensors_are_counted_unknown_and_model_comes_from_the_header() -> None:
    schema = DecodeSchema(models={"fraud": FRAUD}, format="oip")
    body, _ = oip_json_request(
        {**INPUTS, "extra": ("FP32", [1, 2, 3, 4, 5, 6])}, "42", shapes={"extra": [3, 2]}
    )
    batch = decode([body], schema, headers=[[("mlserver-model", b"fraud")]])
    assert batch.models["fraud"].unknown_features == 6
    assert decode([body], schema).rejected[0].reason == Reason.missing_model
    wrong = decode([body], schema, headers=[[("mlserver-model", b"nope")]])
    assert wrong.rejected[0].reason == Reason.unknown_model


def _tensor_doc(**change: object) -> bytes:
    tensor = {"name": "age", "shape": [2, 1], "datatype": "INT64", "data": [1, 2]}
    tensor.update(change)
    return orjson.dumps({"id": "x", "inputs": [tensor]})


def _cut(body: bytes, keep: int) -> bytes:
    return body[:keep]


PROTO = oip_proto_request(INPUTS, "42", raw=True)
MALFORMED: dict[str, tuple[bytes | None, Reason]] = {
    "none": (None, Reason.no_payload),
    "not json": (b"{oops", Reason.not_json),
    "array body": (b"[1, 2]", Reason.not_object),
    "no tensors": (b'{"id": "x"}', Reason.no_payload),
    "empty inputs": (b'{"id": "x", "inputs": []}', Reason.no_payload),
    "inputs not array": (b'{"inputs": {}}', Reason.wrong_type),
    "tensor not object": (b'{"inputs": [1]}', Reason.wrong_type),
    "no shape": (
        orjson.dumps({"inputs": [{"name": "age", "datatype": "INT64", "data": [1]}]}),
        Reason.wrong_type,
    ),
    "3-d shape": (_tensor_doc(shape=[1, 1, 2]), Reason.bad_shape),
    "negative dim": (_tensor_doc(shape=[-2]), Reason.bad_shape),
    "size mismatch": (_tensor_doc(shape=[3, 1]), Reason.bad_shape),
    "ragged nested": (_tensor_doc(data=[[1], [2, 3]]), Reason.bad_shape),
    "data not array": (_tensor_doc(data=5), Reason.bad_shape),
    "wide unmapped": (_tensor_doc(shape=[1, 2]), Reason.bad_shape),
    "unknown datatype": (_tensor_doc(datatype="FP8"), Reason.bad_datatype),
    "strings for INT64": (_tensor_doc(data=["1", "2"]), Reason.bad_datatype),
    "null in data": (_tensor_doc(data=[1, None]), Reason.bad_datatype),
    "BYTES for numeric": (_tensor_doc(datatype="BYTES", data=["a", "b"]), Reason.bad_datatype),
    "BYTES not strings": (
        _tensor_doc(name="country", datatype="BYTES", data=["a", 1]),
        Reason.bad_datatype,
    ),
    "rows disagree": (
        orjson.dumps(
            {
                "inputs": [
                    orjson.loads(_tensor_doc())["inputs"][0],
                    {"name": "income", "shape": [1], "datatype": "FP64", "data": [1.0]},
                ]
            }
        ),
        Reason.bad_shape,
    ),
    "binary size too big": (
        orjson.dumps(
            {
                "inputs": [
                    {
                        "name": "age",
                        "shape": [2],
                        "datatype": "INT64",
                        "parameters": {"binary_data_size": 99},
                    }
                ]
            }
        ),
        Reason.truncated,
    ),
    "protobuf cut": (_cut(PROTO, len(PROTO) - 3), Reason.truncated),
    "raw contents short": (
        oip_proto_request({"age": ("INT64", [1, 2])}, "x", raw=True)[:-1],
        Reason.truncated,
    ),
    "bad wire type": (b"\x0f\x00", Reason.bad_framing),
    "11-byte varint": (b"\x08" + b"\xff" * 10 + b"\x01", Reason.bad_framing),
    "field number 0": (b"\x02\x00", Reason.bad_framing),
    "infinity in raw FP32": (
        oip_proto_request({"income": ("FP32", [np.inf, 1.0])}, "x", raw=True),
        Reason.non_finite,
    ),
    "non-UTF-8 BYTES": (
        oip_proto_request({"country": ("BYTES", ["DE"])}, "x", raw=True).replace(
            b"DE", b"\xff\xfe"
        ),
        Reason.not_utf8,
    ),
    "oversized": (b'{"inputs": [' + b" " * 2000 + b"]}", Reason.oversized),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_every_malformed_shape_has_its_reason(case: str) -> None:
    payload, reason = MALFORMED[case]
    schema = DecodeSchema(
        models={"fraud": FRAUD}, bound_model="fraud", format="oip", max_message_bytes=1500
    )
    good, _ = oip_json_request(INPUTS, "ok")
    batch = decode([good, payload, good], schema)
    assert [(r.index, r.reason) for r in batch.rejected] == [(1, reason)]
    assert batch.rejected[0].detail
    assert batch.models["fraud"].rows == 6


def test_probabilities_need_one_column_per_class() -> None:
    batch = decode(
        [
            oip_json_response({"probs": ("FP32", [0.1, 0.9])}, "x", shapes={"probs": [1, 2]}),
            oip_json_response({"p": ("FP32", [0.1, 0.2, 0.7])}, "y", shapes={"p": [1, 3]}),
        ]
    )
    assert [r.reason for r in batch.rejected] == [Reason.bad_shape]
    assert "3 columns, not 2 classes" in batch.rejected[0].detail


def test_named_prediction_output() -> None:
    schema = DecodeSchema(
        models={"fraud": FRAUD}, bound_model="fraud", format="oip", prediction_output="probs"
    )
    both = {"label": ("INT64", [1, 0, 1]), **PROBS}
    batch = decode(
        [
            oip_json_response(both, "x", shapes=PROB_SHAPE),
            oip_json_response({"label": ("INT64", [1, 0, 1])}, "y"),
        ],
        schema,
    )
    np.testing.assert_allclose(batch.models["fraud"].numeric[:, 3], [0.9, 0.7, 0.5], rtol=1e-6)
    assert [r.reason for r in batch.rejected] == [Reason.bad_shape]
    assert "no output 'probs'" in batch.rejected[0].detail


def test_nan_in_raw_contents_is_a_missing_value() -> None:
    body = oip_proto_request({"income": ("FP64", [np.nan, 2.0])}, "x", raw=True)
    batch = decode([body])
    income = batch.models["fraud"].numeric[:, 1]
    assert not batch.rejected
    assert np.isnan(income[0]) and income[1] == 2


def test_the_batch_fast_path_gives_what_the_per_message_path_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import monitor.ingest.decode.formats.oip as oip_module

    wide = DecodeSchema(
        models={"fraud": FRAUD},
        bound_model="fraud",
        format="oip",
        tensors={"input-0": ("income", "age")},
        max_message_bytes=1500,
    )
    other = dict(INPUTS)
    other["extra"] = ("INT64", [1, 2, 3])
    payloads: list[bytes | None] = [
        oip_json_request(INPUTS, "a")[0],
        oip_json_response(PROBS, "a", shapes=PROB_SHAPE),
        oip_json_request(other, "b")[0],  # another tensor set: its own group
        oip_json_request({"input-0": ("FP64", [1.5, 41])}, "c", shapes={"input-0": [1, 2]})[0],
        oip_json_request(INPUTS, None)[0],
        *[payload for payload, _ in MALFORMED.values()],
        oip_json_response(PROBS, "d", shapes=PROB_SHAPE),
    ]
    fast = decode(payloads, wide)
    monkeypatch.setattr(oip_module, "fast_oip_json", lambda p, ts, s: ([], list(range(len(p)))))
    monkeypatch.setattr(oip_module, "scanned_oip_json", lambda p, ts, s: ([], list(range(len(p)))))
    slow = decode(payloads, wide)
    assert sorted(fast.rejected, key=lambda r: r.index) == sorted(
        slow.rejected, key=lambda r: r.index
    )
    a, b = fast.models["fraud"], slow.models["fraud"]
    order = np.argsort(a.msg_index, kind="stable")
    a = a.take(order)
    b = b.take(np.argsort(b.msg_index, kind="stable"))
    np.testing.assert_array_equal(a.numeric, b.numeric)
    for field in ("categorical", "ids", "pair_keys", "versions", "unknown_features"):
        assert getattr(a, field) == getattr(b, field), field
    for field in ("ts", "msg_index", "halves"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_an_over_long_request_id_is_rejected_on_the_fast_path_too() -> None:
    body, _ = oip_json_request(INPUTS, "x" * 257)
    good, _ = oip_json_request(INPUTS, "ok")
    batch = decode([good, body])
    assert [(r.index, r.reason) for r in batch.rejected] == [(1, Reason.too_long)]
    assert batch.models["fraud"].rows == 3


@pytest.mark.parametrize("kind", ["json", "protobuf raw"])
def test_a_batch_request_of_several_megabytes_is_read_when_configured(kind: str) -> None:
    """What servers really send: one message of 1,500 rows x 100 features (about 3 MB of
    JSON, 1.2 MB raw); over the default limit it is ``oversized``, under a raised one read
    exactly."""
    names = tuple(f"f{k}" for k in range(100))
    wide = ModelSchema("fraud", numeric=names, categorical=(), prediction="numeric")
    values = np.random.default_rng(5).normal(size=(1500, 100))
    flat = values.ravel().tolist()
    if kind == "json":
        body, _ = oip_json_request({"x": ("FP64", flat)}, "big", shapes={"x": [1500, 100]})
    else:
        body = oip_proto_request({"x": ("FP64", flat)}, "big", raw=True, shapes={"x": [1500, 100]})
    assert len(body) > 1_100_000
    base = {"models": {"fraud": wide}, "bound_model": "fraud", "format": "oip"}
    small = DecodeSchema(**base, tensors={"x": names})  # type: ignore[arg-type]
    assert [r.reason for r in decode([body], small).rejected] == [Reason.oversized]
    large = DecodeSchema(**base, tensors={"x": names}, max_message_bytes=16 << 20)  # type: ignore[arg-type]
    batch = decode([body], large)
    assert not batch.rejected
    cols = batch.models["fraud"]
    np.testing.assert_array_equal(cols.numeric[:, :100], values)
    assert cols.rows == 1500 and cols.ids[1499] == "big:1499"
