"""Raw rows through stage 2: models with versions, a performance join or a captured
reference end as one process fed the time-sorted events, whatever the interleaving."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import validate_config
from monitor.ingest.decode import ModelColumns, decode_batch
from monitor.model.model import Model
from monitor.model.reference_file import ModelReference
from monitor.pipeline import BatchOutcome, Pipeline
from monitor.scaleout.codec import CodecError, RowBatch, decode_rows, encode_rows, source_id
from monitor.scaleout.stage import ModelStage, StageStep, raw_fingerprint, raw_rows, sends_raw
from monitor.stats.profile import ReferenceProfile, profile_to_json
from tests.support.stage_delivery import deliver
from tests.unit.test_pipeline_performance import make_config, make_profile, prediction, scenario
from tests.unit.test_pipeline_versions import config as versions_config
from tests.unit.test_pipeline_versions import profile

T0 = 1.7e9
SOURCES = 3


def versioned_events(n: int, seed: int) -> tuple[list[bytes], list[str | None]]:
    """Events of model m over versions: v1 (configured), v2 (captured), none (default),
    some versions only in the message header; a drift in v1's second half."""
    rng = np.random.default_rng(seed)
    out, headers = [], []
    for i in range(n):
        version = ("v1", "v2", None)[i % 3]
        shift = 1.5 if version == "v1" and i > n // 2 else 0.0
        event: dict[str, Any] = {
            "model": "m",
            "ts": T0 + i,
            "features": {"x": float(rng.normal(shift)), "c": str(rng.choice(["a", "b", "d"]))},
        }
        in_header = version is not None and i % 7 == 0
        if version is not None and not in_header:
            event["version"] = version
        out.append(json.dumps(event).encode())
        headers.append(version if in_header else None)
    return out, headers


RowsOf = Callable[
    [str, Model, ModelColumns, "list[str | None] | None", np.ndarray, np.ndarray, np.ndarray],
    RowBatch,
]


def raw_rows_of(
    name: str,
    model: Model,
    cols: ModelColumns,
    headers: list[str | None] | None,
    source: np.ndarray,
    offset: np.ndarray,
    ranges: np.ndarray,
) -> RowBatch:
    """Stage 1's raw rows of a model."""
    return raw_rows(name, raw_fingerprint(model), cols, headers, source, offset, ranges)


def one_process(
    pipeline: Pipeline, messages: list[bytes], headers: list[str | None] | None, topic: str = "t"
) -> BatchOutcome:
    """One process fed the events sorted by event time (what ``driftmon replay`` does)."""
    order = sorted(range(len(messages)), key=lambda i: json.loads(messages[i])["ts"])
    messages = [messages[i] for i in order]
    headers = None if headers is None else [headers[i] for i in order]
    total = BatchOutcome()
    for start in range(0, len(messages), 100):
        hv = None if headers is None else headers[start : start + 100]
        chunk = messages[start : start + 100]
        total.merge(pipeline.process(chunk, np.zeros(len(chunk)), topic, hv))
    return total


