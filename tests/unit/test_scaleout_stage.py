"""Scale-out without Kafka: the wire format, the config key, and one model's stage 2."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from monitor.config import CaptureReference, Config, validate_config
from monitor.demo.synthetic import model_config_yaml
from monitor.errors import ConfigError
from monitor.ingest.decode import decode_batch
from monitor.model.reference_file import load_references
from monitor.pipeline import Pipeline
from monitor.scaleout.codec import CodecError, RowCodec, decode_rows, encode_rows, source_id
from monitor.scaleout.reorder import Marker
from monitor.scaleout.stage import ModelStage, codec_for, partition_of
from monitor.stats import FeatureKind, build_profile
from tests.integration.daemon_harness import events, write_reference

MODEL = "fraud"


def config(tmp_path: Path, **scale_out: object) -> Config:
    reference = write_reference(tmp_path, rows=5000)
    doc = {
        "kafka": {
            "bootstrap_servers": "127.0.0.1:9",
            "topics": ["t"],
            "scale_out": {"enabled": True, **scale_out},
        },
        "models": yaml.safe_load(model_config_yaml(str(reference), events=2000, slide=500)),
    }
    return Config.model_validate(doc)


BASE = {
    "kafka": {"bootstrap_servers": "b:9092", "topics": ["t"]},
    "models": {
        "m": {
            "reference": "p.json",
            "window": {"events": 2000, "slide": 200},
            "features": {"x": {"type": "numeric"}},
        }
    },
}


def with_scale_out(model: dict[str, object] | None = None, **scale_out: object) -> dict:
    doc = copy.deepcopy(BASE)
    doc["kafka"]["scale_out"] = scale_out
    doc["models"]["m"].update(model or {})
    return doc


def problems(doc: dict) -> list[tuple[str, str, str]]:
    with pytest.raises(ConfigError) as info:
        validate_config(doc)
    return [(p.path, p.message, p.hint) for p in info.value.problems]


def test_scale_out_is_off_by_default() -> None:
    conf = validate_config(copy.deepcopy(BASE))
    assert conf.kafka is not None and conf.kafka.scale_out.enabled is False
    assert conf.kafka.scale_out.rows_topic("driftmon") == "driftmon.rows"
    # Off, a captured reference stays what it is today.
    validate_config(with_scale_out({"reference": {"capture_events": 1000}}, enabled=False))


def test_versions_and_performance_are_taken_with_scale_out() -> None:
    conf = validate_config(
        with_scale_out({"versions": {"references": {"v1": "v1.json"}}}, enabled=True)
    )
    assert conf.models["m"].versions is not None
    performance = {
        "prediction": {"type": "numeric"},
        "task": "binary_classification",
        "performance": {"window": {"events": 200, "slide": 100}},
    }
    conf = validate_config(with_scale_out(performance, enabled=True))
    assert conf.models["m"].performance is not None


def test_a_captured_reference_is_taken_with_scale_out() -> None:
    conf = validate_config(with_scale_out({"reference": {"capture_events": 1000}}, enabled=True))
    assert conf.models["m"].reference == CaptureReference(capture_events=1000)


def test_a_bad_scale_out_value_names_its_key() -> None:
    [(path, _message, _hint)] = problems(with_scale_out(allowed_lateness_seconds=-1))
    assert path == "kafka.scale_out.allowed_lateness_seconds"
    [(path, _message, _hint)] = problems(with_scale_out(enabled=True, partitions=3))
    assert path == "kafka.scale_out.partitions"  # unknown keys are named too


def test_the_wire_format_round_trips_and_refuses_garbage() -> None:
    rng = np.random.default_rng(0)
    profile = build_profile(
        "m",
        {"x": rng.normal(size=500), "c": [f"v{i % 300}" for i in range(500)]},
        {"x": FeatureKind.NUMERIC, "c": FeatureKind.CATEGORICAL},
        bins=10,
        max_categories=300,
    )
    codec = RowCodec("m", profile, ["x"], ["c"], "fp")
    assert codec.dtype == np.uint16  # 300 categories do not fit a byte
    x = np.array([[np.nan], [-50.0], [0.1], [np.inf], [50.0]])
    codes = np.array([[-1], [0], [299], [300], [301]])
    batch = codec.bin(x, codes, np.arange(5.0), np.full(5, 3), np.arange(5) + 10, [[3, 10, 14]])
    back = decode_rows(encode_rows(batch))
    np.testing.assert_array_equal(back.codes, batch.codes)
    numeric, cats = codec.rebuild(back)
    np.testing.assert_array_equal(cats, codes)
    assert np.isnan(numeric[0, 0]) and numeric[1, 0] == -50.0 and numeric[3, 0] == np.inf
    edges = profile.features["x"].edges
    assert np.searchsorted(edges, numeric[2, 0], "right") == np.searchsorted(edges, 0.1, "right")
    with pytest.raises(CodecError, match="bad magic"):
        decode_rows(b"{}")
    with pytest.raises(CodecError, match="corrupt|trailing"):
        decode_rows(encode_rows(batch)[:-3])


def run_two_replicas(conf: Config, refs: dict, messages: list[bytes]) -> tuple[list, ModelStage]:
    """Stage 1 on two "replicas" (odd and even messages: two partitions), then stage 2."""
    pipeline = Pipeline(conf, refs)
    codec = codec_for(MODEL, pipeline.models[MODEL])
    stage = ModelStage(
        MODEL,
        Pipeline(conf, refs).models[MODEL],
        [source_id(0, 0), source_id(0, 1)],
        allowed_lateness_seconds=1.0,
        max_buffered_rows=10**6,
    )
    evaluations = []
    for p in (0, 1):
        part = messages[p::2]
        cols = decode_batch(part, np.zeros(len(part)), pipeline.schema("t")).models[MODEL]
        offsets = np.arange(len(part))
        batch = codec.bin(
            cols.numeric,
            cols.codes if cols.codes is not None else codec.encode_categories(cols.categorical),
            cols.ts,
            np.full(len(part), source_id(0, p)),
            offsets[cols.msg_index],
            [[source_id(0, p), 0, len(part) - 1]],
        )
        assert stage.push(decode_rows(encode_rows(batch)))
        assert stage.push(batch)  # delivered twice: dropped as duplicates
        evaluations += stage.step().step.evaluations
    for p in (0, 1):
        stage.mark(Marker(source_id(0, p), 10**6, idle=True))
    evaluations += stage.step().step.evaluations
    return evaluations, stage


def test_a_model_stage_feeds_the_model_what_one_process_sees(tmp_path: Path) -> None:
    conf = config(tmp_path)
    refs = load_references(conf, tmp_path)
    messages = events(3000, seed=3)
    one = Pipeline(conf, refs)
    single = one.process(messages, np.zeros(len(messages)), "t")
    evaluations, stage = run_two_replicas(conf, refs, messages)
    assert stage.buffer.counts.duplicate == 3000
    assert [e.result for e in evaluations] == [e.result for e in single.evaluations]
    assert [e.slide for e in evaluations] == [e.slide for e in single.evaluations]


def test_sequential_detectors_run_in_the_owner_over_event_time_ordered_rows(
    tmp_path: Path,
) -> None:
    conf = config(tmp_path)
    model = conf.models[MODEL].model_copy(update={"tests": ["psi", "cusum", "bin_cusum"]})
    conf = conf.model_copy(update={"models": {MODEL: model}})
    refs = load_references(conf, tmp_path)
    messages = events(2500, seed=4) + events(2500, seed=5, drift=True, start_ts=1_764_150_025.0)
    single = Pipeline(conf, refs).process(messages, np.zeros(len(messages)), "t").evaluations
    evaluations, _ = run_two_replicas(conf, refs, messages)
    alarms = [e for e in evaluations if e.trigger == "sequential"]
    assert alarms and alarms[0].drift_event is not None  # the drift is caught between slides
    assert [(e.trigger, e.last_event, e.alert.status, e.result) for e in evaluations] == [
        (e.trigger, e.last_event, e.alert.status, e.result) for e in single
    ]
    found = next(e for e in evaluations if e.trigger == "slide" and e.last_event > 2500)
    assert "cusum" in found.result.features[0].scores


def test_a_batch_binned_on_another_grid_is_rejected_and_counted(tmp_path: Path) -> None:
    conf = config(tmp_path)
    stage = ModelStage(
        MODEL,
        Pipeline(conf, load_references(conf, tmp_path)).models[MODEL],
        [0],
        allowed_lateness_seconds=1.0,
        max_buffered_rows=10**6,
    )
    codec = stage.codec
    assert codec is not None  # binned rows: the model has one grid
    batch = decode_rows(encode_rows(codec.bin(
        np.zeros((2, len(codec.numeric_columns))),
        np.zeros((2, len(codec.categorical_columns)), np.int64),
        np.zeros(2), np.zeros(2), np.arange(2), [[0, 0, 1]],
    )))  # fmt: skip
    other = type(batch)(batch.model, "another-fingerprint", *vars_of(batch)[2:])
    assert not stage.push(other)
    assert stage.buffer.counts.rejected == 2


def vars_of(batch: object) -> list[object]:
    return [getattr(batch, f) for f in batch.__dataclass_fields__]  # type: ignore[attr-defined]


def test_a_model_keeps_its_internal_partition() -> None:
    assert partition_of("fraud", 4) == partition_of("fraud", 4)
    assert {partition_of(f"m{i}", 4) for i in range(40)} == {0, 1, 2, 3}
