"""Request and response halves joined by key before the windows (``monitor.ingest.pairing``),
and through the pipeline with its checkpoints."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from monitor.config import Config, validate_config
from monitor.errors import CheckpointError
from monitor.ingest.decode.coded import Coded
from monitor.ingest.decode.columns import REQUEST, RESPONSE, WHOLE, ModelColumns
from monitor.ingest.pairing import Pairing, PairLimits
from monitor.pipeline import BatchOutcome, Pipeline
from monitor.state.checkpoint import Checkpoint, decode_checkpoint, encode_checkpoint
from tests.support.payloads import oip_json_request, oip_json_response

NAN = float("nan")


def halves(rows: Sequence[tuple[int, str | None, float, float, float]]) -> ModelColumns:
    """Rows ``(half, key, ts, feature, prediction)`` of a model with one numeric feature,
    one category (``c<feature>``) and a numeric prediction."""
    n = len(rows)
    numeric = np.array([[f, p] for _, _, _, f, p in rows], dtype=np.float64).reshape(n, 2)
    cats = [f"c{int(f)}" if h == REQUEST else None for h, _, _, f, _ in rows]
    return ModelColumns(
        numeric,
        [cats],
        np.array([t for _, _, t, _, _ in rows], dtype=np.float64),
        [k for _, k, _, _, _ in rows],
        np.arange(n, dtype=np.int64),
        0,
        [None] * n,
        halves=np.array([h for h, *_ in rows], dtype=np.int8),
        pair_keys=[k for _, k, _, _, _ in rows],
    )


def store(max_pending: int = 100, delay: float = 60.0) -> Pairing:
    return Pairing(
        PairLimits(max_pending, delay),
        numeric_width=2,
        prediction_at=1,
        categorical_prediction=False,
    )


def rows_of(cols: ModelColumns) -> list[tuple[Any, ...]]:
    return [
        (
            cols.ids[r],
            *[None if np.isnan(v) else v for v in cols.numeric[r].tolist()],
            cols.categorical[0][r],
        )
        for r in range(cols.rows)
    ]


def test_halves_pair_in_either_order_across_batches() -> None:
    p = store()
    first = p.pair(
        halves([(REQUEST, "a", 0, 1, NAN), (RESPONSE, "b", 1, NAN, 0.2), (WHOLE, "w", 1, 7, 0.7)])
    )
    assert rows_of(first) == [("w", 7.0, 0.7, None)]
    assert p.pending == {"request": 1, "response": 1}
    second = p.pair(halves([(RESPONSE, "a", 2, NAN, 0.9), (REQUEST, "b", 3, 2, NAN)]))
    assert sorted(rows_of(second)) == [("a", 1.0, 0.9, "c1"), ("b", 2.0, 0.2, "c2")]
    assert second.ts.tolist() == [3.0, 0.0] or sorted(second.ts.tolist()) == [0.0, 3.0]
    assert p.pending == {"request": 0, "response": 0} and p.paired_total == 2


def test_halves_of_one_batch_pair_with_each_other() -> None:
    p = store()
    out = p.pair(halves([(RESPONSE, "a", 1, NAN, 0.5), (REQUEST, "a", 0, 3, NAN)]))
    assert rows_of(out) == [("a", 3.0, 0.5, "c3")]
    assert out.ts.tolist() == [0.0]  # the request's event time


def test_an_expired_request_is_monitored_alone_and_an_expired_response_dropped() -> None:
    p = store(delay=10)
    assert p.pair(halves([(REQUEST, "a", 0, 1, NAN), (RESPONSE, "b", 0, NAN, 0.3)])).rows == 0
    out = p.pair(halves([(REQUEST, "c", 50, 2, NAN)]))
    assert rows_of(out) == [("a", 1.0, None, "c1")]
    assert p.unpaired[("request", "expired")] == 1 and p.unpaired[("response", "expired")] == 1
    assert p.pending == {"request": 1, "response": 0}


def test_a_late_half_pairs_only_within_the_delay() -> None:
    p = store(delay=10)
    p.pair(halves([(REQUEST, "a", 0, 1, NAN)]))
    out = p.pair(halves([(RESPONSE, "a", 30, NAN, 0.4)]))
    assert rows_of(out) == [("a", 1.0, None, "c1")]  # released, not paired 30 s apart
    assert p.pending == {"request": 0, "response": 1}


def test_capacity_duplicates_and_missing_keys_are_counted() -> None:
    p = store(max_pending=2)
    out = p.pair(
        halves(
            [
                (REQUEST, "a", 0, 1, NAN),
                (REQUEST, "a", 0, 9, NAN),  # duplicate: the first wins
                (REQUEST, "b", 1, 2, NAN),
                (REQUEST, "c", 2, 3, NAN),
                (REQUEST, None, 2, 4, NAN),  # no key: monitored at once
                (RESPONSE, None, 2, NAN, 0.1),  # no key: dropped
            ]
        )
    )
    assert sorted(rows_of(out), key=str) == sorted(
        [(None, 4.0, None, "c4"), ("a", 1.0, None, "c1")], key=str
    )
    assert p.unpaired[("request", "duplicate")] == 1
    assert p.unpaired[("request", "capacity")] == 1
    assert p.unpaired[("request", "no_id")] == 1 and p.unpaired[("response", "no_id")] == 1
    assert p.pending == {"request": 2, "response": 0}


def test_state_roundtrip_resumes_exactly() -> None:
    rng = random.Random(3)
    batches = []
    for b in range(12):
        rows: list[tuple[int, str | None, float, float, float]] = []
        for k in range(20):
            key = f"k{b * 20 + k}"
            rows.append((REQUEST, key, b * 5.0 + k * 0.1, float(k), NAN))
            rows.append((RESPONSE, key, b * 5.0 + k * 0.1 + rng.uniform(0, 8), NAN, k / 20))
        rng.shuffle(rows)
        batches.append(rows)
    # responses of one batch arrive with the next: shift half of them
    straight, resumed = store(delay=6), store(delay=6)
    a = [rows_of(straight.pair(halves(b))) for b in batches]
    got = [rows_of(resumed.pair(halves(b))) for b in batches[:6]]
    again = store(delay=6)
    again.restore(resumed.state_dict())
    got += [rows_of(again.pair(halves(b))) for b in batches[6:]]
    assert got == a
    assert again.unpaired == straight.unpaired and again.paired_total == straight.paired_total


def test_state_of_another_layout_is_refused() -> None:
    state = store().state_dict()
    other = Pairing(PairLimits(), numeric_width=3, prediction_at=1, categorical_prediction=False)
    with pytest.raises(CheckpointError):
        other.restore(state)
    with pytest.raises(CheckpointError):
        store().restore({"version": 1})


def as_requests(cols: ModelColumns) -> ModelColumns:
    """The same rows with keys, ids and versions as the model-server decoders give them:
    one table entry per key without its row number (``<key>:<row>``), rows as indices."""
    keys = list(cols.pair_keys or [])
    table = sorted({k for k in keys if k is not None})
    at = np.array([table.index(k) if k is not None else -1 for k in keys], np.int64)
    suffix = np.array([int(k[1:]) % 3 if k is not None else 0 for k in keys], np.int64)
    coded = Coded(table, at, suffix)
    versions = Coded(["v1", None], np.arange(cols.rows) % 2)
    return replace(cols, ids=coded, pair_keys=coded, versions=versions)


def with_row_keys(cols: ModelColumns) -> ModelColumns:
    """``as_requests`` spelled out as plain lists (what the pairing saw before tables)."""
    coded = as_requests(cols)
    return replace(
        coded,
        ids=list(coded.ids),
        pair_keys=list(coded.pair_keys or []),
        versions=list(coded.versions),
    )


def test_table_keys_pair_exactly_as_their_strings() -> None:
    """Random traffic with duplicates, missing keys, late halves, capacity and a restart:
    integer keys from tables give the rows, counts and state of the string keys."""
    rng = random.Random(11)
    batches = []
    for b in range(15):
        rows: list[tuple[int, str | None, float, float, float]] = []
        for _ in range(30):
            key = f"k{rng.randrange(60)}" if rng.random() > 0.05 else None
            half = rng.choice([REQUEST, RESPONSE])
            feature, pred = (float(rng.randrange(9)), NAN) if half == REQUEST else (NAN, 0.5)
            rows.append((half, key, b * 4.0 + rng.uniform(0, 8), feature, pred))
        batches.append(halves(rows))
    tables, strings = store(max_pending=25, delay=6), store(max_pending=25, delay=6)
    for k, cols in enumerate(batches):
        if k == 8:  # through a checkpoint
            resumed = store(max_pending=25, delay=6)
            resumed.restore(tables.state_dict())
            tables = resumed
        got, want = tables.pair(as_requests(cols)), strings.pair(with_row_keys(cols))
        assert rows_of(got) == rows_of(want)
        assert list(got.versions) == list(want.versions)
    assert tables.unpaired == strings.unpaired and tables.paired_total == strings.paired_total
    assert tables.unpaired[("request", "duplicate")] > 0
    assert tables.pending == strings.pending


def test_state_written_before_request_keys_were_kept_restores() -> None:
    p = store()
    p.pair(as_requests(halves([(REQUEST, "k4", 0, 1, NAN), (REQUEST, "k5", 0, 2, NAN)])))
    state = p.state_dict()
    state["request_extras"] = [e[:3] for e in state["request_extras"]]  # the old layout
    again = store()
    again.restore(state)
    out = again.pair(
        as_requests(halves([(REQUEST, "k4", 1, 7, NAN), (RESPONSE, "k4", 1, NAN, 0.3)]))
    )
    assert again.unpaired[("request", "duplicate")] == 1  # k4:1 is waiting already
    assert rows_of(out) == [("k4:1", 1.0, 0.3, "c1")]


# -- through the pipeline ---------------------------------------------------------------


def oip_config(delay: float = 30.0) -> Config:
    return validate_config(
        {
            "kafka": {
                "bootstrap_servers": "127.0.0.1:9092",
                "topics": [
                    {
                        "name": "infer",
                        "model": "fraud",
                        "format": "oip",
                        "pairing": {"max_delay_seconds": delay},
                    }
                ],
            },
            "models": {
                "fraud": {
                    "reference": {"capture_events": 200},
                    "window": {"events": 100, "slide": 50},
                    "features": {"age": {"type": "numeric"}, "country": {"type": "categorical"}},
                    "prediction": {"type": "numeric"},
                }
            },
        }
    )


def traffic(n_requests: int, seed: int = 1) -> list[tuple[bytes, float]]:
    """Requests of 4 rows and their responses, each response 0-5 s later, in time order."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_requests):
        t = i * 1.0
        age = rng.normal(40, 5, 4).round()
        country = rng.choice(["DE", "US", "FR"], 4).tolist()
        body, _ = oip_json_request(
            {"age": ("FP64", age.tolist()), "country": ("BYTES", country)}, f"r{i}"
        )
        out.append((body, t))
        score = rng.uniform(0, 1, 4).tolist()
        out.append(
            (
                oip_json_response({"score": ("FP64", score)}, f"r{i}", model="fraud"),
                t + rng.uniform(0, 5),
            )
        )
    out.sort(key=lambda m: m[1])
    return out


