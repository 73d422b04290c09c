"""Performance monitoring through the pipeline: label events, the join, alerts, state,
metrics, replay and baseline (scikit-learn is the reference for every metric)."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

from monitor.app.baseline import build_reference, save_reference
from monitor.app.replay import replay
from monitor.config import Config, validate_config
from monitor.errors import CheckpointError, ProfileError
from monitor.model.reference_file import (
    PERFORMANCE_KEY,
    ModelReference,
    ReferenceFile,
    load_references,
)
from monitor.performance import ReferencePerformance
from monitor.pipeline import BatchOutcome, Pipeline
from monitor.publish.metrics import DriftCollector
from monitor.state.checkpoint import Checkpoint, decode_checkpoint, encode_checkpoint
from monitor.stats import FeatureKind, ReferenceProfile, build_profile

T0 = 1_764_150_000.0
DRIFT_THRESHOLDS = ("psi", "ks_p_value", "js", "chi2_p_value", "missing_ratio")


def make_config(profile: Path | str = "/unused/profile.json", **performance: Any) -> Config:
    perf: dict[str, Any] = {
        "window": {"events": 200, "slide": 100},
        "join": {"max_delay_seconds": 3600, "max_pending": 100_000},
    }
    perf.update(performance)
    return validate_config(
        {
            "kafka": {"bootstrap_servers": "127.0.0.1:9092", "topics": ["ml.inference"]},
            "models": {
                "fraud": {
                    "reference": str(profile),
                    "window": {"events": 100, "slide": 50},
                    "features": {"amount": {"type": "numeric"}},
                    "prediction": {"type": "numeric"},
                    "task": "binary_classification",
                    "performance": perf,
                    "alert": {"consecutive": 1, "cooldown_seconds": 0},
                    # drift is computed but never alerted on: only performance triggers here
                    "thresholds": dict.fromkeys(DRIFT_THRESHOLDS),
                }
            },
        }
    )


@functools.cache  # one object: a profile's created_at is part of a checkpoint's fingerprint
def make_profile(seed: int = 0) -> ReferenceProfile:
    rng = np.random.default_rng(seed)
    return build_profile(
        "fraud",
        {"amount": rng.normal(size=2000), "prediction": rng.random(2000)},
        {"amount": FeatureKind.NUMERIC, "prediction": FeatureKind.NUMERIC},
    )


def prediction(i: int, score: float, ts: float, **extra: Any) -> bytes:
    event = {"model": "fraud", "id": f"r{i}", "ts": ts, "features": {"amount": 1.0}}
    event["prediction"] = score
    event.update(extra)
    return orjson.dumps(event)


def label(i: int, value: Any, ts: float) -> bytes:
    return orjson.dumps({"model": "fraud", "id": f"r{i}", "label": value, "ts": ts})


def scenario(n: int, seed: int, *, quality: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Scores and 0/1 labels; ``quality`` < 1 mixes in noise (a worse model)."""
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    y = (rng.random(n) < p).astype(int)
    noisy = rng.random(n) < (1 - quality)
    y[noisy] = rng.integers(0, 2, int(noisy.sum()))
    return p, y


def interleave(p: np.ndarray, y: np.ndarray, *, lag: int, early: Iterable[int] = ()) -> list[bytes]:
    """Predictions in order; the label of i comes ``lag`` messages later (event time + 30 s),
    except ids in ``early`` whose label comes before the prediction."""
    early = set(early)
    messages: list[bytes] = []
    for i in range(len(p)):
        if i in early:
            messages.append(label(i, int(y[i]), T0 + i))
        messages.append(prediction(i, float(p[i]), T0 + i))
        j = i - lag
        if j >= 0 and j not in early:
            messages.append(label(j, int(y[j]), T0 + j + 30))
    messages += [label(j, int(y[j]), T0 + j + 30) for j in range(max(0, len(p) - lag), len(p))]
    return [m for m in messages]


def join_order(messages: Sequence[bytes]) -> list[int]:
    """The order in which ids complete (both partners seen), from the raw messages."""
    seen: dict[str, set[str]] = {}
    order: list[int] = []
    for raw in messages:
        event = orjson.loads(raw)
        side = "label" if "label" in event and "prediction" not in event else "prediction"
        sides = seen.setdefault(event["id"], set())
        sides.add(side)
        if "label" in event and "prediction" in event:
            sides.add("label")
        if sides == {"label", "prediction"} and len(sides) == 2 and event["id"] not in order:
            order.append(int(event["id"][1:]))
    return order


def run(pipeline: Pipeline, messages: Sequence[bytes], batch: int = 97) -> BatchOutcome:
    total = BatchOutcome()
    for start in range(0, len(messages), batch):
        chunk = messages[start : start + batch]
        total.merge(pipeline.process(chunk, np.zeros(len(chunk))))
    return total


