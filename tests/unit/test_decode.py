"""decode_batch: every reject reason, encodings, routing, and a fuzz test."""

from __future__ import annotations

import json
import math
from unittest import mock

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import monitor.ingest.decode.typed as typed_codec
from monitor.config import Config
from monitor.ingest.decode import (
    DecodeSchema,
    EventFields,
    ModelSchema,
    Reason,
    build_decode_schema,
    decode_batch,
)

FRAUD = ModelSchema(
    "fraud", numeric=("amount", "age"), categorical=("country",), prediction="numeric"
)
CHURN = ModelSchema("churn", numeric=("tenure",), prediction="probabilities", classes=("no", "yes"))
SCHEMA = DecodeSchema(models={"fraud": FRAUD, "churn": CHURN})


def dec(*events: object, schema: DecodeSchema = SCHEMA, raw: bool = False):
    payloads = [e if raw or e is None else orjson.dumps(e) for e in events]
    return decode_batch(payloads, np.full(len(payloads), 1000.0), schema)


def reasons(batch) -> list[tuple[int, str]]:
    return sorted((r.index, str(r.reason)) for r in batch.rejected)


def ev(**features: object) -> dict[str, object]:
    return {"model": "fraud", "features": features, "prediction": 0.5}


def test_valid_event_columns() -> None:
    b = dec(
        {
            "model": "fraud",
            "ts": 5.5,
            "id": "a",
            "features": {"amount": 1.5, "age": 3, "country": "DE"},
            "prediction": 0.25,
        }
    )
    cols = b.models["fraud"]
    assert cols.numeric.dtype == np.float64
    assert cols.numeric.tolist() == [[1.5, 3.0, 0.25]]
    assert cols.categorical == [["DE"]]
    assert cols.ts.tolist() == [5.5]
    assert cols.ids == ["a"]
    assert cols.msg_index.tolist() == [0]
    assert cols.unknown_features == 0
    assert cols.labels is None
    assert FRAUD.numeric_names == ("amount", "age", "prediction")
    assert b.rejected == []


def test_missing_values_are_nan_and_none() -> None:
    b = dec(ev(amount=None, country=None), ev(age=2))
    cols = b.models["fraud"]
    assert math.isnan(cols.numeric[0, 0]) and math.isnan(cols.numeric[0, 1])
    assert math.isnan(cols.numeric[1, 0]) and cols.numeric[1, 1] == 2.0
    assert cols.categorical == [[None, None]]


def test_bool_handling() -> None:
    b = dec(ev(amount=True, age=False, country=True), ev(country=False))
    cols = b.models["fraud"]
    assert cols.numeric[:, :2].tolist() == [[1.0, 0.0], [math.nan, math.nan]] or (
        cols.numeric[0, :2].tolist() == [1.0, 0.0] and np.isnan(cols.numeric[1, :2]).all()
    )
    assert cols.categorical == [["true", "false"]]


def test_categorical_normalisation() -> None:
    b = dec(ev(country=7), ev(country=2.5), ev(country=1.0), ev(country="x"), ev(country=True))
    assert b.models["fraud"].categorical == [["7", "2.5", "1.0", "x", "true"]]


@pytest.mark.parametrize(
    ("features", "detail"),
    [
        ({"amount": "1.5"}, "amount"),
        ({"amount": {"a": 1}}, "amount"),
        ({"amount": [1]}, "amount"),
        ({"country": {"a": 1}}, "country"),
        ({"country": [1]}, "country"),
    ],
)
def test_wrong_type_rejects_only_that_event(features: dict[str, object], detail: str) -> None:
    b = dec(ev(amount=1.0, country="DE"), ev(**features), ev(amount=2.0, country="FR"))
    assert reasons(b) == [(1, "wrong_type")]
    assert detail in b.rejected[0].detail
    cols = b.models["fraud"]
    assert cols.numeric[:, 0].tolist() == [1.0, 2.0]
    assert cols.categorical == [["DE", "FR"]]
    assert cols.msg_index.tolist() == [0, 2]


def test_features_not_an_object() -> None:
    b = dec({"model": "fraud", "features": [1, 2]}, {"model": "fraud", "features": "x"})
    assert reasons(b) == [(0, "wrong_type"), (1, "wrong_type")]


