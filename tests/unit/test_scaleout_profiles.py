"""Captured references shared through ``<group_id>.profiles``: the reader's table, the
owner's switch from raw to binned rows, and the fingerprint check (no Kafka here)."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import validate_config
from monitor.ingest.decode import decode_batch
from monitor.model.reference_file import ModelReference
from monitor.pipeline import Pipeline
from monitor.scaleout.codec import RowBatch, decode_rows, encode_rows, source_id
from monitor.scaleout.profiles import (
    FINGERPRINT_KEY,
    ProfileTable,
    captured_codec,
    captured_fingerprint,
    encode_profile,
    switches,
)
from monitor.scaleout.reorder import Marker
from monitor.scaleout.stage import ModelStage, StageStep, raw_fingerprint, raw_rows
from monitor.stats import ReferenceProfile, build_profile
from monitor.stats.profile import profile_to_json
from tests.unit.test_pipeline_versions import KINDS
from tests.unit.test_pipeline_versions import config as versions_config
from tests.unit.test_scaleout_raw import (
    capture_pipeline,
    drift,
    drift_of,
    one_process,
    versioned_events,
)

SOURCES = 3


def captured_profile(seed: int = 0, shift: float = 0.0) -> ReferenceProfile:
    """A profile the way capture builds it for model m (x numeric, c categorical)."""
    rng = np.random.default_rng(seed)
    return build_profile(
        "m",
        {"x": rng.normal(shift, 1.0, 400), "c": rng.choice(["a", "b", "d"], 400).tolist()},
        KINDS,
        bins=10,
        source="stream:400 events",
    )


def record(pipeline: Pipeline, profile: ReferenceProfile) -> bytes:
    monitor = pipeline.models["m"].default
    return encode_profile(profile, captured_fingerprint(monitor, profile))


# ----------------------------------------------------------------------------- the table


def test_only_a_model_capturing_its_reference_alone_switches() -> None:
    assert switches(capture_pipeline().models["m"])
    versioned = Pipeline(versions_config(), {})  # captures, but routes rows per version
    assert not switches(versioned.models["m"])


def test_the_table_takes_the_last_value_per_key() -> None:
    pipeline = capture_pipeline()
    table = ProfileTable(pipeline.models)
    first, second = captured_profile(1), captured_profile(2, shift=1.0)
    assert table.offer(b"m", record(pipeline, first)) == "m"
    assert table.offer(b"m", record(pipeline, first)) is None  # the same profile again
    assert table.offer(b"m", record(pipeline, second)) == "m"
    codec = table.codec("m")
    assert codec is not None
    assert table.fingerprint("m") == captured_fingerprint(pipeline.models["m"].default, second)
    assert codec.fingerprint == table.fingerprint("m")
    assert table.counts["used"] == 3
    # A tombstone drops it: the model goes back to raw rows.
    assert table.offer(b"m", None) == "m"
    assert table.codec("m") is None and table.counts["deleted"] == 1


def test_the_record_is_the_baseline_document_with_its_fingerprint() -> None:
    pipeline = capture_pipeline()
    profile = captured_profile()
    document = json.loads(record(pipeline, profile))
    fingerprint = document.pop(FINGERPRINT_KEY)
    assert document == json.loads(json.dumps(profile_to_json(profile)))
    assert fingerprint == captured_fingerprint(pipeline.models["m"].default, profile)


@pytest.mark.parametrize(
    ("key", "value", "outcome"),
    [
        (b"other", b"{}", "unknown_model"),
        (None, b"{}", "unknown_model"),
        (b"\xff", b"{}", "unknown_model"),
        (b"m", b"not json", "garbled"),
        (b"m", b"[1, 2]", "garbled"),
        (b"m", b'{"schema_version": 1}', "garbled"),
        (b"m", b"\xff\xfe", "garbled"),
    ],
)
def test_unknown_and_garbled_records_are_counted(
    key: bytes | None, value: bytes, outcome: str
) -> None:
    pipeline = capture_pipeline()
    table = ProfileTable(pipeline.models)
    table.offer(b"m", record(pipeline, captured_profile()))
    changed = table.offer(key, value, "profiles/0/7")
    assert table.counts[outcome] == 1
    if outcome == "garbled":  # the last value of m is unusable: back to raw rows
        assert changed == "m" and table.codec("m") is None
    else:
        assert changed is None and table.codec("m") is not None


def test_a_profile_of_another_config_or_model_is_not_used() -> None:
    pipeline = capture_pipeline()
    table = ProfileTable(pipeline.models)
    profile = captured_profile()
    # Written by an owner with another configuration: its fingerprint is not ours.
    data = json.loads(record(pipeline, profile))
    data[FINGERPRINT_KEY] = "0" * 64
    assert table.offer(b"m", json.dumps(data).encode()) is None
    assert table.counts["other_config"] == 1 and table.codec("m") is None
    # A profile without one of the model's features cannot bin its rows.
    lacking = build_profile("m", {"x": np.arange(100.0)}, {"x": KINDS["x"]})
    assert table.offer(b"m", encode_profile(lacking, "f")) is None
    assert table.counts["garbled"] == 1
    # A model with a reference file never takes one from the topic.
    data = versions_config().model_dump(mode="json", warnings=False)
    data["models"]["m"]["reference"] = "p.json"
    filed = Pipeline(validate_config(data), {"m": ModelReference(captured_profile())})
    assert ProfileTable(filed.models).offer(b"m", record(pipeline, profile)) is None


@settings(max_examples=200, deadline=None)
@given(key=st.one_of(st.none(), st.binary(max_size=8)), value=st.one_of(st.none(), st.binary()))
def test_no_record_crashes_the_reader(key: bytes | None, value: bytes | None) -> None:
    pipeline = capture_pipeline()
    table = ProfileTable(pipeline.models)
    table.offer(key, value)
    assert sum(table.counts.values()) == 1


# ----------------------------------------------------------------------------- the switch


def stage1_batches(
    pipeline: Pipeline,
    messages: list[bytes],
    rnd: random.Random,
    codec_for: dict[int, Any],
) -> list[tuple[int, RowBatch]]:
    """Stage 1 over SOURCES partitions (random assignment, random batch sizes): raw rows,
    or rows binned with ``codec_for[partition]`` where one is given."""
    parts: list[list[int]] = [[] for _ in range(SOURCES)]
    for i in range(len(messages)):
        parts[rnd.randrange(SOURCES)].append(i)
    out = []
    fingerprint = raw_fingerprint(pipeline.models["m"])
    for p, rows in enumerate(parts):
        start = 0
        while start < len(rows):
            take = rows[start : start + rnd.randint(1, 120)]
            msgs = [messages[i] for i in take]
            cols = decode_batch(msgs, np.zeros(len(msgs)), pipeline.schema("t")).models["m"]
            base = OFFSETS[p]
            offsets = np.arange(base, base + len(take))[cols.msg_index]
            source = np.full(cols.rows, source_id(0, p))
            ranges = [[source_id(0, p), base, base + len(take) - 1]]
            OFFSETS[p] += len(take)
            codec = codec_for.get(p)
            if codec is None:
                batch = raw_rows("m", fingerprint, cols, None, source, offsets, ranges)
            else:
                codes = codec.encode_categories(cols.categorical)
                batch = codec.bin(cols.numeric, codes, cols.ts, source, offsets, np.array(ranges))
            out.append((p, decode_rows(encode_rows(batch))))
            start += len(take)
    return out


OFFSETS = [0] * SOURCES


def new_stage() -> ModelStage:
    return ModelStage(
        "m",
        capture_pipeline().models["m"],
        [source_id(0, p) for p in range(SOURCES)],
        allowed_lateness_seconds=0.0,
        max_buffered_rows=10**6,
    )


def feed(
    stage: ModelStage, batches: list[tuple[int, RowBatch]], rnd: random.Random, *, last: bool
) -> list[Any]:
    """Each partition's batches in order, partitions interleaved at random; when ``last``,
    every source then reported caught up so the watermark passes every row."""
    queues = [[b for q, b in batches if q == p] for p in range(SOURCES)]
    order = [p for p in range(SOURCES) for _ in queues[p]]
    rnd.shuffle(order)
    steps = []
    for p in order:
        assert stage.push(queues[p].pop(0))
        steps.append(stage.step())
    if last:
        for p in range(SOURCES):
            stage.mark(Marker(source_id(0, p), OFFSETS[p], idle=True))
        steps.append(stage.step())
    return steps


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_after_the_switch_binned_and_raw_rows_end_as_one_process(seed: int) -> None:
    """Raw rows until the owner captures; then some stage 1s bin against the topic's
    profile and others (not caught up) still send raw: one process's evaluations."""
    rnd = random.Random(seed)
    OFFSETS[:] = [0] * SOURCES
    messages, _ = versioned_events(2400, seed=9)
    single = one_process(capture_pipeline(), messages, None)
    ordered = sorted(messages, key=lambda m: json.loads(m)["ts"])
    early, late = ordered[:600], ordered[600:]
    stage1 = capture_pipeline()

    stage = new_stage()
    steps: list[StageStep] = feed(stage, stage1_batches(stage1, early, rnd, {}), rnd, last=False)
    assert [s.switched for s in steps].count(True) == 1
    assert stage.captured is not None and stage.codec is not None
    assert stage.buffer.fingerprint == stage.fingerprint != raw_fingerprint(stage.model)

    # The owner publishes; a stage 1 reads the record and bins with the same grid.
    table = ProfileTable(stage1.models)
    table.offer(b"m", encode_profile(stage.captured, stage.fingerprint))
    codec = table.codec("m")
    assert codec is not None and codec.fingerprint == stage.fingerprint
    # A checkpoint and restore in between: the restored stage is switched at once.
    restored = new_stage()
    restored.restore(stage.state())
    assert restored.codec is not None and restored.fingerprint == stage.fingerprint
    batches = stage1_batches(stage1, late, rnd, {0: codec, 1: codec})  # partition 2: raw
    assert any(b.raw is None for _, b in batches) and any(b.raw is not None for _, b in batches)
    steps += feed(restored, batches, rnd, last=True)
    assert drift(steps) == drift_of(single)
    assert restored.buffer.counts.applied == len(messages)
    assert restored.buffer.counts.rejected == 0


