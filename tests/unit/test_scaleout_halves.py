"""Request and response halves with scale-out: raw rows carry each row's half and pairing
key, and the model's owner pairs them, ending as one process fed the time-sorted messages."""

from __future__ import annotations

import random
from dataclasses import replace
from itertools import pairwise
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import Config, validate_config
from monitor.errors import CheckpointError
from monitor.ingest.decode import ModelColumns
from monitor.ingest.decode.columns import REQUEST, RESPONSE, WHOLE
from monitor.pipeline import BatchOutcome, Pipeline
from monitor.scaleout.codec import CodecError, decode_rows, encode_rows, source_id
from monitor.scaleout.halves import StagePairing, pairs_halves, stage_pairing
from monitor.scaleout.raw import RawColumns, raw_from
from monitor.scaleout.stage import ModelStage, StageStep, raw_fingerprint, raw_rows
from monitor.state.checkpoint import Checkpoint, decode_checkpoint, encode_checkpoint
from tests.support.stage_delivery import deliver
from tests.unit.test_pairing import halves, oip_config, traffic
from tests.unit.test_scaleout_stage import problems, with_scale_out

SOURCES = 3
TOPIC = "infer"


def decoded(pipeline: Pipeline, messages: list[tuple[bytes, float]]) -> ModelColumns:
    batch = pipeline.decode(
        [m for m, _ in messages], np.array([t for _, t in messages]), pipeline.schema(TOPIC)
    )
    return batch.models["fraud"]


# -- the raw rows' new fields ------------------------------------------------------------


def test_halves_and_pairing_keys_round_trip_through_the_wire() -> None:
    cols = halves([(REQUEST, "a:0", 0, 1, np.nan), (RESPONSE, "a:0", 1, np.nan, 0.5),
                   (WHOLE, None, 2, 3, 0.1)])  # fmt: skip
    raw = RawColumns.of(cols, None)
    assert raw.halves is not None and raw.halves.tolist() == [REQUEST, RESPONSE, WHOLE]
    assert raw.pair_keys == ["a:0", "a:0", None]
    assert raw.header()["pair_keys"] == "ids"  # the keys are the ids: written once
    other = replace(raw, ids=["i1", "i2", "i3"])
    assert other.header()["pair_keys"] == ["a:0", "a:0", None]
    back_other = raw_from(other.header(), other.arrays(), 3)
    assert back_other.pair_keys == ["a:0", "a:0", None] and back_other.ids == ["i1", "i2", "i3"]
    batch = raw_rows("m", "fp", cols, None, np.zeros(3), np.arange(3), [[0, 0, 2]])
    back = decode_rows(encode_rows(batch)).raw
    assert back is not None and back.halves is not None
    assert back.halves.tolist() == [REQUEST, RESPONSE, WHOLE] and back.pair_keys == raw.pair_keys
    again = back.columns(batch.ts)
    assert again.halves is not None and again.halves.tolist() == [REQUEST, RESPONSE, WHOLE]
    assert list(again.pair_keys or []) == ["a:0", "a:0", None]
    # take and concat keep them with their rows; whole-only parts count as whole
    picked = back.take(np.array([2, 0]))
    assert picked.halves is not None and picked.halves.tolist() == [WHOLE, REQUEST]
    assert picked.pair_keys == [None, "a:0"]
    whole = ModelColumns(cols.numeric[:1], [["x"]], cols.ts[:1], ["w"], np.zeros(1, np.int64))
    plain = RawColumns.of(whole, None)
    assert plain.halves is None and "halves" not in plain.header()
    both = RawColumns.concat([back, plain])
    assert both.halves is not None and both.halves.tolist() == [REQUEST, RESPONSE, WHOLE, WHOLE]
    assert both.pair_keys == ["a:0", "a:0", None, None]