def test_no_payload_and_null_message() -> None:
    b = dec({"model": "fraud", "id": "x"}, None)
    assert reasons(b) == [(0, "no_payload"), (1, "no_payload")]
    # prediction alone is a payload (feature and prediction streams may be separate)
    b = dec({"model": "fraud", "prediction": 0.1})
    assert b.models["fraud"].rows == 1 and b.rejected == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{oops", "not_json"),
        (b"", "not_json"),
        (b'{"model": "fraud", "features": {"amount": NaN}}', "non_finite"),
        (b'{"model": "fraud", "features": {"amount": Infinity}}', "non_finite"),
        (b'{"model": "fraud", "features": {"amount": -Infinity}}', "non_finite"),
        (b'{"model": "fraud", "features": {"amount": 1e999}}', "non_finite"),
        (b'{"model": "fraud", "features": {"country": "\xff"}}', "not_utf8"),
        (b"\xff\xfe{}", "not_utf8"),
        (b"42", "not_object"),
        (b'"fraud"', "not_object"),
        (b"null", "not_object"),
        (b'{"features": {"amount": 1}}', "missing_model"),
        (b'{"model": "nope", "features": {"amount": 1}}', "unknown_model"),
        (b'{"model": 3, "features": {"amount": 1}}', "wrong_type"),
        (b'{"model": "fraud", "ts": "yesterday", "features": {"amount": 1}}', "bad_timestamp"),
        (b'{"model": "fraud", "ts": true, "features": {"amount": 1}}', "bad_timestamp"),
        (b'{"model": "fraud", "ts": 1764150000000, "features": {"a": 1}}', "bad_timestamp"),
        (b'{"model": "fraud", "ts": "2025-11-26T10:00:00", "features": {"a": 1}}', "bad_timestamp"),
        (b'{"model": "fraud", "prediction": "high", "features": {}}', "wrong_type"),
    ],
)
def test_every_reason(payload: bytes, reason: str) -> None:
    good = orjson.dumps(ev(amount=1.0))
    b = decode_batch([good, payload, good], np.zeros(3), SCHEMA)
    assert reasons(b) == [(1, reason)]
    assert b.models["fraud"].msg_index.tolist() == [0, 2]


def test_oversized_is_not_parsed() -> None:
    schema = DecodeSchema(models={"fraud": FRAUD}, max_message_bytes=100)
    big = orjson.dumps(ev(country="x" * 200))
    b = decode_batch([big, b"{" * 200], np.zeros(2), schema)
    assert reasons(b) == [(0, "oversized"), (1, "oversized")]


def test_timestamps() -> None:
    b = dec(
        {**ev(amount=1), "ts": "2025-11-26T10:00:00Z"},
        {**ev(amount=1), "ts": "2025-11-26T12:00:00+02:00"},
        {**ev(amount=1), "ts": 17},
        ev(amount=1),
    )
    ts = b.models["fraud"].ts.tolist()
    assert ts == [1764151200.0, 1764151200.0, 17.0, 1000.0]


def test_times_without_offset_rejected_by_default_saying_how_to_accept_them() -> None:
    b = dec({**ev(amount=1), "ts": "2025-11-26T10:00:00"}, ev(amount=2))
    [rejection] = b.rejected
    assert rejection.reason == Reason.bad_timestamp
    assert "no UTC offset" in rejection.detail and "timestamps.timezone" in rejection.detail


@pytest.mark.parametrize("typed", [True, False])
def test_times_without_offset_read_in_the_configured_zone(typed: bool) -> None:
    from zoneinfo import ZoneInfo

    schema = DecodeSchema(models={"fraud": FRAUD}, timezone=ZoneInfo("Europe/Berlin"))
    events = [
        {**ev(amount=1), "ts": "2025-11-26T11:00:00"},  # CET: UTC+1
        {**ev(amount=1), "ts": "2025-07-01T12:00:00"},  # CEST: UTC+2
        {**ev(amount=1), "ts": "2025-11-26T10:00:00Z"},  # an explicit offset still wins
    ]
    with mock.patch.object(typed_codec, "msgspec", typed_codec.msgspec if typed else None):
        b = dec(*events, schema=schema)
    assert b.rejected == []
    assert b.models["fraud"].ts.tolist() == [1764151200.0, 1751364000.0, 1764151200.0]


def test_array_messages_each_event_on_its_own() -> None:
    payload = orjson.dumps([ev(amount=1.0), 5, ev(amount="x"), ev(amount=2.0)])
    b = decode_batch([payload, orjson.dumps(ev(amount=3.0))], np.zeros(2), SCHEMA)
    assert b.models["fraud"].numeric[:, 0].tolist() == [1.0, 2.0, 3.0]
    assert b.models["fraud"].msg_index.tolist() == [0, 0, 1]
    got = sorted((r.index, r.position, str(r.reason)) for r in b.rejected)
    assert got == [(0, 1, "not_object"), (0, 2, "wrong_type")]


