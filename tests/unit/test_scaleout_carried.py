"""Binned rows that carry what a performance join reads: stage 2 fed them duplicated,
reordered and restored halfway ends equal to one process fed the time-sorted events."""

from __future__ import annotations

import dataclasses
import functools
import random
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import validate_config
from monitor.ingest.decode import ModelColumns, decode_batch
from monitor.model.model import Model
from monitor.model.performance import label_only_rows
from monitor.pipeline import Pipeline
from monitor.scaleout.carried import JoinColumns, join_columns
from monitor.scaleout.codec import CodecError, RowBatch, decode_rows, encode_rows, source_id
from monitor.scaleout.reorder import Marker
from monitor.scaleout.stage import (
    ModelStage,
    StageStep,
    binned_rows,
    codec_for,
    raw_fingerprint,
    raw_rows,
    sends_raw,
)
from monitor.stats import FeatureKind
from monitor.stats.binned import BinnedRows
from tests.unit.test_pipeline_performance import T0
from tests.unit.test_predicted_label import config as predicted_config
from tests.unit.test_predicted_label import event
from tests.unit.test_predicted_label import profile as predicted_profile
from tests.unit.test_scaleout_raw import (
    drift,
    drift_of,
    joined,
    one_process,
    performance_events,
    performance_pipeline,
    through_stages,
)

pushed: list[RowBatch] = []


def carried_rows_of(
    name: str,
    model: Model,
    cols: ModelColumns,
    headers: list[str | None] | None,
    source: np.ndarray,
    offset: np.ndarray,
    ranges: np.ndarray,
) -> RowBatch:
    """Stage 1's rows of a model with a join: binned, carrying the join's values."""
    batch = binned_rows(codec_for(name, model), join_columns(model), cols, source, offset, ranges)
    pushed.append(batch)
    return batch


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32))
def test_binned_rows_carrying_the_join_run_as_one_process_does(seed: int) -> None:
    messages = performance_events(1500, seed=2)
    pipeline = performance_pipeline()
    assert not sends_raw(pipeline.models["fraud"])
    single = one_process(pipeline, messages, None, "ml.inference")
    pushed.clear()
    steps, stage = through_stages(performance_pipeline, messages, None, random.Random(seed),
                                  model="fraud", topic="ml.inference", lateness=60.0,
                                  rows=carried_rows_of)  # fmt: skip
    assert pushed and all(b.raw is None and b.carried is not None for b in pushed)
    assert all(b.codes.shape[1] == 2 for b in pushed)  # amount and the prediction, binned
    performance = [e for s in steps for e in s.step.performance]
    assert joined(performance) == joined(single.performance)
    assert len(single.performance) >= 10
    assert any(e.alert.event is not None for e in single.performance)  # a retrain fired
    assert drift(steps) == drift_of(single)  # windows counted from codes, labels kept out
    perf = stage.model.status().performance
    assert perf is not None and perf.labels_joined_total > 1300
    assert perf == pipeline.models["fraud"].status().performance
    assert stage.model.status().events_total == pipeline.models["fraud"].status().events_total


# -------------------------------------------------- a categorical predicted class, label rows


@functools.cache
def multiclass_profile() -> Any:
    """One object: a profile records its creation time, part of checkpoint fingerprints."""
    kinds = {"amount": FeatureKind.NUMERIC, "y_pred": FeatureKind.CATEGORICAL}
    kinds.update({f"prediction.{c}": FeatureKind.NUMERIC for c in "abc"})
    return predicted_profile(kinds)


def multiclass_pipeline() -> Pipeline:
    conf = validate_config(predicted_config("multiclass_classification"))
    return Pipeline(conf, {"m": multiclass_profile()})


