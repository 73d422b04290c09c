"""Hostile input through ``decode_batch`` (issue 6, fault 6).

Random bytes, deep nesting, huge numbers, huge strings, invalid UTF-8 and JSON "bombs"
(arrays of many events, objects with many keys) must never raise, must account for every
message (accepted rows or a rejection with a reason and a detail), and must stay within a
memory bound per batch measured with ``tracemalloc``.

The memory bound is linear in the batch's input: ``PEAK_PER_INPUT_BYTE`` times its bytes
plus ``PEAK_PER_EVENT`` per event it can hold plus a constant. The worst cases measured
(see ``test_each_hostile_shape_is_rejected_with_its_reason``) are arrays of tiny events,
where every event becomes a dict and then a ``Rejection``: about 32 bytes of peak per input
byte for an array of 20,000 small events (rejected as oversized only after parsing), and
about 300 bytes per event for an array of 9,000 empty objects.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.ingest.decode import DecodedBatch, DecodeSchema, ModelSchema, Reason, decode_batch

FRAUD = ModelSchema(
    "fraud", numeric=("amount", "age"), categorical=("country",), prediction="numeric"
)
SCHEMA = DecodeSchema(models={"fraud": FRAUD})
MAX_BYTES = SCHEMA.max_message_bytes

PEAK_PER_INPUT_BYTE = 64
PEAK_PER_EVENT = 1024
PEAK_CONSTANT = 4 * 1024 * 1024


def decode_measured(payloads: list[bytes | None]) -> tuple[DecodedBatch, int]:
    """Decode one batch and return it with the tracemalloc peak (bytes) during the call."""
    tracemalloc.start()
    try:
        batch = decode_batch(payloads, np.full(len(payloads), 1_764_150_000.0), SCHEMA)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return batch, peak


def peak_bound(payloads: list[bytes | None]) -> int:
    size = sum(len(p) for p in payloads if p is not None and len(p) <= MAX_BYTES)
    # An event needs at least 2 bytes ("{}"), so size // 2 bounds the events a batch holds.
    return PEAK_PER_INPUT_BYTE * size + PEAK_PER_EVENT * (size // 2) + PEAK_CONSTANT


def assert_accounted(payloads: list[bytes | None], batch: DecodedBatch) -> None:
    """Every message is accepted rows or rejections; every rejection has a reason."""
    seen: set[int] = set()
    for cols in batch.models.values():
        assert cols.numeric.shape == (cols.rows, len(FRAUD.numeric_names))
        assert np.isfinite(cols.numeric[~np.isnan(cols.numeric)]).all()
        assert np.isfinite(cols.ts).all()
        seen.update(cols.msg_index.tolist())
    for rejection in batch.rejected:
        assert isinstance(rejection.reason, Reason)
        assert rejection.detail, rejection
        assert len(rejection.detail) <= 1024, "details must not copy huge inputs"
        seen.add(rejection.index)
    assert seen == set(range(len(payloads)))


def nested(depth: int, open_: bytes = b"[", close: bytes = b"]") -> bytes:
    return open_ * depth + close * depth


def event(**fields: object) -> bytes:
    return orjson.dumps({"model": "fraud", "prediction": 0.5, **fields})


def raw_event(features: bytes) -> bytes:
    return b'{"model": "fraud", "prediction": 0.5, "features": ' + features + b"}"


# name -> (payload, expected reasons in order, accepted rows)
HOSTILE: dict[str, tuple[bytes | None, list[Reason], int]] = {
    "deep array nesting (100k)": (nested(100_000), [Reason.not_json], 0),
    "deep object nesting (100k)": (
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        [Reason.not_json],
        0,
    ),
    "deep nesting inside a feature": (
        raw_event(b'{"amount": ' + nested(5_000) + b"}"),
        [Reason.not_json],
        0,
    ),
    "shallow nesting as a feature value": (
        raw_event(b'{"amount": ' + nested(500) + b"}"),
        [Reason.wrong_type],
        0,
    ),
    "float beyond double": (raw_event(b'{"amount": 1e400}'), [Reason.non_finite], 0),
    "negative float beyond double": (raw_event(b'{"amount": -1e309}'), [Reason.non_finite], 0),
    "400-digit integer": (raw_event(b'{"amount": ' + b"9" * 400 + b"}"), [Reason.non_finite], 0),
    "25-digit integer (a large finite float)": (
        raw_event(b'{"amount": ' + b"9" * 25 + b"}"),
        [],
        1,
    ),
    "huge prediction": (
        b'{"model": "fraud", "prediction": 1e999, "features": {"amount": 1}}',
        [Reason.non_finite],
        0,
    ),
    "timestamp 1e300": (event(ts=1e300, features={"amount": 1}), [Reason.bad_timestamp], 0),
    "NaN literal": (raw_event(b'{"amount": NaN}'), [Reason.non_finite], 0),
    "huge string just under the size limit": (
        event(features={"country": "x" * (MAX_BYTES - 200)}),
        [],
        1,
    ),
    "huge string over the size limit": (
        event(features={"country": "x" * (2 * MAX_BYTES)}),
        [Reason.oversized],
        0,
    ),
    "huge model name": (
        orjson.dumps({"model": "m" * 500_000, "features": {"amount": 1}}),
        [Reason.unknown_model],
        0,
    ),
    "huge id": (event(id="i" * 500_000, features={"amount": 1}), [], 1),
    "invalid UTF-8 in a string": (raw_event(b'{"country": "\xc3\x28"}'), [Reason.not_utf8], 0),
    "invalid UTF-8 outside strings": (b"\xff\xfe\xfd", [Reason.not_utf8], 0),
    "lone surrogate escape": (raw_event(b'{"country": "\\ud800"}'), [Reason.not_json], 0),
    "byte order mark": (b"\xef\xbb\xbf" + event(features={"amount": 1}), [Reason.not_utf8], 0),
    "NUL inside a string": (b'{"model": "fr\x00aud"}', [Reason.not_json], 0),
    "bomb: 20k events in one array": (
        b"[" + b",".join([event(features={"amount": 1})] * 20_000) + b"]",
        [Reason.oversized],
        0,
    ),
    "bomb: 9k empty objects": (
        b"[" + b",".join([b"{}"] * 9_000) + b"]",
        [Reason.missing_model] * 9_000,
        0,
    ),
    "bomb: 50k unknown feature keys": (
        orjson.dumps({"model": "fraud", "features": {f"k{i}": i for i in range(50_000)}}),
        [],
        1,
    ),
    "bomb: 100k-element list as a feature": (
        raw_event(b'{"amount": [' + b",".join([b"1"] * 100_000) + b"]}"),
        [Reason.wrong_type],
        0,
    ),
    "duplicate keys (the last one wins)": (
        b'{"model": "fraud", "model": "x", "features": {"amount": 1}}',
        [Reason.unknown_model],
        0,
    ),
    "empty payload": (b"", [Reason.not_json], 0),
    "tombstone": (None, [Reason.no_payload], 0),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_each_hostile_shape_is_rejected_with_its_reason(name: str) -> None:
    payload, reasons, accepted = HOSTILE[name]
    batch, peak = decode_measured([payload])
    assert_accounted([payload], batch)
    assert [r.reason for r in batch.rejected] == reasons
    assert batch.accepted == accepted
    assert peak <= peak_bound([payload]), f"peak {peak} bytes for {name}"


@pytest.mark.slow
def test_a_batch_of_every_hostile_shape_keeps_the_valid_events() -> None:
    valid = [event(id=f"v{i}", features={"amount": float(i), "country": "DE"}) for i in range(50)]
    hostile = [p for p, _, _ in HOSTILE.values()]
    payloads: list[bytes | None] = []
    for i, v in enumerate(valid):
        payloads.append(v)
        payloads.append(hostile[i % len(hostile)])
    batch, peak = decode_measured(payloads)
    assert_accounted(payloads, batch)
    ids = [i for i in batch.models["fraud"].ids if i is not None and i.startswith("v")]
    assert ids == [f"v{i}" for i in range(50)]
    assert peak <= peak_bound(payloads)


# -- property-based ---------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=50),
)


@st.composite
def deep_nesting(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(1, 20_000))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
    inner = opener * depth + (b"" if opener == b"[" else b"1") + closer * depth
    return raw_event(b'{"amount": ' + inner + b"}") if draw(st.booleans()) else inner


@st.composite
def huge_number_event(draw: st.DrawFn) -> bytes:
    digits = draw(st.integers(1, 2_000))
    exponent = draw(st.sampled_from([b"", b"e999", b"E-999", b"e+308", b"e309", b".5e-400"]))
    number = draw(st.sampled_from([b"", b"-"])) + b"9" * digits + exponent
    field = draw(st.sampled_from([b"features", b"prediction", b"ts"]))
    if field == b"features":
        return raw_event(b'{"amount": ' + number + b"}")
    return b'{"model": "fraud", "features": {"amount": 1}, "' + field + b'": ' + number + b"}"


@st.composite
def huge_string_event(draw: st.DrawFn) -> bytes:
    text = "x" * draw(st.integers(0, 300_000))
    field = draw(st.sampled_from(["model", "id", "ts", "country", "amount", "key"]))
    if field == "key":
        return orjson.dumps({"model": "fraud", "features": {text: 1}})
    if field in ("country", "amount"):
        return orjson.dumps({"model": "fraud", "features": {field: text}})
    return orjson.dumps({"model": "fraud", "features": {"amount": 1}, field: text})


@st.composite
def invalid_utf8_event(draw: st.DrawFn) -> bytes:
    base = event(features={"amount": 1.5, "country": "DE"})
    at = draw(st.integers(0, len(base)))
    junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80"]))
    return base[:at] + junk + base[at:]


@st.composite
def json_bomb(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(0, 15_000))
    if draw(st.booleans()):
        element = draw(st.sampled_from([b"{}", b"1", b'{"model": "fraud"}', event(features={})]))
        return b"[" + b",".join([element] * n) + b"]"
    return raw_event(b"{" + b",".join(b'"k%d": 1' % i for i in range(n)) + b"}")


@st.composite
def random_slots_event(draw: st.DrawFn) -> bytes:
    names = st.sampled_from(["amount", "age", "country", "x"])
    ev: dict[str, object] = {"features": draw(st.dictionaries(names, SCALARS))}
    for key in ("model", "ts", "prediction"):
        if draw(st.booleans()):
            ev[key] = draw(st.one_of(st.just("fraud"), SCALARS))
    return json.dumps(ev).encode()  # json, not orjson: integers beyond 64 bits too


@st.composite
def truncated_event(draw: st.DrawFn) -> bytes:
    base = event(features={"amount": 1.5, "country": "DE"})
    return base[: draw(st.integers(0, len(base)))]


hostile_payload = st.one_of(
    st.binary(max_size=512),
    deep_nesting(),
    huge_number_event(),
    huge_string_event(),
    invalid_utf8_event(),
    json_bomb(),
    random_slots_event(),
    truncated_event(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: event(features={"amount": x})),
)


@pytest.mark.slow
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(hostile_payload, min_size=1, max_size=8))
def test_fuzz_hostile_batches_never_raise_and_stay_bounded(payloads: list[bytes | None]) -> None:
    batch, peak = decode_measured(payloads)
    assert_accounted(payloads, batch)
    assert peak <= peak_bound(payloads), f"peak {peak} bytes"


# -- coverage-guided (atheris) ------------------------------------------------------------

ATHERIS_HARNESS = Path(__file__).with_name("fuzz_decode_atheris.py")


@pytest.mark.slow
def test_atheris_bounded_run_finds_no_crash(tmp_path: Path) -> None:
    """A bounded libFuzzer run over one-message batches (seeded with valid events)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    seeds = [
        event(id="a", ts=1.5, features={"amount": 1.5, "age": 3, "country": "DE"}),
        b"[" + event(features={"amount": 1}) + b"," + event(features={"country": "US"}) + b"]",
        raw_event(b'{"amount": "1.5", "country": 7}'),
    ]
    for i, seed in enumerate(seeds):
        (corpus / f"seed{i}").write_bytes(seed)
    # libFuzzer polices peak RSS (getrusage ru_maxrss), and Linux carries the parent's
    # high-water mark into the child across fork+exec: a pytest worker that already grew
    # past the limit (Numba compiles) would make the fuzzer report an instant OOM. Budget
    # 1 GiB on top of what this process has already peaked at.
    rss_limit_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024 + 1024
    proc = subprocess.run(
        [
            sys.executable,
            str(ATHERIS_HARNESS),
            "-runs=4000",
            "-max_len=4096",
            f"-rss_limit_mb={rss_limit_mb}",
            "-max_total_time=60",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Done" in proc.stderr, proc.stderr[-2000:]


# -- model servers' formats (monitor.ingest.decode.formats) -------------------------------


def _format_seeds() -> dict[str, list[tuple[bytes, list[tuple[str, bytes]], str | None]]]:
    """Real payloads per format (value, headers, topic), written by the servers' libraries."""
    from tests.support.payloads import (
        kserve_record,
        oip_json_request,
        oip_json_response,
        oip_proto_request,
        oip_proto_response,
        parse_proto,
        schema_registry_framed,
    )

    inputs = {"amount": ("FP64", [1.5, 2.5]), "country": ("BYTES", ["DE", "US"])}
    outputs = {"score": ("FP32", [0.25, 0.75])}
    body, length = oip_json_request(inputs, "r", binary=True)
    rid = [("x-request-id", b"r")]
    topic = "seldon.ns.model.fraud.inputs"
    return {
        "oip": [
            (oip_json_request(inputs, "r")[0], [], None),
            (body, [("inference-header-content-length", str(length).encode())], None),
            (oip_proto_request(inputs, "r", raw=True), [], None),
            (oip_json_response(outputs, "r"), [], None),
        ],
        "kserve": [
            kserve_record({"instances": [[1.0, 2, "DE"]]}, "c", request=True) + (None,),
            kserve_record({"predictions": [0.5]}, "c", request=False, structured=True) + (None,),
        ],
        "seldon": [
            (
                schema_registry_framed(parse_proto(oip_proto_request(inputs, "r"), True), topic),
                rid,
                topic,
            ),
            (oip_proto_response(outputs, "r"), rid, "seldon.ns.model.fraud.outputs"),
        ],
        "flat": [(b'{"amount": 1.5, "country": "DE", "prediction": 0.5}', [], None)],
    }


FORMAT_SEEDS = _format_seeds()


@st.composite
def format_message(
    draw: st.DrawFn,
) -> tuple[str, bytes | None, list[tuple[str, bytes]], str | None]:
    """A real payload of some format, cut, bit-flipped, spliced or replaced by noise."""
    fmt = draw(st.sampled_from(sorted(FORMAT_SEEDS)))
    value, headers, topic = draw(st.sampled_from(FORMAT_SEEDS[fmt]))
    how = draw(st.sampled_from(["keep", "cut", "flip", "noise", "splice", "none"]))
    if how == "cut":
        value = value[: draw(st.integers(0, len(value)))]
    elif how == "flip":
        data = bytearray(value)
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        value = bytes(data)
    elif how == "noise":
        value = draw(st.binary(max_size=256))
    elif how == "splice":
        at = draw(st.integers(0, len(value)))
        value = value[:at] + draw(st.binary(max_size=32)) + value[at:]
    if draw(st.booleans()) and headers:  # a header dropped or garbled
        headers = [(k, draw(st.binary(max_size=8))) for k, _ in headers]
    return fmt, None if how == "none" else value, headers, topic


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(format_message(), min_size=1, max_size=6))
def test_fuzz_model_server_formats_never_raise(
    messages: list[tuple[str, bytes | None, list[tuple[str, bytes]], str | None]],
) -> None:
    from monitor.ingest.decode.formats import MessageBatch, decode_messages

    for fmt in sorted({m[0] for m in messages}):
        mine = [m for m in messages if m[0] == fmt]
        schema = DecodeSchema(models={"fraud": FRAUD}, bound_model="fraud", format=fmt)
        batch = decode_messages(
            MessageBatch(
                [m[1] for m in mine],
                np.full(len(mine), 1_764_150_000.0),
                lambda mine=mine: [m[2] for m in mine],  # type: ignore[misc]
                lambda mine=mine: [m[3] for m in mine],  # type: ignore[misc]
            ),
            schema,
        )
        seen: set[int] = set()
        for cols in batch.models.values():
            assert cols.numeric.shape == (cols.rows, len(FRAUD.numeric_names))
            assert not np.isinf(cols.numeric).any() and np.isfinite(cols.ts).all()
            seen.update(cols.msg_index.tolist())
        for rejection in batch.rejected:
            assert isinstance(rejection.reason, Reason) and rejection.detail
            assert len(rejection.detail) <= 1024
            seen.add(rejection.index)
        assert seen == set(range(len(mine))), fmt
