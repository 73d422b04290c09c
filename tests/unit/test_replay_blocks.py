"""Replay reads a file as blocks with line offsets (no ``bytes`` per line): the columns,
rejections and line numbers are those of the list of lines it used to build, and a replay
of a fixed file writes the same report as with that list."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import monitor.app.replay as replay_module
from monitor.app.replay import decoded_ahead, iter_numbered_chunks, replay
from monitor.config import Config, validate_config
from monitor.ingest.decode import DecodedBatch, DecodeSchema, decode_batch
from monitor.ingest.decode.block import MessageBlock, join_payloads
from monitor.model.reference_file import load_references
from monitor.pipeline import Pipeline
from monitor.stats import FeatureKind, build_profile
from tests.unit.test_jsonscan import CLEAN, FRAUD, HOSTILE, SCHEMA


def lines_as_bytes(data: bytes, size: int) -> Iterator[tuple[list[bytes], list[int]]]:
    """The reader before blocks, as the oracle: split into ``bytes``, a trailing CR
    stripped, blank and whitespace-only lines left out, numbered from 1, chunked."""
    kept = [(line.rstrip(b"\r"), n) for n, line in enumerate(data.split(b"\n"), start=1)]
    kept = [(line, n) for line, n in kept if line and not line.isspace()]
    for i in range(0, len(kept), size):
        part = kept[i : i + size]
        yield [line for line, _ in part], [n for _, n in part]


def same_batches(a: DecodedBatch, b: DecodedBatch) -> None:
    key = lambda r: (r.index, str(r.reason), r.detail, r.position)  # noqa: E731
    assert sorted(map(key, a.rejected)) == sorted(map(key, b.rejected))
    assert a.models.keys() == b.models.keys()
    for name, x in a.models.items():
        y = b.models[name]
        assert np.array_equal(x.numeric, y.numeric, equal_nan=True), name
        assert x.codes is not None and y.codes is not None
        assert np.array_equal(x.codes, y.codes), name
        assert np.array_equal(x.ts, y.ts), name
        assert np.array_equal(x.msg_index, y.msg_index), name
        assert x.unknown_features == y.unknown_features, name


# Valid and invalid events (the scanner's and the object paths' own cases), CR as JSON
# whitespace inside a line, an oversized line (SCHEMA allows 400 bytes), blank lines.
POOL = [p for p in HOSTILE if p] + list(CLEAN)
POOL += [b'{"model": "fraud",\r "features": {"amount": 1}}', b"{oops\r", b"\r"]
POOL += [b'{"model": "fraud", "features": {"x": "' + b"y" * 400 + b'"}}', b"", b"  ", b"\t \x0b"]


@settings(max_examples=150, deadline=None)
@given(
    picks=st.lists(st.sampled_from(POOL), max_size=40),
    ends=st.lists(st.sampled_from([b"\n", b"\r\n"]), min_size=40, max_size=40),
    trailing=st.booleans(),
    size=st.integers(min_value=1, max_value=9),
    read_bytes=st.sampled_from([1, 7, 64, 333, 1 << 16]),
)
def test_blocks_decode_like_the_list_of_lines(
    tmp_path_factory: pytest.TempPathFactory,
    picks: list[bytes],
    ends: list[bytes],
    trailing: bool,
    size: int,
    read_bytes: int,
) -> None:
    data = b"".join(line + end for line, end in zip(picks, ends, strict=False))
    if not trailing and data:  # the last line without its newline
        data = data[: -len(ends[len(picks) - 1])]
    path = tmp_path_factory.mktemp("blocks") / "events.jsonl"
    path.write_bytes(data)
    blocks = list(iter_numbered_chunks(path, size, read_bytes))
    lists = list(lines_as_bytes(data, size))
    assert len(blocks) == len(lists)
    for (block, numbers), (lines, expected_numbers) in zip(blocks, lists, strict=True):
        assert isinstance(block, MessageBlock)
        assert block.tolist() == lines
        assert numbers.tolist() == expected_numbers
        kafka_ts = np.arange(len(lines), dtype=np.float64) + 1000.0
        same_batches(decode_batch(block, kafka_ts, SCHEMA), decode_batch(lines, kafka_ts, SCHEMA))


# ------------------------------------------------------------------ replay, fixed file


def fixed_file(path: Path) -> None:
    """3,000 events whose second half drifts, with invalid, blank and CRLF lines."""
    rng = np.random.default_rng(11)
    lines: list[bytes] = []
    for i in range(3000):
        shift = 0.0 if i < 1500 else 1.5
        event = {
            "model": "m",
            "ts": 1.7e9 + i,
            "id": f"r{i}",
            "features": {
                "x": round(float(rng.normal(shift, 1)), 4),
                "y": round(float(rng.normal(0, 1)), 4),
                "c": ["a", "b", "c", "d"][int(rng.integers(0, 4 if i < 1500 else 2))],
            },
            "prediction": round(float(rng.random()), 5),
        }
        lines.append(orjson.dumps(event) + (b"\r\n" if i % 7 == 0 else b"\n"))
        if i % 401 == 0:
            lines.append(b"{not json}\n")
        if i % 503 == 0:
            lines.append(b'{"model": "m", "features": {"x": "1"}}\n\n  \n')
    path.write_bytes(b"".join(lines)[:-1])  # no newline at the end


def fixed_config(tmp_path: Path, capture: bool = False) -> Config:
    rng = np.random.default_rng(5)
    data = {
        "x": rng.normal(0, 1, 4000),
        "y": rng.normal(0, 1, 4000),
        "c": [["a", "b", "c", "d"][v] for v in rng.integers(0, 4, 4000)],
        "prediction": rng.random(4000),
    }
    kinds = {"x": FeatureKind.NUMERIC, "y": FeatureKind.NUMERIC, "c": FeatureKind.CATEGORICAL}
    kinds["prediction"] = FeatureKind.NUMERIC
    build_profile("m", data, kinds, source="test").save(tmp_path / "m.json")
    return validate_config(
        {
            "models": {
                "m": {
                    # capture: the schema changes (category codes) part-way through
                    "reference": {"capture_events": 1000} if capture else str(tmp_path / "m.json"),
                    "window": {"events": 400, "slide": 100},
                    "features": {
                        "x": {"type": "numeric"},
                        "y": {"type": "numeric"},
                        "c": {"type": "categorical"},
                    },
                    "prediction": {"type": "numeric"},
                    "tests": ["psi", "ks", "js", "chi2"],
                    "alert": {"min_features": 1, "consecutive": 2, "cooldown_seconds": 60},
                }
            }
        }
    )


def old_numbered_chunks(
    path: Path, lines: int = 20_000
) -> Iterator[tuple[list[bytes], np.ndarray]]:
    for chunk, numbers in lines_as_bytes(path.read_bytes(), lines):
        yield chunk, np.array(numbers, dtype=np.int64)


def decoded_in_turn(
    pipeline: Pipeline,
    chunks: Iterator[tuple[list[bytes], np.ndarray]],
    default_ts: float,
    topic: str | None = None,
) -> Iterator[tuple[list[bytes], np.ndarray, np.ndarray, DecodedBatch]]:
    """Before: each chunk decoded when its turn comes, nothing ahead on another thread."""
    for chunk, numbers in chunks:
        kafka_ts = np.full(len(chunk), default_ts)
        yield chunk, numbers, kafka_ts, decode_batch(chunk, kafka_ts, pipeline.schema(topic))


@pytest.mark.parametrize("capture", [False, True], ids=["profile", "capture"])
def test_replay_of_a_fixed_file_is_the_same_as_with_the_list_of_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capture: bool
) -> None:
    source = tmp_path / "events.jsonl"
    fixed_file(source)
    config = fixed_config(tmp_path, capture)
    references = load_references(config)
    reports = []
    for before in (False, True):
        if before:  # the list of lines, decoded in turn
            monkeypatch.setattr(replay_module, "iter_numbered_chunks", old_numbered_chunks)
            monkeypatch.setattr(replay_module, "decoded_ahead", decoded_in_turn)
        out = tmp_path / f"report-{len(reports)}.jsonl"
        with out.open("wb") as handle:
            summary = replay(config, references, source, handle, chunk_lines=700)
        reports.append((out.read_bytes(), summary.report()[1:], summary))
    (new, new_lines, a), (old, old_lines, b) = reports
    assert new
    assert new == old
    assert new_lines == old_lines  # rejections by reason, with file:line examples
    assert (a.lines, a.accepted, a.rejected, a.evaluations, a.triggers) == (
        b.lines,
        b.accepted,
        b.rejected,
        b.evaluations,
        b.triggers,
    )
    # the file exercises what it should: drift confirmed, rejections named by line
    assert a.triggers >= 1 and a.evaluations > (10 if capture else 20)
    assert a.rejected == 8 + 6 and f"{source}:2 not_json" in "\n".join(new_lines)


class _Capturing:
    """A pipeline whose schema gains category codes once the first chunk is fed."""

    def __init__(self) -> None:
        self.before = replace(SCHEMA, models={"fraud": replace(FRAUD, codes=None)})
        self.captured = False

    def schema(self, topic: str | None) -> DecodeSchema:
        return SCHEMA if self.captured else self.before

    def decode(
        self, payloads: MessageBlock, kafka_ts: np.ndarray, schema: DecodeSchema, **_: object
    ) -> DecodedBatch:
        return decode_batch(payloads, kafka_ts, schema)


def test_a_chunk_decoded_ahead_is_decoded_again_when_the_schema_changed(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join([CLEAN[0]] * 6))
    pipeline = _Capturing()
    chunks = iter_numbered_chunks(path, 2)
    got = []
    for _chunk, _numbers, _ts, decoded in decoded_ahead(pipeline, chunks, 0.0):  # type: ignore[arg-type]
        got.append(decoded.models["fraud"].codes is not None)
        pipeline.captured = True  # feeding the first chunk captured the reference
    # the second chunk went to the worker before the capture: decoded again, with codes
    assert got == [False, True, True]


def test_joined_payloads_are_one_block_unless_a_message_has_no_value() -> None:
    payloads: list[bytes | None] = [b'{"a": 1}', b"", b'{"b": 2}']
    block = join_payloads(payloads)
    assert isinstance(block, MessageBlock)
    assert block.data == b'{"a": 1}{"b": 2}' and list(block) == payloads
    with_none: list[bytes | None] = [b"{}", None]
    assert join_payloads(with_none) is with_none  # None keeps its meaning: not b""