def test_array_length_cap() -> None:
    schema = DecodeSchema(models={"fraud": FRAUD}, max_events_per_message=3)
    b = decode_batch([orjson.dumps([ev(amount=1)] * 4)], np.zeros(1), schema)
    assert reasons(b) == [(0, "oversized")]


def test_field_renames_and_topic_bound_model() -> None:
    fields = EventFields(features="x", prediction="score", ts="time", id="rid", model="m")
    schema = DecodeSchema(models={"fraud": FRAUD}, fields=fields, bound_model="fraud")
    b = dec({"x": {"amount": 4}, "score": 0.5, "time": 9, "rid": 12}, schema=schema)
    cols = b.models["fraud"]
    assert cols.numeric.tolist() == [[4.0, math.nan, 0.5]] or (
        cols.numeric[0, 0] == 4.0 and cols.numeric[0, 2] == 0.5
    )
    assert cols.ts.tolist() == [9.0] and cols.ids == ["12"]
    # the bound model ignores the events' own model field
    assert dec({"m": "other", "x": {"amount": 1}}, schema=schema).models["fraud"].rows == 1


def test_prediction_kinds() -> None:
    b = dec(
        {"model": "churn", "features": {"tenure": 3}, "prediction": {"no": 0.25, "yes": 0.75}},
        {"model": "churn", "prediction": {"yes": 1.0, "maybe": 0.0}},
        {"model": "churn", "prediction": 0.3},
    )
    cols = b.models["churn"]
    assert CHURN.numeric_names == ("tenure", "prediction.no", "prediction.yes")
    assert cols.numeric[0].tolist() == [3.0, 0.25, 0.75]
    assert math.isnan(cols.numeric[1, 1]) and cols.numeric[1, 2] == 1.0
    assert reasons(b) == [(2, "wrong_type")]
    cat = DecodeSchema(models={"m": ModelSchema("m", prediction="categorical")})
    b = dec({"model": "m", "prediction": "spam"}, {"model": "m", "prediction": 1}, schema=cat)
    assert b.models["m"].categorical == [["spam", "1"]]


def test_unknown_features_counted_and_ignored() -> None:
    b = dec(
        ev(amount=1, extra=2, more="x"), ev(age=1, extra=None), ev(amount=2, age=3, country="DE")
    )
    assert b.models["fraud"].unknown_features == 3
    assert b.models["fraud"].numeric.shape == (3, 3)


def test_ids_versions_labels() -> None:
    b = dec(
        {**ev(amount=1), "id": 7, "version": "v2", "label": 1}, {**ev(amount=1), "id": {"x": 1}}
    )
    cols = b.models["fraud"]
    assert cols.ids == ["7", None]
    assert cols.versions == ["v2", None]
    assert cols.labels == [1, None]


def test_routing_several_models_and_large_batch() -> None:
    events = [
        ev(amount=float(i)) if i % 3 else {"model": "churn", "prediction": {"no": 1}}
        for i in range(1500)
    ]
    events[700] = ev(amount="bad")
    b = dec(*events)
    fraud = b.models["fraud"]
    expected = [float(i) for i in range(1500) if i % 3 and i != 700]
    assert fraud.numeric[:, 0].tolist() == expected
    assert fraud.msg_index.tolist() == [i for i in range(1500) if i % 3 and i != 700]
    assert b.models["churn"].rows == 500
    assert reasons(b) == [(700, "wrong_type")]
    assert b.accepted + len(b.rejected) == 1500
    assert b.reason_counts() == {Reason.wrong_type: 1}


def test_exact_columns_amid_garbage() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=300)
    payloads: list[bytes | None] = []
    for i, v in enumerate(values):
        payloads.append(orjson.dumps(ev(amount=float(v), country=f"c{i % 4}")))
        payloads += [b"\x00garbage", None, b"[1, 2]", orjson.dumps(ev(amount=[1]))]
    b = decode_batch(payloads, np.zeros(len(payloads)), SCHEMA)
    cols = b.models["fraud"]
    assert np.array_equal(cols.numeric[:, 0], values)
    assert cols.categorical[0] == [f"c{i % 4}" for i in range(300)]
    assert len(b.rejected) == 300 * 5 - 300 + 300  # 4 bad messages, the array holds 2 events