def through_stages(
    make: Callable[[], Pipeline],
    messages: list[bytes],
    headers: list[str | None] | None,
    rnd: random.Random,
    *,
    model: str = "m",
    topic: str = "t",
    lateness: float = 0.0,
    rows: RowsOf | None = None,
) -> tuple[list[StageStep], ModelStage]:
    """Stage 1 on SOURCES partitions (random assignment, random batches), rows delivered
    in a random interleaving, some twice, with a checkpoint and restore halfway.
    ``rows`` makes stage 1's row batch (raw rows by default)."""
    rows_of = rows or raw_rows_of
    stage1 = make()
    parts: list[list[int]] = [[] for _ in range(SOURCES)]
    for i in range(len(messages)):
        parts[rnd.randrange(SOURCES)].append(i)
    batches = []
    for p, rows in enumerate(parts):
        start = 0
        while start < len(rows):
            take = rows[start : start + rnd.randint(1, 120)]
            msgs = [messages[i] for i in take]
            hv = None if headers is None else [headers[i] for i in take]
            cols = decode_batch(msgs, np.zeros(len(msgs)), stage1.schema(topic)).models[model]
            offsets = np.arange(start, start + len(take))
            batch = rows_of(
                model,
                stage1.models[model],
                cols,
                hv,
                np.full(cols.rows, source_id(0, p)),
                offsets[cols.msg_index],
                np.array([[source_id(0, p), start, start + len(take) - 1]]),
            )
            batches.append((p, decode_rows(encode_rows(batch))))
            start += len(take)
    # Each partition's batches stay in their order; partitions interleave at random.
    queues = [[b for q, b in batches if q == p] for p in range(SOURCES)]

    def new_stage() -> ModelStage:
        sources = [source_id(0, p) for p in range(SOURCES)]
        return ModelStage(model, make().models[model], sources,
                          allowed_lateness_seconds=lateness, max_buffered_rows=10**6)  # fmt: skip

    def reopen(stage: ModelStage) -> ModelStage:
        state = stage.state()
        stage = new_stage()
        stage.restore(state)
        return stage

    return deliver(queues, rnd, new_stage, reopen)


def by_version(evaluations: list[Any]) -> dict[str | None, list[tuple[Any, ...]]]:
    """Each version's evaluations in order (versions' windows are independent, so how
    their evaluations interleave depends on batch boundaries)."""
    out: dict[str | None, list[tuple[Any, ...]]] = {}
    for e in evaluations:
        out.setdefault(e.version, []).append((e.slide, e.result, e.alert))
    return out


def drift(steps: list[StageStep]) -> dict[str | None, list[tuple[Any, ...]]]:
    return by_version([e for s in steps for e in s.step.evaluations])


def drift_of(outcome: BatchOutcome) -> dict[str | None, list[tuple[Any, ...]]]:
    return by_version(outcome.evaluations)


def versioned_pipeline() -> Pipeline:
    conf = versions_config(references={"v1": "v1.json"})
    refs = {"m": ModelReference(profile(), versions={"v1": profile(seed=1)})}
    return Pipeline(conf, refs)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32))
def test_versions_route_as_one_process_does(seed: int) -> None:
    rnd = random.Random(seed)
    messages, headers = versioned_events(2400, seed=5)
    single = one_process(versioned_pipeline(), messages, headers)
    steps, stage = through_stages(versioned_pipeline, messages, headers, rnd)
    assert drift(steps) == drift_of(single)
    assert {e.version for e in single.evaluations} == {None, "v1", "v2"}  # all three windows
    assert any(e.alert.event is not None for e in single.evaluations)  # v1's drift alerts
    assert sum(s.rows for s in steps) == len(messages)
    assert stage.buffer.counts.applied == len(messages)


def test_raw_rows_of_another_config_are_rejected_and_counted() -> None:
    pipeline = versioned_pipeline()
    model = pipeline.models["m"]
    assert sends_raw(model)
    stage = ModelStage("m", model, [0], allowed_lateness_seconds=0.0, max_buffered_rows=100)
    messages, headers = versioned_events(10, seed=1)
    cols = decode_batch(messages, np.zeros(10), pipeline.schema("t")).models["m"]
    other = versions_config(references={"v1": "v1.json"}, max_versions=3)
    fingerprint = raw_fingerprint(Pipeline(other, {"m": ModelReference(
        profile(), versions={"v1": profile(seed=1)})}).models["m"])  # fmt: skip
    assert fingerprint != raw_fingerprint(model)
    rows = raw_rows("m", fingerprint, cols, headers, np.zeros(10), np.arange(10), [[0, 0, 9]])
    assert not stage.push(rows)
    assert stage.buffer.counts.rejected == 10
    # Binned rows (no raw values) of the same fingerprint are not taken either.
    same = raw_rows("m", raw_fingerprint(model), cols, headers, np.zeros(10), np.arange(10),
                    [[0, 0, 9]])  # fmt: skip
    binned = dataclasses.replace(same, raw=None)
    assert not stage.push(binned)
    assert stage.buffer.counts.rejected == 20


