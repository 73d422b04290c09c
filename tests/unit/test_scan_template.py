"""The scanner's template fast path: every message reads the same with it as without it
(and as the object paths read it), conforming batches go through it, and a producer that
changes its shape mid-batch gets a new template."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.ingest.decode import DecodeSchema
from monitor.ingest.decode import scanner as scanner_module
from monitor.ingest.decode.columnar import _joined, scanner_for
from monitor.ingest.decode.scanner import SPLIT_MIN, ScanResult, scan_messages
from tests.unit.test_jsonscan import SCHEMA, assert_same

# An event as members: (key, raw JSON text or nested members); rendered with a style.
Members = list[tuple[str, "bytes | Members"]]
FIELDS = ("status", "model", "ts", "numeric", "codes", "unknown")


def render(members: Members, colon: bytes = b": ", comma: bytes = b", ") -> bytes:
    parts = [
        json.dumps(k).encode() + colon + (render(v, colon, comma) if isinstance(v, list) else v)
        for k, v in members
    ]
    return b"{" + comma.join(parts) + b"}"


def scan(payloads: list[bytes], schema: DecodeSchema, templates: bool) -> ScanResult:
    scanner = scanner_for(schema)
    assert scanner is not None
    buf, starts, ends = _joined(list(payloads))
    return scan_messages(scanner.tables, buf, starts, ends, templates=templates)


def assert_same_scan(a: ScanResult, b: ScanResult) -> None:
    for name in FIELDS:
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name


def both_ways(payloads: list[bytes], schema: DecodeSchema = SCHEMA) -> ScanResult:
    """The scan with templates, after checking it equals the scan without."""
    fast = scan(payloads, schema, templates=True)
    assert_same_scan(fast, scan(payloads, schema, templates=False))
    return fast


# ------------------------------------------------------------------------ generation

GOOD_NUMBER = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: repr(round(x, 4)).encode()),
    st.integers(-(10**6), 10**6).map(lambda i: str(i).encode()),
)
ODD_NUMBER = st.sampled_from(
    [b"1e400", b"12345678901234567890123", b"-0", b"0.0", b"1E5", b"-1e-7", b"01", b"1.",
     b"NaN", b"Infinity", b"-", b"2e22", b"123456789012345678", b"9007199254740993",
     b"0.1e1", b"1e-400", b"1.5e", b"--1", b"+1"]
)  # fmt: skip
WORD = st.sampled_from(["DE", "FR", "Zürich", "true", "rare1", "pro", "basic", "a", "b", "zz", ""])
GOOD_TEXT = WORD.filter(str.isascii).map(lambda s: json.dumps(s).encode())
ODD_TEXT = st.one_of(
    st.text(max_size=5).map(lambda s: json.dumps(s, ensure_ascii=False).encode()),
    st.text(max_size=5).map(lambda s: json.dumps(s).encode()),
    WORD.map(lambda s: json.dumps(s, ensure_ascii=False).encode()),
    st.sampled_from([b'"D\\u0045"', b'"a\\"b"', b'"tab\there"', b'"\xff"', b'"unterminated']),
)
ANY_VALUE = st.one_of(
    GOOD_NUMBER, ODD_NUMBER, GOOD_TEXT, ODD_TEXT,
    st.sampled_from([b"null", b"true", b"false", b"[1, 2]", b'{"a": 1}', b"{}", b"[]", b"tru"]),
)  # fmt: skip
TS = st.one_of(
    st.floats(0, 2e9, allow_nan=False).map(lambda x: repr(x).encode()),
    st.sampled_from([b"-5", b"2e11", b"99999999999", b"null", b'"2026-01-01"', b"true"]),
)


@st.composite
def base_event(draw: st.DrawFn, shape: int) -> Members:
    """A conforming event of one of three shapes (its values drawn)."""
    if shape == 0:  # numeric prediction
        return [
            ("model", b'"fraud"'),
            ("ts", draw(TS.filter(lambda t: t[:1].isdigit()))),
            ("id", json.dumps(f"r{draw(st.integers(0, 999))}").encode()),
            ("features", [("amount", draw(GOOD_NUMBER)), ("age", draw(GOOD_NUMBER)),
                          ("country", draw(GOOD_TEXT))]),
            ("prediction", draw(GOOD_NUMBER)),
        ]  # fmt: skip
    if shape == 1:  # probabilities, the model after the features
        return [
            ("id", draw(st.integers(0, 10**6)).__str__().encode()),
            ("features", [("tenure", draw(GOOD_NUMBER)), ("plan", draw(GOOD_TEXT))]),
            ("model", b'"churn"'),
            ("prediction", [("no", draw(GOOD_NUMBER)), ("yes", draw(GOOD_NUMBER))]),
        ]
    return [  # a categorical prediction, a boolean category
        ("model", b'"label"'),
        ("features", [("x", draw(GOOD_NUMBER)), ("c", draw(st.sampled_from([b'"a"', b"true"])))]),
        ("prediction", draw(GOOD_TEXT)),
    ]


def _paths(members: Members, prefix: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    out = []
    for i, (_, v) in enumerate(members):
        out.append((*prefix, i))
        if isinstance(v, list):
            out += _paths(v, (*prefix, i))
    return out


def _container(members: Members, path: tuple[int, ...]) -> Members:
    for i in path[:-1]:
        inner = members[i][1]
        assert isinstance(inner, list)
        members = inner
    return members


@st.composite
def mutated(draw: st.DrawFn, event: Members) -> tuple[Members, bytes, bytes]:
    """The event with one change a template must notice (or none); colon and comma."""
    colon, comma = b": ", b", "
    kind = draw(st.integers(0, 11))
    path = draw(st.sampled_from(_paths(event)))
    members = _container(event, path)
    i = path[-1]
    key, value = members[i]
    if kind == 0:
        members[i] = (key, draw(ANY_VALUE))
    elif kind == 1:
        members[i] = (key, draw(TS))
    elif kind == 2:
        members[:] = draw(st.permutations(members))
    elif kind == 3:
        members[i] = (draw(st.sampled_from([key + "x", key.upper(), "extra", "version"])), value)
    elif kind == 4:
        members.insert(draw(st.integers(0, len(members))), members[i])  # a repeated key
    elif kind == 5:
        del members[i]
    elif kind == 6:
        extra = draw(st.sampled_from(["extra", "version", "label", "meta", "ts", "id"]))
        members.insert(draw(st.integers(0, len(members))), (extra, draw(ANY_VALUE)))
    elif kind == 7:
        colon, comma = draw(st.sampled_from([(b":", b","), (b" : ", b" ,"), (b":\n", b",\t")]))
    elif kind == 8:
        members[i] = (key, b'"fraud"' if value != b'"fraud"' else b'"churn"')
    elif kind == 9:
        members[i] = (key, draw(st.sampled_from([b'"nope"', b"null", b'"fra\\u0075d"'])))
    return event, colon, comma


@st.composite
def batch(draw: st.DrawFn) -> list[bytes]:
    """Conforming events of a few producers, interleaved in runs, some changed."""
    out: list[bytes] = []
    for _ in range(draw(st.integers(1, 6))):
        shape = draw(st.integers(0, 2))
        for _ in range(draw(st.integers(1, 12))):
            event = draw(base_event(shape))
            colon, comma = b": ", b", "
            if draw(st.integers(0, 3)) == 0:
                event, colon, comma = draw(mutated(event))
            text = render(event, colon, comma)
            if draw(st.integers(0, 15)) == 0:
                text = text[: draw(st.integers(0, len(text)))]
            elif draw(st.integers(0, 15)) == 0:
                text = b" \n" + text + b"\n"
            out.append(text)
    return out


@given(batch())
@settings(max_examples=300, deadline=None)
def test_any_batch_reads_the_same_with_and_without_templates(payloads: list[bytes]) -> None:
    both_ways(payloads)


@given(batch())
@settings(max_examples=60, deadline=None)
def test_any_batch_matches_the_object_paths(payloads: list[bytes]) -> None:
    assert_same(list(payloads))  # test_jsonscan's check, the scanner's templates on


@given(batch())
@settings(max_examples=100, deadline=None)
def test_a_bound_topic_reads_the_same_with_and_without_templates(payloads: list[bytes]) -> None:
    schema = replace(SCHEMA, bound_model="fraud")
    both_ways(payloads, schema)
    assert_same(payloads, schema)


# ---------------------------------------------------------------------------- hits


def fraud_events(
    n: int, seed: int, order: tuple[str, ...] = ("amount", "age", "country")
) -> list[bytes]:
    rng = random.Random(seed)
    values = {
        "amount": lambda: round(rng.uniform(-1e4, 1e4), rng.randint(0, 6)),
        "age": lambda: rng.randint(0, 99),
        "country": lambda: rng.choice(["DE", "FR", "XX", "true"]),
    }
    return [
        json.dumps(
            {
                "model": "fraud",
                "ts": 1.7e9 + i * 0.25,
                "id": f"r{i}",
                "features": {k: values[k]() for k in order},
                "prediction": rng.random(),
            }
        ).encode()
        for i in range(n)
    ]


def test_a_conforming_batch_goes_through_the_template() -> None:
    payloads = fraud_events(500, 1)
    out = both_ways(payloads)
    assert (out.status == 0).all()
    assert not out.templated[0] and out.templated[1:].all()  # learned from the first
    assert not scan(payloads, SCHEMA, templates=False).templated.any()


def test_a_producer_that_changes_its_key_order_gets_a_new_template() -> None:
    before = fraud_events(300, 2)
    after = fraud_events(300, 3, order=("country", "amount", "age"))
    out = both_ways(before + after)
    assert (out.status == 0).all()
    assert out.templated[1:300].all()
    missed = np.flatnonzero(~out.templated[300:])
    assert missed[0] == 0 and len(missed) <= 33  # a learning attempt every 32 rows at most
    assert out.templated[300 + missed[-1] + 1 :].all()


def test_interleaved_producers_each_keep_their_template() -> None:
    a = fraud_events(400, 4)
    b = fraud_events(400, 5, order=("age", "country", "amount"))
    payloads = [m for pair in zip(a, b, strict=True) for m in pair]
    out = both_ways(payloads)
    assert out.templated[100:].all()


def test_values_the_template_doubts_go_to_the_general_path() -> None:
    payloads = fraud_events(100, 6)
    odd = [
        payloads[10].replace(b'"age": ', b'"age": null, "x": '),  # unknown key and null
        payloads[11].replace(b'"age": ', b'"age": 1e400, "y": '),
        payloads[12].replace(b'"ts": ', b'"ts": -'),  # negative time: slow
        payloads[13].replace(b'"id": "', b'"id": "\\u00e9'),  # an escape in a skipped string
        payloads[14].replace(b'"country": "', b'"country": "Z\xc3\xbc'),  # non-ASCII category
        payloads[15][:-1],  # truncated
        payloads[16] + b" x",
    ]
    out = both_ways(payloads[:10] + odd + payloads[17:])
    assert out.templated[1:10].all() and not out.templated[10:17].any()
    assert out.templated[17:].all()
    assert out.status[10:17].tolist() == [0, 1, 1, 1, 1, 1, 1]  # (Zü not in the vocabulary)


def test_a_stream_the_templates_do_not_fit_stops_trying_them() -> None:
    # every event a different unknown key: nothing to learn, all read by the general path
    payloads = [
        p.replace(b'"age"', f'"k{i}": 1, "age"'.encode())
        for i, p in enumerate(fraud_events(300, 7))
    ]
    out = both_ways(payloads)
    assert (out.status == 0).all() and not out.templated.any()


def test_the_halves_of_a_split_batch_learn_on_their_own() -> None:
    payloads = fraud_events(SPLIT_MIN + 100, 8)
    scanner = scanner_for(SCHEMA)
    assert scanner is not None
    buf, starts, ends = _joined(list(payloads))
    with ThreadPoolExecutor(1) as helper:
        halves = scan_messages(scanner.tables, buf, starts, ends, helper)
    assert_same_scan(halves, scan(payloads, SCHEMA, templates=False))
    half = len(payloads) // 2
    assert not halves.templated[0] and not halves.templated[half]  # each half learns once
    assert halves.templated.sum() == len(payloads) - 2


def test_the_warmup_learns_and_applies_a_template(monkeypatch: pytest.MonkeyPatch) -> None:
    results: list[ScanResult] = []

    def recording(*args: object, **kwargs: object) -> ScanResult:
        results.append(scan_messages(*args, **kwargs))  # type: ignore[arg-type]
        return results[-1]

    monkeypatch.setattr(scanner_module, "scan_messages", recording)
    scanner_module.warmup()
    (out,) = results
    assert out.templated.any()  # so the cached compile covers the template path
    assert not out.templated.all()  # and the general path with learning


@pytest.mark.parametrize("shape", [0, 1, 2])
def test_each_base_shape_is_learned(shape: int) -> None:
    rng = random.Random(shape)
    out = both_ways([SHAPES[shape](rng) for _ in range(20)])
    assert (out.status == 0).all() and out.templated[1:].all()


SHAPES = {
    0: lambda rng: render([
        ("model", b'"fraud"'), ("ts", repr(rng.uniform(0, 2e9)).encode()), ("id", b'"r1"'),
        ("features", [("amount", repr(rng.random()).encode()), ("age", b"3"),
                      ("country", rng.choice([b'"DE"', b'"XX"']))]),
        ("prediction", repr(rng.random()).encode()),
    ]),
    1: lambda rng: render([
        ("id", str(rng.randint(0, 99)).encode()),
        ("features", [("tenure", str(rng.randint(0, 99)).encode()), ("plan", b'"pro"')]),
        ("model", b'"churn"'),
        ("prediction", [("no", repr(rng.random()).encode()), ("yes", b"0.5")]),
    ]),
    2: lambda rng: render([
        ("model", b'"label"'),
        ("features", [("x", repr(rng.random()).encode()), ("c", rng.choice([b'"a"', b"true"]))]),
        ("prediction", rng.choice([b'"basic"', b'"pro"', b'"new"'])),
    ]),
}  # fmt: skip