def test_build_decode_schema_from_config() -> None:
    config = Config.model_validate(
        {
            "kafka": {
                "bootstrap_servers": "b:9092",
                "topics": ["t1", {"name": "t2", "model": "churn", "fields": {"features": "f"}}],
                "max_message_bytes": 4096,
            },
            "models": {
                "fraud": {
                    "reference": {"capture_events": 1000},
                    "window": {"events": 1000, "slide": 100},
                    "features": {"amount": {"type": "numeric"}, "c": {"type": "categorical"}},
                    "prediction": {"type": "categorical"},
                },
                "churn": {
                    "reference": {"capture_events": 1000},
                    "window": {"events": 1000, "slide": 100},
                    "features": {"tenure": {"type": "numeric"}},
                    "prediction": {"type": "probabilities", "classes": ["no", "yes"]},
                },
            },
        }
    )
    s1 = build_decode_schema(config, "t1")
    assert s1.bound_model is None and s1.max_message_bytes == 4096
    assert s1.models["fraud"].categorical_names == ("c", "prediction")
    assert s1.models["churn"].numeric_names == ("tenure", "prediction.no", "prediction.yes")
    s2 = build_decode_schema(config, "t2")
    assert s2.bound_model == "churn" and s2.fields.features == "f"


def _nested(depth: int) -> bytes:
    return b'{"model": "fraud", "features": {"amount": ' + b"[" * depth + b"]" * depth + b"}}"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
fuzz_event = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["fraud", "churn", "x"]) | json_values,
        "ts": st.floats(allow_nan=False) | st.text(max_size=30) | json_values,
        "features": st.dictionaries(
            st.sampled_from(["amount", "age", "country", "tenure", "z"]), json_values, max_size=5
        )
        | json_values,
        "prediction": json_values | st.dictionaries(st.sampled_from(["no", "yes"]), json_values),
        "id": json_values,
    },
)
payload = st.one_of(
    st.binary(max_size=200),
    st.none(),
    fuzz_event.map(orjson.dumps),
    st.lists(fuzz_event, max_size=5).map(orjson.dumps),
    st.integers(0, 3000).map(_nested),
    st.sampled_from([b"NaN", b"[1e999]", b'"\xed\xa0\x80"', b"9" * 400, b'"' + b"a" * 5000 + b'"']),
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.lists(payload, max_size=12))
def test_fuzz_never_raises_and_counts_add_up(payloads: list[bytes | None]) -> None:
    schema = DecodeSchema(models={"fraud": FRAUD, "churn": CHURN}, max_message_bytes=4096)
    b = decode_batch(payloads, np.zeros(len(payloads)), schema)
    accepted_msgs = {int(i) for c in b.models.values() for i in c.msg_index}
    rejected_msgs = {r.index for r in b.rejected}
    assert accepted_msgs | rejected_msgs == set(range(len(payloads)))
    for r in b.rejected:
        assert isinstance(r.reason, Reason)
    for c in b.models.values():
        assert c.numeric.shape[0] == c.ts.shape[0] == len(c.ids) == c.rows
        assert all(len(col) == c.rows for col in c.categorical)
        assert not np.isinf(c.numeric).any() and np.isfinite(c.ts).all()
    # events: a single-object message is one event; arrays count their elements
    total = 0
    for p in payloads:
        try:
            obj = orjson.loads(p) if p is not None and len(p) <= 4096 else None
        except orjson.JSONDecodeError:
            obj = None
        total += len(obj) if isinstance(obj, list) and 0 < len(obj) <= 10_000 else 1
    assert b.accepted + len(b.rejected) == total


# --------------------------------------------------------------- typed fast path parity
#
# With msgspec installed most messages take a typed decoder and only the rest take the
# general orjson path; both must give exactly the same batch.


def _general(payloads: list[bytes | None], schema: DecodeSchema):
    with mock.patch.object(typed_codec, "msgspec", None):
        return decode_batch(payloads, np.arange(len(payloads), dtype=np.float64), schema)


def _same(a, b) -> None:
    assert sorted(a.models) == sorted(b.models)
    for name, x in a.models.items():
        y = b.models[name]
        assert np.array_equal(x.numeric, y.numeric, equal_nan=True)
        assert x.numeric.dtype == y.numeric.dtype == np.float64
        assert x.categorical == y.categorical
        assert x.ts.tolist() == y.ts.tolist()
        assert x.ids == y.ids and x.versions == y.versions and x.labels == y.labels
        assert x.msg_index.tolist() == y.msg_index.tolist()
        assert x.unknown_features == y.unknown_features
    key = lambda r: (r.index, -1 if r.position is None else r.position)  # noqa: E731
    assert sorted(a.rejected, key=key) == sorted(b.rejected, key=key)