def sklearn_binary(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    pred = (p >= 0.5).astype(int)
    return {
        "accuracy": accuracy_score(y, pred),
        "f1": f1_score(y, pred),
        "roc_auc": roc_auc_score(y, p),
        "log_loss": log_loss(y, p, labels=[0, 1]),
    }


def test_label_events_join_in_either_order_and_match_sklearn() -> None:
    p, y = scenario(1000, seed=1)
    messages = interleave(p, y, lag=7, early=range(3, 1000, 50))
    pipeline = Pipeline(make_config(), {"fraud": make_profile()})
    outcome = run(pipeline, messages)

    assert outcome.rejected == []  # label events are not invalid events
    status = pipeline.monitors["fraud"].status()
    perf = status.performance
    assert perf is not None
    assert status.events_total == 1000  # label events never count as drift events
    assert pipeline.monitors["fraud"].window is not None
    assert perf.labels_total == perf.labels_joined_total == 1000
    assert perf.pending_predictions == perf.pending_labels == 0
    assert outcome.accepted["fraud"] - status.events_total == 1000  # the label events
    assert len([e for e in outcome.performance if e.kind == "realised"]) == 9

    last = join_order(messages)[-200:]
    expected = sklearn_binary(y[last], p[last])
    for metric, value in expected.items():
        assert perf.values[metric] == pytest.approx(value, rel=1e-12, abs=1e-12), metric
    # every pair is 30 s apart in event time, except the early labels (clamped at 0)
    assert sum(perf.delay_counts) == 1000
    assert perf.delay_counts[0] == 20  # le=1
    assert perf.delay_counts[2] == 980  # (10, 60]


def test_inline_labels_join_too() -> None:
    p, y = scenario(400, seed=2)
    messages = [prediction(i, float(p[i]), T0 + i, label=bool(y[i])) for i in range(len(p))]
    pipeline = Pipeline(make_config(), {"fraud": make_profile()})
    run(pipeline, messages)
    perf = pipeline.monitors["fraud"].status().performance
    assert perf is not None and perf.labels_joined_total == 400
    assert perf.values["roc_auc"] == pytest.approx(roc_auc_score(y[200:], p[200:]))


def test_label_events_stay_out_of_the_drift_windows_without_performance() -> None:
    config = validate_config(
        {
            "kafka": {"bootstrap_servers": "127.0.0.1:9092", "topics": ["ml.inference"]},
            "models": {
                "fraud": {
                    "reference": "/unused.json",
                    "window": {"events": 100, "slide": 50},
                    "features": {"amount": {"type": "numeric"}},
                    "prediction": {"type": "numeric"},
                }
            },
        }
    )
    pipeline = Pipeline(config, {"fraud": make_profile()})
    outcome = run(pipeline, [label(i, 1, T0) for i in range(10)] + [prediction(1, 0.5, T0)])
    assert outcome.rejected == []
    status = pipeline.monitors["fraud"].status()
    assert status.events_total == 1 and status.window_events == 1
    assert status.performance is None


def test_rejected_label_events_keep_their_index_and_reason() -> None:
    pipeline = Pipeline(make_config(), {"fraud": make_profile()})
    batch = [
        b'{"model": "fraud", "id": "a", "ts": "yesterday", "label": 1}',
        b'{"model": "fraud", "id": "b"}',
        b'[{"model": "fraud", "id": "c", "label": 0, "ts": 5}, {"model": "fraud"}]',
    ]
    outcome = pipeline.process(batch, np.zeros(3))
    found = sorted((r.index, str(r.reason), r.position) for r in outcome.rejected)
    assert [(i, reason) for i, reason, _ in found] == [
        (0, "bad_timestamp"),
        (1, "no_payload"),
        (2, "no_payload"),
    ]
    assert found[2][2] == 1
    perf = pipeline.monitors["fraud"].status().performance
    assert perf is not None and perf.pending_labels == 1
    assert list(outcome.model_messages["fraud"]) == [2]


def test_threshold_crossing_triggers_a_performance_event() -> None:
    good_p, good_y = scenario(400, seed=3)
    bad_p, bad_y = scenario(400, seed=4, quality=0.0)
    p, y = np.concatenate([good_p, bad_p]), np.concatenate([good_y, bad_y])
    config = make_config(thresholds={"roc_auc": {"min": 0.7}})
    pipeline = Pipeline(config, {"fraud": make_profile()})
    outcome = run(pipeline, interleave(p, y, lag=3))

    events = [p.drift_event for p in outcome.performance if p.drift_event is not None]
    assert len(events) == 1
    event = events[0]
    assert event.id.startswith("performance-realised-")
    assert event.model == "fraud"
    (crossed,) = event.extra["performance"]["crossed"]
    assert crossed["metric"] == "roc_auc" and crossed["rule"] == "min"
    assert crossed["to"] < 0.7 <= crossed["from"]
    window = event.extra["performance"]["window"]
    assert window["events"] == 200 and window["unit"] == "labelled_predictions"
    status = pipeline.monitors["fraud"].status()
    assert status.retrain_triggers == 1
    assert status.performance is not None and status.performance.alert_state == "firing"
    assert status.alert_state == "ok"  # the drift alert is a separate lifecycle


def checkpoint_roundtrip(pipeline: Pipeline) -> Pipeline:
    state = pipeline.monitors["fraud"].state(["ml.inference/0"])
    ckpt = decode_checkpoint(encode_checkpoint(Checkpoint("r", 0.0, {}, {"fraud": state})))
    restored = Pipeline(pipeline.config, {"fraud": make_profile()})
    restored.monitors["fraud"].restore(ckpt.models["fraud"])
    return restored


def test_checkpoint_resumes_the_join_exactly() -> None:
    p, y = scenario(900, seed=5)
    messages = interleave(p, y, lag=40)
    cut = len(messages) // 2
    straight = Pipeline(make_config(), {"fraud": make_profile()})
    run(straight, messages)

    first = Pipeline(make_config(), {"fraud": make_profile()})
    run(first, messages[:cut])
    before = first.monitors["fraud"].status().performance
    assert before is not None and before.pending_predictions > 0
    resumed = checkpoint_roundtrip(first)
    assert resumed.monitors["fraud"].status().performance == before
    run(resumed, messages[cut:])
    assert (
        resumed.monitors["fraud"].status().performance
        == straight.monitors["fraud"].status().performance
    )


def test_checkpoint_without_performance_state_is_refused() -> None:
    pipeline = Pipeline(make_config(), {"fraud": make_profile()})
    state = pipeline.monitors["fraud"].state([])
    state.scalars = {k: v for k, v in state.scalars.items() if not k.startswith("performance.")}
    state.arrays = {k: v for k, v in state.arrays.items() if not k.startswith("performance.")}
    with pytest.raises(CheckpointError):
        pipeline.monitors["fraud"].fresh().restore(state)


def reference(seed: int = 9, n: int = 4000) -> ReferencePerformance:
    from monitor.model.performance import performance_spec

    p, y = scenario(n, seed=seed)
    spec = performance_spec(make_config().models["fraud"], estimation=True)
    return ReferencePerformance.build(spec, p, y.astype(float))


def test_reference_changes_the_fingerprint_and_feeds_relative_thresholds() -> None:
    config = make_config(
        thresholds={"accuracy": {"max_drop": 0.05}},
        estimation={"window": {"events": 200, "slide": 100}},
    )
    ref = reference()
    with_ref = Pipeline(config, {"fraud": ModelReference(make_profile(), performance=ref)})
    other = Pipeline(config, {"fraud": ModelReference(make_profile(), performance=reference(10))})
    assert with_ref.monitors["fraud"].fingerprint != other.monitors["fraud"].fingerprint

    p, y = scenario(600, seed=11)
    run(with_ref, interleave(p, y, lag=5))
    perf = with_ref.monitors["fraud"].status().performance
    assert perf is not None
    assert perf.reference["accuracy"] == ref.values["accuracy"]
    assert set(perf.estimated) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert perf.estimated_alert_state == "ok"
    # calibrated on the same process, the estimate is close to what was realised
    assert perf.estimated["accuracy"] == pytest.approx(perf.values["accuracy"], abs=0.1)


def test_collector_renders_performance_from_model_state() -> None:
    config = make_config(join={"max_delay_seconds": 60, "max_pending": 100_000})
    pipeline = Pipeline(config, {"fraud": ModelReference(make_profile(), performance=reference())})
    p, y = scenario(300, seed=12)
    # an orphan prediction: never labelled, expired once event time is 60 s past it
    messages = [prediction(10_000, 0.5, T0), *interleave(p, y, lag=2)]
    run(pipeline, messages)
    registry = CollectorRegistry()
    registry.register(DriftCollector(pipeline.results))
    get = registry.get_sample_value
    perf = pipeline.monitors["fraud"].status().performance
    assert perf is not None
    labels = {"model": "fraud", "metric": "roc_auc"}
    assert get("driftmon_performance", labels) == perf.values["roc_auc"]
    assert get("driftmon_reference_performance", labels) == perf.reference["roc_auc"]
    assert get("driftmon_labels_total", {"model": "fraud"}) == 300
    assert get("driftmon_labels_joined_total", {"model": "fraud"}) == 300
    assert get("driftmon_join_pending", {"model": "fraud"}) == 0
    assert get("driftmon_join_evicted_total", {"model": "fraud", "reason": "expired"}) == 1
    assert get("driftmon_join_evicted_total", {"model": "fraud", "reason": "capacity"}) == 0
    assert get("driftmon_label_delay_seconds_count", {"model": "fraud"}) == 300
    assert get("driftmon_label_delay_seconds_bucket", {"model": "fraud", "le": "10.0"}) == 0
    assert get("driftmon_label_delay_seconds_bucket", {"model": "fraud", "le": "60.0"}) == 300
    assert get("driftmon_label_delay_seconds_sum", {"model": "fraud"}) == 300 * 30


def test_reference_performance_round_trips_through_the_profile_file(tmp_path: Path) -> None:
    ref = reference()
    path = tmp_path / "fraud.json"
    save_reference(path, make_profile(), ref)
    assert ReferenceProfile.load(path).features.keys() == {"amount", "prediction"}
    loaded = ReferenceFile(path).performance()
    assert loaded is not None and loaded.values == ref.values and loaded.events == ref.events
    assert loaded.estimator is not None

    # an old profile (no performance key) still loads; relative thresholds then fail clearly
    make_profile().save(tmp_path / "old.json")
    assert ReferenceFile(tmp_path / "old.json").performance() is None
    config = make_config(tmp_path / "old.json", thresholds={"accuracy": {"max_drop": 0.1}})
    with pytest.raises(ProfileError, match="driftmon baseline"):
        load_references(config)
    references = load_references(make_config(path))
    found = {n: r.performance for n, r in references.items() if r.performance is not None}
    assert found.keys() == {"fraud"} and found["fraud"].values == ref.values

    broken = json.loads(path.read_text())
    broken[PERFORMANCE_KEY] = {"values": "nope"}
    path.write_text(json.dumps(broken))
    with pytest.raises(ProfileError, match="invalid"):
        ReferenceFile(path).performance()


def test_baseline_pairs_inline_and_separate_labels(tmp_path: Path) -> None:
    p, y = scenario(3000, seed=13)
    lines = [prediction(i, float(p[i]), T0 + i, label=int(y[i])) for i in range(0, 3000, 2)]
    lines += [prediction(i, float(p[i]), T0 + i) for i in range(1, 3000, 2)]
    lines += [label(i, int(y[i]), T0 + i + 5) for i in range(1, 3000, 2)]
    source = tmp_path / "reference.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    profile, perf, rejected = build_reference(make_config(), "fraud", source)
    assert rejected.total == 0
    assert profile.features["amount"].n == 3000  # label events are not profiled
    assert perf is not None and perf.events == 3000
    assert perf.values["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert perf.estimator is not None  # calibrated even without an estimation section

    csv = tmp_path / "reference.csv"
    rows = ["amount,prediction,label"] + [f"1.0,{float(p[i])!r},{y[i]}" for i in range(3000)]
    csv.write_text("\n".join(rows) + "\n")
    _, from_csv, _ = build_reference(make_config(), "fraud", csv)
    assert from_csv is not None
    assert from_csv.values["accuracy"] == pytest.approx(accuracy_score(y, p >= 0.5))

    unlabelled = tmp_path / "unlabelled.jsonl"
    unlabelled.write_bytes(b"\n".join(lines[1500:3000]) + b"\n")
    _, none, _ = build_reference(make_config(), "fraud", unlabelled)
    assert none is None


def test_replay_writes_performance_records(tmp_path: Path) -> None:
    good_p, good_y = scenario(400, seed=14)
    bad_p, bad_y = scenario(400, seed=15, quality=0.0)
    p, y = np.concatenate([good_p, bad_p]), np.concatenate([good_y, bad_y])
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"\n".join(interleave(p, y, lag=3)) + b"\n")
    out = tmp_path / "report.jsonl"
    config = make_config(thresholds={"roc_auc": {"min": 0.7}})
    with out.open("wb") as handle:
        summary = replay(config, {"fraud": make_profile()}, source, handle)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    perf = [r for r in records if r["type"] == "performance"]
    drift = [r for r in records if r["type"] == "drift"]
    assert summary.performance_evaluations == len(perf) == 7
    assert summary.evaluations == len(drift) == 15
    assert summary.rejected == 0 and summary.triggers == 1
    fired = [r for r in perf if r["triggered"]]
    assert len(fired) == 1 and fired[0]["event_id"].startswith("performance-realised-")
    assert fired[0]["crossed"][0]["metric"] == "roc_auc"
    assert fired[0]["kind"] == "realised" and fired[0]["window"]["events"] == 200
    assert all(math.isfinite(r["values"]["accuracy"]) for r in perf)