def multiclass_events(n: int) -> list[bytes]:
    """Probabilities with the model's own class as a categorical feature (some unknown or
    missing), labels inline, on label-only events, and on events with features but no
    prediction (drift rows, not label rows)."""
    rng = np.random.default_rng(4)
    out = []
    for i in range(n):
        proba = rng.dirichlet(np.ones(3))
        label = str("abc"[int(rng.integers(3))])
        hat: Any = "abc"[int(np.argmax(proba))] if i % 13 else ("zz" if i % 2 else None)
        kind = i % 5
        if kind == 0:  # label only, of the prediction two events before (no tie in time)
            out.append(orjson.dumps({"model": "m", "id": f"r{i - 2}", "label": label,
                                     "ts": T0 + i + 0.5}))  # fmt: skip
        elif kind == 1:  # features and a label, no prediction
            out.append(event(i, {"amount": float(rng.normal()), "y_pred": hat}, None, label))
        else:
            prediction = dict(zip("abc", map(float, proba), strict=True))
            out.append(event(i, {"amount": float(rng.normal()), "y_pred": hat}, prediction,
                             label if kind == 2 else None))  # fmt: skip
    return out


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32))
def test_a_categorical_predicted_class_travels_with_the_codes(seed: int) -> None:
    messages = multiclass_events(1400)
    pipeline = multiclass_pipeline()
    model = pipeline.models["m"]
    assert join_columns(model) == JoinColumns((1, 2, 3), (0,))  # probabilities, y_pred
    single = one_process(pipeline, messages, None, "ml.inference")
    pushed.clear()
    steps, stage = through_stages(multiclass_pipeline, messages, None, random.Random(seed),
                                  topic="ml.inference", rows=carried_rows_of)  # fmt: skip
    assert any(b.carried is not None and b.carried.tables[0] for b in pushed)
    assert joined([e for s in steps for e in s.step.performance]) == joined(single.performance)
    assert len(single.performance) >= 3
    assert drift(steps) == drift_of(single)
    assert stage.model.status().performance == model.status().performance


def test_label_rows_are_read_from_the_codes_of_binned_rows() -> None:
    pipeline = multiclass_pipeline()
    model = pipeline.models["m"]
    messages = multiclass_events(60)
    cols = decode_batch(messages, np.zeros(60), pipeline.schema("ml.inference")).models["m"]
    rows = np.arange(cols.rows)
    batch = carried_rows_of("m", model, cols, None, rows * 0, rows, np.array([[0, 0, 59]]))
    assert batch.carried is not None
    # The columns stage 2 builds: the carried values, plus the codes.
    assert batch.carried.join == JoinColumns((1, 2, 3), (0,)) and batch.carried.shape == (4, 1)
    from_codes = batch.carried.columns(batch.ts)
    columns = dataclasses.replace(
        from_codes,
        binned=BinnedRows(
            batch.codes,
            np.arange(4),
            np.arange(4, 5),
            batch.outer_row,
            batch.outer_col,
            batch.outer_value,
        ),  # fmt: skip
    )
    index = model.default.performance.prediction_index.tolist()  # type: ignore[union-attr]
    expected = label_only_rows(cols, index)
    assert expected is not None and expected.sum() == 12  # the label-only events
    assert np.array_equal(label_only_rows(columns, index), expected)
    # Without the codes, the carried values alone would take feature rows for label rows.
    assert label_only_rows(from_codes, index).sum() > expected.sum()  # type: ignore[union-attr]


# ------------------------------------------------------------------ wire, checks, restore


def fraud_rows(n: int = 40, fingerprint: str | None = None) -> tuple[Model, RowBatch]:
    pipeline = performance_pipeline()
    model = pipeline.models["fraud"]
    messages = performance_events(n, seed=3)
    cols = decode_batch(messages, np.zeros(len(messages)), pipeline.schema("ml.inference"))
    found = cols.models["fraud"]
    rows = np.arange(found.rows)
    batch = carried_rows_of("fraud", model, found, None, rows * 0, rows,
                            np.array([[0, 0, found.rows - 1]]))  # fmt: skip
    if fingerprint is not None:
        batch = dataclasses.replace(batch, fingerprint=fingerprint)
    return model, batch


