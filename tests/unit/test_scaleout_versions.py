"""Binned rows of a model with versions: each row against its version's grid, versions
still capturing raw until their profile is shared; stage 2 fed them duplicated, reordered
and restored halfway ends equal to one process fed the time-sorted events."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import validate_config
from monitor.ingest.decode import decode_batch
from monitor.model.model import Model
from monitor.model.reference_file import ModelReference
from monitor.model.versioned import VersionedModel
from monitor.pipeline import Pipeline
from monitor.scaleout.codec import RowBatch, decode_rows, encode_rows, source_id
from monitor.scaleout.profiles import ProfileTable, captured_fingerprint, encode_profile
from monitor.scaleout.reorder import Marker
from monitor.scaleout.stage import ModelStage, StageStep, raw_fingerprint, raw_rows
from monitor.scaleout.versions import (
    VersionGrids,
    expected_grid,
    monitor_codec,
    profile_key,
    split_profile_key,
)
from tests.unit.test_pipeline_versions import config as versions_config
from tests.unit.test_pipeline_versions import profile
from tests.unit.test_scaleout_raw import (
    SOURCES,
    drift,
    drift_of,
    one_process,
    versioned_events,
    versioned_pipeline,
)


def stage_of(model: Model) -> ModelStage:
    sources = [source_id(0, p) for p in range(SOURCES)]
    return ModelStage("m", model, sources, allowed_lateness_seconds=0.0, max_buffered_rows=10**6)


def share_captured(table: ProfileTable, grids: VersionGrids, stage: ModelStage) -> None:
    """The owner shares what it captured on the profiles topic; stage 1 reads the records
    into its table and bins the versions they name."""
    for key, (captured, fingerprint) in stage.shared_profiles().items():
        if table.fingerprint(key) == fingerprint:
            continue
        changed = table.offer(key.encode(), encode_profile(captured, fingerprint))
        assert changed == key
        found = split_profile_key(key, ["m"])
        assert found is not None
        grids.use(found[1], table.codec(key))


def through_stages(
    make: Any, messages: list[bytes], headers: list[str | None], rnd: random.Random
) -> tuple[list[StageStep], ModelStage, list[RowBatch]]:
    """Stage 1 on SOURCES partitions binning what it can when each batch is sent (with
    every captured reference the owner has shared so far), rows delivered in a random
    interleaving, some twice, with a checkpoint and restore halfway."""
    stage1 = make()
    grids = VersionGrids("m", stage1.models["m"])
    table = ProfileTable(stage1.models)
    parts: list[list[int]] = [[] for _ in range(SOURCES)]
    for i in range(len(messages)):
        parts[rnd.randrange(SOURCES)].append(i)
    queues: list[list[tuple[int, list[int]]]] = [[] for _ in range(SOURCES)]
    for p, rows in enumerate(parts):
        start = 0
        while start < len(rows):
            take = rows[start : start + rnd.randint(1, 60)]
            queues[p].append((start, take))
            start += len(take)
    order = [p for p in range(SOURCES) for _ in queues[p]]
    rnd.shuffle(order)
    stage = stage_of(make().models["m"])
    steps, sent = [], []
    for k, p in enumerate(order):
        start, take = queues[p].pop(0)
        msgs = [messages[i] for i in take]
        hv = [headers[i] for i in take]
        cols = decode_batch(msgs, np.zeros(len(msgs)), stage1.schema("t")).models["m"]
        source = np.full(cols.rows, source_id(0, p))
        offset = np.arange(start, start + len(take))[cols.msg_index]
        ranges = np.array([[source_id(0, p), start, start + len(take) - 1]])
        share_captured(table, grids, stage)
        batch = grids.rows(cols, hv, source, offset, ranges)
        if batch is None:
            batch = raw_rows("m", grids.fingerprint, cols, hv, source, offset, ranges)
        batch = decode_rows(encode_rows(batch))
        sent.append(batch)
        assert stage.push(batch)
        if rnd.random() < 0.2:
            assert stage.push(batch)  # delivered twice: dropped as duplicates
        steps.append(stage.step())
        if k == len(order) // 2:
            state = stage.state()
            stage = stage_of(make().models["m"])
            stage.restore(state)
    for p in range(SOURCES):
        stage.mark(Marker(source_id(0, p), 10**6, idle=True))
    steps.append(stage.step())
    return steps, stage, sent


def captured_pipeline() -> Pipeline:
    """Default reference and v2 captured from the stream, v1 configured."""
    conf = versions_config(references={"v1": "v1.json"})
    return Pipeline(conf, {"m": ModelReference(None, versions={"v1": profile(seed=1)})})


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32))
def test_versions_binned_per_version_equal_one_process(seed: int) -> None:
    """The default reference and v2 captured from the stream, v1 configured: batches with
    rows of a capturing reference go raw, every batch binned (rows with their version)
    once the owner has shared what it captured."""
    messages, headers = versioned_events(2400, seed=5)
    single = one_process(captured_pipeline(), messages, headers)
    steps, stage, sent = through_stages(captured_pipeline, messages, headers,
                                        random.Random(seed))  # fmt: skip
    assert drift(steps) == drift_of(single)
    assert {e.version for e in single.evaluations} == {None, "v1", "v2"}
    assert any(e.alert.event is not None for e in single.evaluations)  # v1's drift alerts
    binned = [b for b in sent if b.raw is None]
    assert sum(b.rows for b in binned) > len(messages) // 4  # once the captures are shared
    assert any(b.raw is not None for b in sent)  # while the captures run
    assert {k for b in binned if b.carried for k in b.carried.grids} == {"", "v1", "v2"}
    assert set(stage.shared_profiles()) == {"m", "m@v2"}  # the captured ones, by key
    assert sum(s.rows for s in steps) == len(messages)
    assert stage.buffer.counts.applied == len(messages)
    assert stage.buffer.counts.rejected == 0


def file_pipeline(on_new_version: str = "ignore") -> Pipeline:
    """The default and v1 references from files; v2 ignored (its rows binned against the
    default grid, which splits them into label and drift rows, then dropped)."""
    conf = versions_config(references={"v1": "v1.json"}, on_new_version=on_new_version)
    data = conf.model_dump(mode="json", warnings=False)
    data["models"]["m"]["reference"] = "p.json"
    refs = {"m": ModelReference(profile(), versions={"v1": profile(seed=1)})}
    return Pipeline(validate_config(data), refs)


def test_configured_references_bin_every_row_from_the_start() -> None:
    messages, headers = versioned_events(1500, seed=7)
    single = one_process(file_pipeline(), messages, headers)
    steps, stage, sent = through_stages(file_pipeline, messages, headers, random.Random(3))
    assert not stage.shared_profiles()  # nothing captured, nothing to share
    assert all(b.raw is None for b in sent)
    assert drift(steps) == drift_of(single)
    assert {e.version for e in single.evaluations} == {None, "v1"}
    assert sum(s.step.ignored for s in steps) == sum(single.ignored_versions.values()) > 0


def test_rows_binned_against_another_grid_are_rejected_and_counted() -> None:
    pipeline = file_pipeline()
    model = pipeline.models["m"]
    assert isinstance(model, VersionedModel)
    messages, headers = versioned_events(30, seed=1)
    cols = decode_batch(messages, np.zeros(30), pipeline.schema("t")).models["m"]
    grids = VersionGrids("m", model)
    rows = np.arange(cols.rows)
    batch = grids.rows(cols, headers, rows * 0, rows, np.array([[0, 0, 29]]))
    assert batch is not None and batch.carried is not None
    assert batch.carried.grids["v1"] == expected_grid(model, "v1")
    other = dict(batch.carried.grids, v1="a grid of another reference")
    forged = dataclasses.replace(batch, carried=dataclasses.replace(batch.carried, grids=other))
    stage = ModelStage("m", model, [0], allowed_lateness_seconds=0.0, max_buffered_rows=100)
    assert not stage.push(forged)
    v1 = sum(v == "v1" for v in cols.versions or [])
    v1 += sum(h == "v1" for h in headers)  # versions from the message header
    assert stage.buffer.counts.rejected == v1 > 0
    assert stage.buffer.buffered == 30 - v1  # the other versions' rows are kept
    assert not stage.push(forged)  # delivered again: every row is a duplicate now
    assert stage.buffer.counts.duplicate == 30 - v1
    wrong = dataclasses.replace(
        batch, fingerprint=raw_fingerprint(versioned_pipeline().models["m"])
    )
    assert not stage.push(wrong)


def test_a_capturing_key_has_no_grid_and_keys_name_their_topic_records() -> None:
    model = versioned_pipeline().models["m"]
    assert isinstance(model, VersionedModel)
    grids = VersionGrids("m", model)
    assert set(grids.codecs) == {"", "v1"}  # v2 is captured from the stream
    assert expected_grid(model, "v2") is None
    assert expected_grid(model, "") == grids.codecs[""].fingerprint
    assert profile_key("m", "") == "m" and profile_key("m", "v2") == "m@v2"
    assert split_profile_key("m@v2", ["m"]) == ("m", "v2")
    assert split_profile_key("m", ["m"]) == ("m", "")
    assert split_profile_key("x@v2", ["m"]) is None and split_profile_key("m@", ["m"]) is None


def test_the_profiles_table_takes_captured_versions_only() -> None:
    model = file_pipeline("capture").models["m"]
    table = ProfileTable({"m": model})
    captured = profile(seed=4)
    codec = VersionGrids("m", model).codecs["v1"]
    other = "0" * 64
    assert table.offer(b"m@v1", encode_profile(captured, other)) is None  # configured
    assert table.offer(b"m", encode_profile(captured, other)) is None  # the file's default
    assert table.offer(b"m@v2", encode_profile(captured, other)) is None  # other config
    assert table.counts["unknown_model"] == 2 and table.counts["other_config"] == 1
    assert isinstance(model, VersionedModel)
    fingerprint = captured_fingerprint(model.new_monitor("v2"), captured)
    assert table.offer(b"m@v2", encode_profile(captured, fingerprint)) == "m@v2"
    assert table.codec("m@v2") is not None and codec.fingerprint != fingerprint
    assert table.offer(b"m@v2", None) == "m@v2" and table.codec("m@v2") is None  # deleted


def test_binned_rows_of_a_version_captured_again_are_not_fed_to_its_capture() -> None:
    """A version evicted by ``max_versions`` while binned rows of it wait in the buffer
    captures again: those rows are dropped, counted rejected, never fed to the capture."""
    pipeline = file_pipeline("capture")
    model = pipeline.models["m"]
    assert isinstance(model, VersionedModel)
    v2 = model.monitors["v2"] = model.new_monitor("v1")  # as if v2 had captured this
    grids = VersionGrids("m", model)
    grids.use("v2", monitor_codec("m", v2))
    messages, headers = versioned_events(30, seed=2)
    cols = decode_batch(messages, np.zeros(30), pipeline.schema("t")).models["m"]
    rows = np.arange(cols.rows)
    batch = grids.rows(cols, headers, rows * 0, rows, np.array([[0, 0, 29]]))
    assert batch is not None
    stage = ModelStage("m", model, [0], allowed_lateness_seconds=0.0, max_buffered_rows=100)
    assert stage.push(batch)
    del model.monitors["v2"]  # evicted; its rows come back to a new capture
    stage.mark(Marker(0, 30, idle=True))
    step = stage.step()
    assert step.rows == 30
    assert stage.buffer.counts.rejected == 10  # every third event is of v2
    assert "v2" not in model.monitors or model.monitors["v2"].captured == 0