def test_rows_written_without_halves_still_load() -> None:
    cols = halves([(REQUEST, "a:0", 0, 1, np.nan)])
    header = RawColumns.of(cols, None).header()
    old = {k: v for k, v in header.items() if k not in ("halves", "pair_keys")}
    arrays = RawColumns.of(cols, None).arrays()
    raw = raw_from(old, arrays, 1)
    assert raw.halves is None and raw.pair_keys is None
    assert raw.columns(np.zeros(1)).halves is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"halves": [1, 2]}, "row count"),
        ({"pair_keys": ["a:0", "b:0", "c:0", "d:0"]}, "row count"),
        ({"halves": [1, 3, 0]}, "half kind"),
        ({"halves": [1, True, 0]}, "half kind"),
        ({"halves": "120"}, "not lists"),
        ({"pair_keys": "keys"}, "not lists"),
        ({"pair_keys": ["a:0", 7, None]}, "not a string"),
    ],
)
def test_malformed_halves_are_a_value_error(change: dict[str, Any], message: str) -> None:
    cols = halves([(REQUEST, "a:0", 0, 1, np.nan), (RESPONSE, "a:0", 1, np.nan, 0.5),
                   (WHOLE, None, 2, 3, 0.1)])  # fmt: skip
    raw = RawColumns.of(cols, None)
    with pytest.raises(ValueError, match=message):
        raw_from({**raw.header(), **change}, raw.arrays(), 3)
    header = {**raw.header()}
    del header["pair_keys"]
    with pytest.raises(KeyError):
        raw_from(header, raw.arrays(), 3)
    # on the wire, the same is a codec error (the batch is rejected, not a crash)
    batch = raw_rows("m", "fp", cols, None, np.zeros(3), np.arange(3), [[0, 0, 2]])
    data = encode_rows(batch).replace(b'"halves":[1,2,0]', b'"halves":[1,2,7]')
    with pytest.raises(CodecError, match="half kind"):
        decode_rows(data)


def test_only_models_of_a_paired_format_pair_in_stage_2() -> None:
    conf = oip_config()
    assert pairs_halves(conf, "fraud")
    assert stage_pairing(conf, "fraud") is not None
    topic = conf.kafka.topics[0].model_copy(update={"format": "driftmon"})
    native = conf.model_copy(update={"kafka": conf.kafka.model_copy(update={"topics": [topic]})})
    assert not pairs_halves(native, "fraud") and stage_pairing(native, "fraud") is None


# -- stage 2 pairs as one process does -------------------------------------------------


def one_process(
    conf: Config, messages: list[tuple[bytes, float]], cuts: list[int]
) -> tuple[Pipeline, BatchOutcome]:
    """One process fed the messages sorted by event time, in batches ending at ``cuts``.

    Paired rows reach the windows as their pairs complete, so even one process's answer
    depends on where its batches end (37 messages a batch or 100 give different count
    windows and captures): the reference cuts its batches where the owner's releases
    ended, and must then agree to the bit."""
    pipeline = Pipeline(conf, {})
    ordered = sorted(messages, key=lambda m: m[1])
    total = BatchOutcome()
    for start, stop in pairwise([0, *cuts, len(ordered)]):
        chunk = ordered[start:stop]
        if chunk:
            ts = np.array([t for _, t in chunk])
            total.merge(pipeline.process([m for m, _ in chunk], ts, TOPIC))
    return pipeline, total


def through_stages(
    conf: Config, messages: list[tuple[bytes, float]], rnd: random.Random
) -> tuple[list[StageStep], ModelStage]:
    """Stage 1 on SOURCES partitions (each message to a random one, so the halves of an
    inference usually part), random batches decoded as stage 1 decodes, delivered in a
    random interleaving, some twice, with a checkpoint through its wire form and a restore
    into a fresh stage (another replica) halfway."""
    stage1 = Pipeline(conf, {})
    parts: list[list[int]] = [[] for _ in range(SOURCES)]
    for i in range(len(messages)):
        parts[rnd.randrange(SOURCES)].append(i)
    queues: list[list[Any]] = [[] for _ in range(SOURCES)]
    for p, rows in enumerate(parts):
        start = 0
        while start < len(rows):
            take = rows[start : start + rnd.randint(1, 60)]
            cols = decoded(stage1, [messages[i] for i in take])
            offsets = np.arange(start, start + len(take))
            batch = raw_rows(
                "fraud",
                raw_fingerprint(stage1.models["fraud"]),
                cols,
                None,
                np.full(cols.rows, source_id(0, p)),
                offsets[cols.msg_index],
                [[source_id(0, p), start, start + len(take) - 1]],
            )
            queues[p].append(decode_rows(encode_rows(batch)))
            start += len(take)

    def new_stage() -> ModelStage:
        return ModelStage(
            "fraud",
            Pipeline(conf, {}).models["fraud"],
            [source_id(0, p) for p in range(SOURCES)],
            allowed_lateness_seconds=0.0,
            max_buffered_rows=10**6,
            pairing=stage_pairing(conf, "fraud"),
        )

    def reopen(stage: ModelStage) -> ModelStage:  # through the checkpoint's wire form
        data = encode_checkpoint(Checkpoint("r", 0.0, {}, {"fraud": stage.state()}))
        stage = new_stage()
        stage.restore(decode_checkpoint(data).models["fraud"])
        return stage

    return deliver(queues, rnd, new_stage, reopen)