def test_corrupt_raw_rows_are_a_codec_error() -> None:
    pipeline = versioned_pipeline()
    messages, headers = versioned_events(4, seed=1)
    cols = decode_batch(messages, np.zeros(4), pipeline.schema("t")).models["m"]
    rows = raw_rows("m", "fp", cols, headers, np.zeros(4), np.arange(4), [[0, 0, 3]])
    data = encode_rows(rows)
    assert decode_rows(data).raw is not None
    with pytest.raises(CodecError):
        decode_rows(data[:-2])
    bad = data.replace(b'"ids":[null,null,null,null]', b'"ids":[null]')
    assert bad != data
    with pytest.raises(CodecError, match="corrupt"):
        decode_rows(bad)


# ----------------------------------------------------------------------------- performance


def performance_events(n: int, seed: int) -> list[bytes]:
    """Predictions in order, each label 30.5 s later in event time and a few messages
    later in the stream (label-only events), some labels inline."""
    good_p, good_y = scenario(n // 2, seed)
    bad_p, bad_y = scenario(n - n // 2, seed + 1, quality=0.0)  # the model goes bad
    p, y = np.concatenate([good_p, bad_p]), np.concatenate([good_y, bad_y])
    out: list[bytes] = []
    for i in range(n):
        if i % 11 == 0:
            out.append(prediction(i, float(p[i]), T0 + i, label=bool(y[i])))
            continue
        out.append(prediction(i, float(p[i]), T0 + i))
        j = i - 5
        if j >= 0 and j % 11:
            out.append(orjson.dumps({"model": "fraud", "id": f"r{j}", "label": int(y[j]),
                                     "ts": T0 + j + 30.5}))  # fmt: skip
    return out


def performance_pipeline() -> Pipeline:
    config = make_config(thresholds={"roc_auc": {"min": 0.7}})
    return Pipeline(config, {"fraud": make_profile()})


def joined(evaluations: list[Any]) -> list[tuple[Any, ...]]:
    return [(e.result, e.alert) for e in evaluations]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32))
def test_the_performance_join_runs_as_one_process_does(seed: int) -> None:
    messages = performance_events(1500, seed=2)
    pipeline = performance_pipeline()
    single = one_process(pipeline, messages, None, "ml.inference")
    steps, stage = through_stages(performance_pipeline, messages, None, random.Random(seed),
                                  model="fraud", topic="ml.inference", lateness=60.0)  # fmt: skip
    performance = [e for s in steps for e in s.step.performance]
    assert joined(performance) == joined(single.performance)
    assert len(single.performance) >= 10
    assert any(e.alert.event is not None for e in single.performance)  # a retrain fired
    assert drift(steps) == drift_of(single)  # the drift windows never see label events
    perf = stage.model.status().performance
    assert perf is not None and perf.labels_joined_total > 1300
    assert perf == pipeline.models["fraud"].status().performance
    assert stage.buffer.counts.late == 0


# ----------------------------------------------------------------------------- capture


def capture_pipeline() -> Pipeline:
    data = versions_config().model_dump(mode="json", warnings=False)
    del data["models"]["m"]["versions"]
    return Pipeline(validate_config(data), {})


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32))
def test_the_owner_captures_the_reference_one_process_would(seed: int) -> None:
    messages, _ = versioned_events(1800, seed=9)  # the version fields are ignored here
    pipeline = capture_pipeline()
    single = one_process(pipeline, messages, None)
    steps, stage = through_stages(capture_pipeline, messages, None, random.Random(seed))
    assert drift(steps) == drift_of(single)
    assert len(single.evaluations) > 5
    assert captured(stage.model.default.profile) == captured(pipeline.models["m"].default.profile)
    assert stage.model.status().reference_ready


def captured(profile: ReferenceProfile | None) -> dict[str, Any]:
    assert profile is not None
    found = profile_to_json(profile)
    found.pop("created_at")
    return found
