"""The columnar scanner: exact numbers, and the same columns and rejections as the object
paths for every message, including hostile ones (it either reads a message exactly as they
would or passes it on)."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import monitor.ingest.decode.batch as decode_batch_module
from monitor.ingest.decode import CategoryCodes, DecodeSchema, ModelSchema, decode_batch
from monitor.ingest.decode.columnar import _joined, scanner_for
from monitor.ingest.decode.scanner import SPLIT_MIN, parse_number, scan_messages

# ------------------------------------------------------------------------------ numbers


@pytest.mark.slow
def test_numbers_the_scanner_reads_equal_float_of_their_text() -> None:
    rng = random.Random(7)
    realistic, awkward = [], []
    for _ in range(60_000):
        realistic += [
            repr(rng.random()),
            repr(rng.gauss(0, 1) * 10 ** rng.randint(-6, 12)),
            repr(round(rng.gauss(0, 100), rng.randint(0, 6))),
            repr(1.7e9 + rng.random() * 1e8),
        ]
        awkward += [f"{rng.randint(0, 10**18)}e{rng.randint(-30, 30)}"]
        awkward += [str(rng.randint(-(2**62), 2**62))]
    for text in realistic + awkward:
        value = parse_number(text.encode())
        assert value is None or value == float(text), text
    # what producers write (repr of doubles, rounded values, epoch seconds) is read
    assert sum(parse_number(t.encode()) is not None for t in realistic) == len(realistic)


@pytest.mark.slow
@given(
    digits=st.text("0123456789", min_size=1, max_size=19),
    point=st.integers(0, 19),
    exponent=st.one_of(st.none(), st.integers(-40, 40)),
    negative=st.booleans(),
)
@settings(max_examples=3000, deadline=None)
def test_any_decimal_is_read_exactly_or_passed_on(
    digits: str, point: int, exponent: int | None, negative: bool
) -> None:
    digits = digits.lstrip("0") or "0"
    text = digits if point == 0 or point >= len(digits) else f"{digits[:point]}.{digits[point:]}"
    if exponent is not None:
        text += f"e{exponent}"
    if negative:
        text = "-" + text
    value = parse_number(text.encode())
    assert value is None or value == float(text)


@pytest.mark.slow
@given(
    mantissa=st.one_of(
        st.integers(2**53 - 2_000, 2**53 + 2_000),  # either side of Clinger's exact limit
        st.integers(10**17, 10**18 - 1),  # 18 digits, the longest read
        st.integers(1, 10**6),
    ),
    exponent=st.integers(-45, 45),  # across the exact powers (22) and the table (40)
    zeros=st.integers(0, 25),
    negative=st.booleans(),
)
@settings(max_examples=3000, deadline=None)
def test_edge_decimals_are_read_exactly_or_passed_on(
    mantissa: int, exponent: int, zeros: int, negative: bool
) -> None:
    sign = "-" if negative else ""
    for text in (
        f"{sign}{mantissa}e{exponent}",
        f"{sign}0.{'0' * zeros}{mantissa}",  # leading zeros are not significant digits
        f"{sign}{mantissa}{'0' * zeros}",  # trailing zeros are
    ):
        value = parse_number(text.encode())
        assert value is None or value == float(text), text
    if mantissa <= 2**53 and -22 <= exponent <= 22:  # the fast path never passes one on
        assert parse_number(f"{mantissa}e{exponent}".encode()) == float(f"{mantissa}e{exponent}")


@pytest.mark.parametrize(
    "text",
    ["01", "1.", ".5", "-", "+1", "1e", "1e+", "0x10", "--1", "1.5.2", "NaN", "Infinity", ""],
)
def test_invalid_json_numbers_are_passed_on(text: str) -> None:
    assert parse_number(text.encode()) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0.0), ("-0", -0.0), ("12.5", 12.5), ("1E5", 1e5), ("1e-7", 1e-7), ("0.000123", 1.23e-4)],
)
def test_number_examples(text: str, value: float) -> None:
    assert parse_number(text.encode()) == value


# ----------------------------------------------------------------- same as object paths

VOCAB = {"DE": 0, "FR": 1, "Zürich": 2, "true": 3, "rare1": 4, "rare2": 4}
UNSEEN = 6
PLAN = {"basic": 0, "pro": 1}
FRAUD = ModelSchema(
    "fraud",
    numeric=("amount", "age"),
    categorical=("country",),
    prediction="numeric",
    codes=(CategoryCodes(VOCAB, UNSEEN),),
)
CHURN = ModelSchema(
    "churn",
    numeric=("tenure",),
    categorical=("plan",),
    prediction="probabilities",
    classes=("no", "yes"),
    codes=(CategoryCodes(PLAN, 3),),
)
LABEL = ModelSchema(
    "label",
    numeric=("x",),
    categorical=("c",),
    prediction="categorical",
    codes=(CategoryCodes(PLAN, 3), CategoryCodes({"a": 0, "b": 1}, 3)),
)
SCHEMA = DecodeSchema(
    models={"fraud": FRAUD, "churn": CHURN, "label": LABEL}, max_message_bytes=400
)


def both(payloads: list[bytes | None], schema: DecodeSchema = SCHEMA):
    kafka_ts = np.arange(len(payloads), dtype=np.float64) + 1000.0
    fast = decode_batch(payloads, kafka_ts, schema)
    original = decode_batch_module.scanner_for
    decode_batch_module.scanner_for = lambda _schema: None  # type: ignore[assignment]
    try:
        slow = decode_batch(payloads, kafka_ts, schema)
    finally:
        decode_batch_module.scanner_for = original
    return fast, slow


def assert_same(payloads: list[bytes | None], schema: DecodeSchema = SCHEMA) -> None:
    fast, slow = both(payloads, schema)
    assert sorted((r.index, r.reason, r.position) for r in fast.rejected) == sorted(
        (r.index, r.reason, r.position) for r in slow.rejected
    )
    assert fast.models.keys() == slow.models.keys()
    for name, a in fast.models.items():
        b = slow.models[name]
        assert np.array_equal(a.numeric, b.numeric, equal_nan=True), name
        assert a.codes is not None and b.codes is not None
        assert np.array_equal(a.codes, b.codes), name
        assert np.array_equal(a.ts, b.ts), name
        assert np.array_equal(a.msg_index, b.msg_index), name
        assert a.unknown_features == b.unknown_features, name


def scanned(payloads: list[bytes], schema: DecodeSchema = SCHEMA) -> np.ndarray:
    """Indices of the messages the scanner passes on."""
    scanner = scanner_for(schema)
    assert scanner is not None
    _, slow = scanner.scan(payloads, np.zeros(len(payloads)))
    return slow


CLEAN = [
    b'{"model": "fraud", "ts": 1764150000.25, "id": "r1", '
    b'"features": {"amount": 132.5, "country": "DE", "age": 41}, "prediction": 0.87}',
    b'{"features": {"country": "Z\xc3\xbcrich", "amount": -1e3}, "model": "fraud"}',
    b'{"model":"fraud","features":{"country":true,"age":false,"amount":null,"extra":[1,{"a":""}]}}',
    b' {"model": "fraud", "features": {"country": "XX"}, "prediction": true, "version": 3} ',
    b'{"model": "fraud", "features": null, "prediction": 1}',
    b'{"model": "fraud", "features": {}, "prediction": 2, "ts": null}',
    b'{"model": "churn", "features": {"tenure": 3, "plan": "pro"}, '
    b'"prediction": {"yes": 0.25, "no": 0.75, "maybe": 0}}',
    b'{"model": "churn", "features": {"plan": null}, "prediction": {}}',
    b'{"model": "label", "features": {"x": 1, "c": "a"}, "prediction": "basic"}',
    b'{"model": "label", "features": {"x": 1, "c": "zz"}, "prediction": false}',
]


def test_clean_events_are_read_by_the_scanner_and_match() -> None:
    assert scanned(CLEAN).tolist() == []
    assert_same(list(CLEAN))


def test_category_codes_vocabulary_booleans_unseen_and_missing() -> None:
    fast, _ = both(list(CLEAN[:4]))
    codes = fast.models["fraud"].codes
    assert codes is not None
    # DE, Zürich (non-ASCII, in the vocabulary), true (a boolean), XX (unseen)
    assert codes[:, 0].tolist() == [0, 2, 3, UNSEEN]
    assert fast.models["fraud"].unknown_features == 1  # "extra"


HOSTILE = [
    None,
    b"",
    b"{oops",
    b"[]",
    b"[" + CLEAN[0] + b", 5]",
    b'"just a string"',
    b"{}",
    b'{"model": "nope", "features": {"amount": 1}}',
    b'{"model": 5, "features": {"amount": 1}}',
    b'{"features": {"amount": 1}}',
    b'{"model": "fraud"}',
    b'{"model": "fraud", "features": {"amount": "12"}}',
    b'{"model": "fraud", "features": {"amount": NaN}}',
    b'{"model": "fraud", "features": {"amount": 1e999}}',
    b'{"model": "fraud", "features": {"amount": Infinity}}',
    b'{"model": "fraud", "features": {"country": 49}}',
    b'{"model": "fraud", "features": {"country": {"a": 1}}}',
    b'{"model": "fraud", "features": {"country": "D\\u0045"}}',
    b'{"model": "fraud", "features": {"countr\\u0079": "DE"}}',
    b'{"model": "fraud", "features": {"country": "\xff\xfe"}}',
    b'{"model": "fraud", "features": {"amount": 1, "amount": 2}}',
    b'{"model": "fraud", "features": {"u": 1, "u": 2}}',
    b'{"model": "fraud", "model": "fraud", "features": {}}',
    b'{"model": "fraud", "features": {"amount": 1}, "label": 1}',
    b'{"model": "fraud", "ts": "2026-11-26T10:00:00Z", "features": {"amount": 1}}',
    b'{"model": "fraud", "ts": -5, "features": {"amount": 1}}',
    b'{"model": "fraud", "ts": true, "features": {"amount": 1}}',
    b'{"model": "fraud", "features": {"amount": 1}} x',
    b'{"model": "fraud", "features": {"amount": 1},}',
    b'{"model": "fraud", "features": {"amount": 01}}',
    b'{"model": "fraud", "features": [1, 2]}',
    b'{"model": "fraud", "features": {"amount": 1}, "prediction": "yes"}',
    b'{"model": "churn", "features": {"tenure": 1}, "prediction": 0.5}',
    b'{"model": "churn", "features": {"tenure": 1}, "prediction": {"yes": "0.5"}}',
    b'{"model": "fraud", "features": {"amount": 12345678901234567890123}}',
    b'{"model": "fraud", "features": {"amount": 1, "x": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}",
    b'{"model": "fraud", "features": {"amount": 1, "x": "' + b"a" * 500 + b'"}}',
    b'{"model": "fraud", "features": {"amount": 1, "x": "tab\there"}}',
    b'{"model": "fraud", "id": "\xc3\xa9", "features": {"amount": 1}}',
    b'{"model": "fraud", "features": {"amount": tru}}',
    b'{"model": "fraud", "features": {"amount": 1 "age": 2}}',
    b'{"model": "fraud" "features": {"amount": 1}}',
    b'{"model": "fraud", "features": {"amount": 1}',
    b'{"model": "fraud", "features": {"amount": 1, "x": [1, 2,]}}',
    b'{"model": "fraud", "features": {"amount": 1, "x": {"a" 1}}}',
    b'{"model": "fraud", "features": {"amount": 1, "x": {"a": 1]}}',
]


def test_hostile_messages_give_the_same_rejections_and_columns() -> None:
    assert_same(list(HOSTILE) + list(CLEAN))


def test_a_bound_topic_reads_events_without_a_model_field() -> None:
    schema = replace(SCHEMA, bound_model="fraud")
    payloads = [b'{"features": {"amount": 1.5, "country": "FR"}}', CLEAN[0]]
    assert scanned(payloads, schema).tolist() == []
    assert_same(payloads, schema)


def test_models_without_codes_keep_the_object_paths() -> None:
    plain = replace(FRAUD, codes=None)
    schema = replace(SCHEMA, models={"fraud": plain, "churn": CHURN})
    fast, _ = both(list(CLEAN[:2]) + [CLEAN[6]], schema)
    assert fast.models["fraud"].codes is None
    assert fast.models["fraud"].categorical == [["DE", "Zürich"]]
    assert fast.models["churn"].codes is not None


def _event(draw: st.DrawFn) -> bytes:
    model = draw(st.sampled_from(["fraud", "churn", "label", "other"]))
    number = st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(-(2**70), 2**70),
        st.booleans(),
        st.none(),
    )
    text = st.one_of(
        st.sampled_from(["DE", "FR", "Zürich", "true", "rare1", "pro", "a", "zz", ""]),
        st.text(max_size=6),
    )
    value = st.one_of(number, text, st.lists(number, max_size=2))
    features = draw(
        st.dictionaries(
            st.sampled_from(["amount", "age", "country", "tenure", "plan", "x", "c", "extra"]),
            value,
            max_size=6,
        )
    )
    event: dict[str, object] = {"model": model, "features": features}
    if draw(st.booleans()):
        event["prediction"] = draw(
            st.one_of(number, text, st.dictionaries(st.sampled_from(["yes", "no", "m"]), number))
        )
    if draw(st.booleans()):
        event["ts"] = draw(st.one_of(st.floats(-10, 2e11), st.integers(-5, 10**12), st.none()))
    if draw(st.booleans()):
        event["id"] = draw(st.one_of(text, st.integers()))
    keys = draw(st.permutations(list(event)))
    ordered = {k: event[k] for k in keys}
    style = draw(st.sampled_from(["orjson", "json", "json-ascii"]))
    if style == "orjson":
        try:
            return orjson.dumps(ordered)
        except TypeError:  # integers beyond 64 bits
            pass
    indent = draw(st.sampled_from([None, 1]))
    return json.dumps(ordered, ensure_ascii=style == "json-ascii", indent=indent).encode()


@pytest.mark.slow
@given(st.lists(st.composite(lambda draw: _event(draw))(), min_size=1, max_size=12))
@settings(max_examples=400, deadline=None)
def test_random_events_match_the_object_paths(payloads: list[bytes]) -> None:
    assert_same(list(payloads))


class CountingHelper(ThreadPoolExecutor):
    """The scanner's helper thread, counting the halves handed to it."""

    def __init__(self) -> None:
        super().__init__(1)
        self.submitted = 0

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_a_large_batch_is_scanned_in_two_halves_exactly_as_in_one() -> None:
    rng = random.Random(7)
    payloads: list[bytes | None] = [*CLEAN, *HOSTILE] * (SPLIT_MIN // 40)
    rng.shuffle(payloads)
    scanner = scanner_for(SCHEMA)
    assert scanner is not None and len(payloads) >= SPLIT_MIN
    buf, starts, ends = _joined(payloads)
    whole = scan_messages(scanner.tables, buf, starts, ends)
    with CountingHelper() as helper:
        halves = scan_messages(scanner.tables, buf, starts, ends, helper)
        assert helper.submitted == 1
        small = scan_messages(scanner.tables, buf, starts[:100], ends[:100], helper)
        assert helper.submitted == 1  # below SPLIT_MIN the hand-off costs more than it saves
    for name in ("status", "model", "ts", "numeric", "codes", "unknown"):
        assert np.array_equal(getattr(whole, name), getattr(halves, name), equal_nan=True), name
        assert np.array_equal(getattr(whole, name)[:100], getattr(small, name), equal_nan=True)
    half = len(payloads) // 2
    assert (whole.status[:half] == 0).sum() > half // 8  # both halves hold clean events
    assert (whole.status[half:] == 0).sum() > half // 8
    assert_same(payloads)  # through decode_batch, which hands its halves to the helper


def test_the_scanner_of_a_schema_is_found_again_by_identity_and_by_content() -> None:
    first = scanner_for(SCHEMA)
    assert first is not None and scanner_for(SCHEMA) is first  # the same schema object
    rebuilt = replace(SCHEMA, models=dict(SCHEMA.models))  # equal content, a new object
    assert rebuilt is not SCHEMA and scanner_for(rebuilt) is first
    changed = replace(SCHEMA, models={**SCHEMA.models, "fraud": replace(FRAUD, codes=None)})
    other = scanner_for(changed)
    assert other is not None and other is not first and "fraud" not in other.names
    assert scanner_for(SCHEMA) is first  # asked for again after another schema


def test_the_scanners_columns_are_marked_plain_and_skip_the_length_limits() -> None:
    from monitor.ingest.decode.limits import MAX_ID_CHARS, enforce_limits

    slow = b'{"model": "churn", "features": {"tenure": 12345678901234567890123}}'
    long_id = b'{"model": "churn", "id": "\\u00e9' + b"x" * MAX_ID_CHARS + b'", "features": {}}'
    payloads: list[bytes | None] = [CLEAN[0], CLEAN[6], slow, long_id]
    assert scanned(payloads).tolist() == [2, 3]  # passed on to the object path
    batch = decode_batch(payloads, np.zeros(4), SCHEMA)
    assert batch.plain == {"fraud"}  # churn also got rows from the object path
    limited = enforce_limits(batch)
    assert limited.models["fraud"] is batch.models["fraud"] and limited.plain == {"fraud"}
    assert [r.index for r in limited.rejected] == [3] and limited.models["churn"].rows == 2
    only = decode_batch([CLEAN[0], CLEAN[6]], np.zeros(2), SCHEMA)
    assert only.plain == {"fraud", "churn"} and enforce_limits(only) is only