def evaluations(evals: list[Any]) -> list[tuple[Any, ...]]:
    return [(e.slide, e.result, e.alert) for e in evals]


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32))
def test_halves_over_partitions_pair_in_the_owner_as_in_one_process(seed: int) -> None:
    conf = oip_config()
    messages = traffic(300, seed=3)
    assert len({t for _, t in messages}) == len(messages)  # one order by event time
    steps, stage = through_stages(conf, messages, random.Random(seed))
    # Releases come in event-time order, 4 rows a message: where each one ended.
    released = np.cumsum([s.rows for s in steps if s.rows])
    assert not (released % 4).any()
    single, outcome = one_process(conf, messages, (released // 4).tolist())
    expected = single.pairings["fraud"]
    assert stage.pairing is not None
    pairing = stage.pairing.pairing
    assert pairing.paired_total == expected.paired_total >= 290 * 4
    assert pairing.unpaired == expected.unpaired
    assert pairing.pending == expected.pending
    ours = [e for s in steps for e in s.step.evaluations]
    assert evaluations(ours) == evaluations(outcome.evaluations)
    assert len(outcome.evaluations) > 5
    assert stage.model.events_seen == single.events_seen("fraud")
    wall = {"last_evaluation_time": None}
    assert replace(stage.model.status(), **wall) == replace(single.status("fraud"), **wall)
    # what the stage reports per release adds up to the same counts
    fed = sum(s.pairs.fed for s in steps if s.pairs is not None)
    assert fed == sum(outcome.accepted.values())
    assert sum(s.pairs.paired for s in steps if s.pairs is not None) == pairing.paired_total
    assert stage.buffer.counts.applied == decoded(Pipeline(conf, {}), messages).rows


def test_a_pairing_state_of_another_layout_is_refused() -> None:
    conf = oip_config()
    found = stage_pairing(conf, "fraud")
    assert isinstance(found, StagePairing)
    scalars: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    found.put(scalars, arrays)
    scalars["pairing.width"] = 99
    with pytest.raises(CheckpointError):
        found.take(scalars, arrays)


def test_a_topic_pattern_with_scale_out_is_a_config_error_naming_the_key() -> None:
    doc = with_scale_out(enabled=True)
    doc["kafka"]["topics"] = [{"name": "^seldon\\.prod\\.model\\..*", "format": "seldon"}]
    [(path, message, hint)] = problems(doc)
    assert path == "kafka.topics.0.name" and "scale_out" in message and ".inputs" in hint
    # listed by name, Seldon's two topics are fine, and their model pairs in stage 2
    doc["kafka"]["topics"] = [
        {"name": "seldon.prod.model.m.inputs", "format": "seldon"},
        {"name": "seldon.prod.model.m.outputs", "format": "seldon"},
    ]
    assert pairs_halves(validate_config(doc), "m")
    doc["kafka"]["scale_out"] = {"enabled": False}
    doc["kafka"]["topics"] = [{"name": "^seldon\\.prod\\.model\\..*", "format": "seldon"}]
    assert validate_config(doc).kafka is not None  # without scale-out a pattern is fine