def test_binned_rows_of_another_reference_are_rejected_and_counted() -> None:
    rnd = random.Random(3)
    OFFSETS[:] = [0] * SOURCES
    messages, _ = versioned_events(1200, seed=9)
    ordered = sorted(messages, key=lambda m: json.loads(m)["ts"])
    stage1 = capture_pipeline()
    stage = new_stage()
    # Before the capture: binned rows of any fingerprint are rejected, raw ones taken.
    other = captured_codec("m", stage1.models["m"].default, captured_profile(5))
    [(_, early)] = stage1_batches(stage1, ordered[:1], rnd, {0: other, 1: other, 2: other})
    assert not stage.push(early)
    assert stage.buffer.counts.rejected == 1
    feed(stage, stage1_batches(stage1, ordered[:500], rnd, {}), rnd, last=True)
    assert stage.captured is not None
    # After it: rows binned against another profile (another capture, another config).
    late = stage1_batches(stage1, ordered[500:], rnd, {0: other, 1: other, 2: other})
    for _, batch in late:
        assert not stage.push(batch)
    assert stage.buffer.counts.rejected == 1 + sum(b.rows for _, b in late)
    # Raw rows of another configuration too.
    data = versions_config().model_dump(mode="json", warnings=False)
    del data["models"]["m"]["versions"]
    data["models"]["m"]["bins"] = 7
    foreign = Pipeline(validate_config(data), {})
    fingerprint = raw_fingerprint(foreign.models["m"])
    cols = decode_batch(ordered[:5], np.zeros(5), foreign.schema("t")).models["m"]
    batch = raw_rows("m", fingerprint, cols, None, np.zeros(5), np.arange(5), [[0, 0, 4]])
    assert not stage.push(batch)


def test_a_checkpoint_with_raw_rows_after_the_capture_restores_switched() -> None:
    """A checkpoint of a driftmon that never switched (its buffer holds raw rows of a
    captured model) restores into a switched stage, its rows binned: one process's answer."""
    rnd = random.Random(5)
    OFFSETS[:] = [0] * SOURCES
    messages, _ = versioned_events(2400, seed=9)
    single = one_process(capture_pipeline(), messages, None)
    stage1 = capture_pipeline()
    old = new_stage()
    old.switches = False  # as before captured profiles were shared: raw rows throughout
    steps = feed(old, stage1_batches(stage1, messages[:800], rnd, {}), rnd, last=False)
    assert old.model.default.profile is not None and old.codec is None
    assert old.buffer.buffered > 0  # raw rows waiting for the watermark
    restored = new_stage()
    restored.restore(old.state())
    assert restored.codec is not None and restored.buffer.fingerprint == restored.fingerprint
    steps += feed(restored, stage1_batches(stage1, messages[800:], rnd, {}), rnd, last=True)
    assert drift(steps) == drift_of(single)
    assert restored.buffer.counts.applied == len(messages)