def _typed(payloads: list[bytes | None], schema: DecodeSchema):
    return decode_batch(payloads, np.arange(len(payloads), dtype=np.float64), schema)


scalar = (
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)
scalar |= st.integers(-(2**70), 2**70).map(lambda i: i)  # beyond 64 bits orjson reads floats
plain_event = st.fixed_dictionaries(
    {"model": st.sampled_from(["fraud", "churn", "fraud", "nope"])},
    optional={
        "ts": st.floats(0, 2e9) | st.sampled_from(["2025-11-26T10:00:00Z", "x"]) | scalar,
        "id": scalar,
        "version": scalar,
        "label": scalar | st.lists(scalar, max_size=2),
        "features": st.dictionaries(
            st.sampled_from(["amount", "age", "country", "tenure", "extra", "z\u00e9"]),
            scalar | st.lists(scalar, max_size=2),
            max_size=6,
        )
        | scalar,
        "prediction": scalar | st.dictionaries(st.sampled_from(["no", "yes", "maybe"]), scalar),
        "other": scalar,
    },
)


def _raw(ev: dict[str, object]) -> bytes:
    # orjson refuses integers past 64 bits; write those by hand
    return json.dumps(ev, allow_nan=False).encode()


@pytest.mark.slow
@settings(max_examples=250, deadline=None)
@given(
    payloads=st.lists(plain_event.map(_raw) | payload, max_size=20),
    bound=st.sampled_from([None, "fraud"]),
)
def test_typed_path_matches_general_path(payloads: list[bytes | None], bound: str | None) -> None:
    schema = DecodeSchema(
        models={"fraud": FRAUD, "churn": CHURN}, bound_model=bound, max_message_bytes=4096
    )
    _same(_typed(payloads, schema), _general(payloads, schema))


@pytest.mark.parametrize(
    "payload",
    [
        b'{"model": "fraud", "zz": 1e400, "features": {"amount": 1}}',
        b'{"model": "fraud", "zz": "\xff", "features": {"amount": 1}}',
        b'{"model": "fraud", "features": {"amount": 1, "zz": [1e400]}}',
        b'{"model": "fraud", "features": {"country": 99999999999999999999999}}',
        b'{"model": "fraud", "id": 99999999999999999999999, "features": {"amount": 1}}',
        b'{"model": "fraud", "label": -99999999999999999999999, "features": {"amount": 1}}',
        b'{"model": "fraud", "features": {"amount": 1, "amount": "x"}}',
        b'{"model": "fraud", "model": "churn", "prediction": {"no": 1}}',
        b'{"model": "fraud", "id": ' + b"[" * 1000 + b"]" * 1000 + b"}",
    ],
)
def test_typed_path_edge_cases(payload: bytes) -> None:
    good = orjson.dumps(ev(amount=1.0, country="DE"))
    for schema in (SCHEMA, DecodeSchema(models={"fraud": FRAUD})):
        batch = [good, payload, good]
        _same(_typed(batch, schema), _general(batch, schema))


def test_learned_keys_and_loose_categories_keep_results() -> None:
    schema = DecodeSchema(models={"fraud": FRAUD}, bound_model="fraud")
    batch = [
        orjson.dumps({**ev(amount=i, country=True if i % 2 else "DE", new=i), "source": "x"})
        for i in range(40)
    ]
    expected = _general(batch, schema)
    assert expected.models["fraud"].unknown_features == 40
    for _ in range(3):  # the first run learns, the next ones take the typed path throughout
        _same(_typed(batch, schema), expected)


def test_a_label_event_is_accepted_with_every_feature_missing() -> None:
    schema = DecodeSchema(models={"fraud": FRAUD})
    batch = decode_batch(
        [b'{"model": "fraud", "id": "req-1", "label": 1, "ts": 5.0}', b'{"model": "fraud"}'],
        np.zeros(2),
        schema,
    )
    cols = batch.models["fraud"]
    assert cols.ids == ["req-1"] and cols.labels == [1]
    assert np.isnan(cols.numeric).all()
    assert [r.reason for r in batch.rejected] == [Reason.no_payload]