def test_carried_rows_round_trip_and_are_smaller_than_raw_ones() -> None:
    model, batch = fraud_rows()
    data = encode_rows(batch)
    back = decode_rows(data)
    assert back.carried is not None and batch.carried is not None
    assert back.carried.ids == batch.carried.ids and back.carried.labels == batch.carried.labels
    assert np.array_equal(back.carried.values, batch.carried.values, equal_nan=True)
    assert np.array_equal(back.codes, batch.codes)
    rows = batch.rows
    cols = batch.carried.columns(batch.ts)
    raw = raw_rows("fraud", raw_fingerprint(model), cols, None, batch.source, batch.offset,
                   batch.ranges)  # fmt: skip
    assert len(data) / rows < len(encode_rows(raw)) / rows
    with pytest.raises(CodecError):
        decode_rows(data[:-3])
    assert b'"shape":[2,0]' in data
    bad = data.replace(b'"shape":[2,0]', b'"shape":[1,0]', 1)  # the prediction's column gone
    assert bad != data
    with pytest.raises(CodecError):
        decode_rows(bad)


def test_rows_without_what_the_join_needs_or_of_another_config_are_rejected() -> None:
    model, batch = fraud_rows()
    stage = ModelStage("fraud", model, [0], allowed_lateness_seconds=0.0, max_buffered_rows=999)
    assert stage.join is not None and stage.codec is not None
    assert not stage.push(dataclasses.replace(batch, carried=None))  # codes alone
    assert not stage.push(dataclasses.replace(batch, fingerprint="another config"))
    assert stage.buffer.counts.rejected == 2 * batch.rows
    assert stage.push(batch)


def test_a_checkpoint_holding_raw_rows_restores_into_binned_ones() -> None:
    """A checkpoint of a driftmon that sent a join's rows raw: its buffered raw rows are
    binned on restore, and raw rows of an older stage 1 are binned on arrival."""
    pipeline = performance_pipeline()
    messages = performance_events(600, seed=6)
    single = one_process(performance_pipeline(), messages, None, "ml.inference")
    cols = decode_batch(messages, np.zeros(len(messages)), pipeline.schema("ml.inference"))
    found = cols.models["fraud"]
    order = np.argsort(found.ts, kind="stable")
    found = found.take(order)
    rows = np.arange(found.rows)
    half = found.rows // 2
    fingerprint = raw_fingerprint(pipeline.models["fraud"])
    first = raw_rows("fraud", fingerprint, found.slice_rows(0, half), None, rows[:half] * 0,
                     rows[:half], np.array([[0, 0, half - 1]]))  # fmt: skip
    old = ModelStage("fraud", pipeline.models["fraud"], [source_id(0, 0)],
                     allowed_lateness_seconds=0.0, max_buffered_rows=10**6)  # fmt: skip
    old.buffer.rebin(fingerprint, 0, lambda batch: batch)  # what an older driftmon buffered
    old.buffer.push(first)
    state = old.state()
    assert state.scalars["reorder"]["fingerprint"] == fingerprint
    fresh = performance_pipeline()
    stage = ModelStage("fraud", fresh.models["fraud"], [source_id(0, 0)],
                       allowed_lateness_seconds=0.0, max_buffered_rows=10**6)  # fmt: skip
    stage.restore(state)
    assert stage.buffer.fingerprint == stage.codec.fingerprint  # type: ignore[union-attr]
    tail = found.slice_rows(half, found.rows)
    covered = np.array([[0, half, found.rows - 1]])
    rest = raw_rows("fraud", fingerprint, tail, None, rows[half:] * 0, rows[half:], covered)
    assert stage.push(rest)
    stage.mark(Marker(source_id(0, 0), 10**6, idle=True))
    steps: list[StageStep] = [stage.step()]
    assert steps[0].rows == found.rows
    assert joined([e for s in steps for e in s.step.performance]) == joined(single.performance)
    assert drift(steps) == drift_of(single)