def feed(
    pipeline: Pipeline, messages: Sequence[tuple[bytes, float]], batch: int = 37
) -> BatchOutcome:
    total = BatchOutcome()
    for start in range(0, len(messages), batch):
        chunk = messages[start : start + batch]
        total.merge(
            pipeline.process([m for m, _ in chunk], np.array([t for _, t in chunk]), "infer")
        )
    return total


def test_the_pipeline_pairs_halves_before_the_windows() -> None:
    pipeline = Pipeline(oip_config(), {})
    outcome = feed(pipeline, traffic(150))
    assert not outcome.rejected
    pairing = pipeline.pairings["fraud"]
    # every row paired but those whose response is still on its way
    assert outcome.paired["fraud"] == pairing.paired_total >= 150 * 4 - 6 * 4
    assert outcome.accepted["fraud"] == pairing.paired_total
    assert sum(outcome.unpaired.values()) == 0
    assert outcome.pending_halves[("fraud", "request")] == 150 * 4 - pairing.paired_total
    status = pipeline.status("fraud")
    assert status.reference_state == "loaded" and status.last_result is not None
    missing = {f.name: f.missing_ratio for f in status.last_result.features}
    assert missing == {"age": 0.0, "country": 0.0, "prediction": 0.0}


def test_pending_pairs_survive_a_checkpoint() -> None:
    messages = traffic(150, seed=4)
    straight = Pipeline(oip_config(), {})
    feed(straight, messages)
    first = Pipeline(oip_config(), {})
    feed(first, messages[:148])  # a batch boundary (37 x 4)
    assert sum(first.pairings["fraud"].pending.values()) > 0
    state = first.model_state("fraud", ["infer/0"])
    ckpt = decode_checkpoint(encode_checkpoint(Checkpoint("r", 0.0, {}, {"fraud": state})))
    resumed = Pipeline(oip_config(), {})
    resumed.restore_model("fraud", ckpt.models["fraud"])
    feed(resumed, messages[148:])
    assert resumed.pairings["fraud"].paired_total == straight.pairings["fraud"].paired_total
    assert resumed.events_seen("fraud") == straight.events_seen("fraud")
    wall = {"last_evaluation_time": None}
    assert replace(resumed.status("fraud"), **wall) == replace(straight.status("fraud"), **wall)
