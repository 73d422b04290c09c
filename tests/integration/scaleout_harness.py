"""Scale-out test set-up: two models spread over six partitions, internal topics, replay.

The events of two models (``fraud`` and ``fraud2``, the synthetic model under two names),
drifted in their second half, go to random partitions of one six-partition topic: each
partition holds its events in event-time order, the partitions interleave. What the
replicas evaluate must equal ``driftmon replay`` of the same events sorted by event time.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import yaml

from monitor.app.replay import evaluation_record, replay
from monitor.config import load_config
from monitor.demo.synthetic import MODEL, model_config_yaml
from monitor.model.reference_file import load_references
from tests.integration.daemon_harness import events, retrain_webhook_yaml, write_reference
from tests.support.kafka import create_topic, produce

MODELS = (MODEL, "fraud2")
SOURCE_PARTITIONS = 6
ROWS_PARTITIONS = 4
PER_MODEL = 6_000  # 3,000 stationary, then 3,000 drifted: window 2,000, slide 500


def model_events(model: str, index: int) -> list[bytes]:
    start = 1_764_150_000.0 + index * 0.005  # the two models' event times never tie
    half = PER_MODEL // 2
    calm = events(half, seed=11 + index, start_ts=start)
    drifted = events(half, seed=21 + index, drift=True, start_ts=start + half * 0.01)
    return [orjson.dumps({**orjson.loads(m), "model": model}) for m in calm + drifted]


def all_events() -> list[bytes]:
    """Both models' events in event-time order (so every part of the stream has both)."""
    merged = [m for i, model in enumerate(MODELS) for m in model_events(model, i)]
    return sorted(merged, key=lambda m: orjson.loads(m)["ts"])


def write_config(
    directory: Path, bootstrap: str, topic: str, group: str, reference: Path, webhook: str
) -> Path:
    text = (
        "kafka:\n"
        f"  bootstrap_servers: {bootstrap}\n"
        f"  group_id: {group}\n"
        f"  topics: [{topic}]\n"
        # Tansu accepts short sessions: a dead member expires in ~2 s, joins take ~1 s.
        "  consumer: {session.timeout.ms: 2000, heartbeat.interval.ms: 500, "
        "statistics.interval.ms: 1000}\n"
        "  poll_timeout_seconds: 0.2\n"
        "  batch_max_messages: 500\n"
        "  scale_out: {enabled: true, allowed_lateness_seconds: 2, idle_seconds: 1, "
        "checkpoint_interval_seconds: 0.5}\n"
        "http: {host: 127.0.0.1, port: 0}\n"
        "models:\n" + model_config_yaml(str(reference), events=2000, slide=500)
    )
    text += retrain_webhook_yaml(webhook)
    doc = yaml.safe_load(text)
    model = doc["models"][MODEL]
    model["thresholds"].update({"ks_p_value": 1e-6, "chi2_p_value": 1e-6})
    doc["models"] = {name: copy.deepcopy(model) for name in MODELS}
    path = directory / "driftmon.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def create_internal_topics(bootstrap: str, group: str) -> None:
    create_topic(bootstrap, f"{group}.rows", ROWS_PARTITIONS)
    create_topic(bootstrap, f"{group}.checkpoints", 1)
    create_topic(bootstrap, f"{group}.profiles", 1)


def scaled_out(
    directory: Path, bootstrap: str, kafka_topic: Callable[..., str], webhook: str
) -> tuple[str, str, Path, Path]:
    """A six-partition source topic, its group's internal topics, the reference profile
    and the scale-out config: ``(topic, group, reference, config)``."""
    topic = kafka_topic(partitions=6)
    group = f"{topic}-g"
    create_internal_topics(bootstrap, group)
    reference = write_reference(directory)
    return (
        topic,
        group,
        reference,
        write_config(directory, bootstrap, topic, group, reference, webhook),
    )


def produce_spread(bootstrap: str, topic: str, messages: list[bytes], seed: int = 5) -> None:
    """Each message to a random partition, in order (KServe's unkeyed logger)."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, SOURCE_PARTITIONS, len(messages))
    for p in range(SOURCE_PARTITIONS):
        produce(bootstrap, topic, [m for m, t in zip(messages, target, strict=True) if t == p],
                partition=p)  # fmt: skip


def replayed(config: Path, messages: list[bytes]) -> dict[str, list[dict[str, object]]]:
    """``driftmon replay`` of the events sorted by event time: its records per model."""
    ordered = sorted(messages, key=lambda m: orjson.loads(m)["ts"])
    path = config.parent / "sorted.jsonl"
    path.write_bytes(b"\n".join(ordered) + b"\n")
    out = config.parent / "replay.jsonl"
    conf = load_config(config)
    with out.open("wb") as handle:
        replay(conf, load_references(conf, config.parent), path, handle)
    records: dict[str, list[dict[str, object]]] = {m: [] for m in MODELS}
    for line in out.read_bytes().splitlines():
        record = orjson.loads(line)
        records[record["model"]].append(record)
    return records


def records_of(evaluations: list[object]) -> dict[str, list[dict[str, object]]]:
    records: dict[str, list[dict[str, object]]] = {m: [] for m in MODELS}
    for evaluation in evaluations:
        record = orjson.loads(orjson.dumps(evaluation_record(evaluation)))  # type: ignore[arg-type]
        records[record["model"]].append(record)
    for model in records:
        records[model].sort(key=lambda r: r["slide"])  # type: ignore[arg-type, return-value]
    return records


# -- raw rows: a model with versions and a captured reference, one with a performance join

RAW_MODELS = ("versioned", "perf")
RAW_PER_MODEL = 3_000


def raw_model_events() -> list[bytes]:
    """``versioned``: versions v1 (configured), v2 (captured) and none (the captured default
    reference) in turn, drifted in the second half; ``perf``: predictions, then each label
    as its own event 30.5 s later, the labels turned against the scores in the second half
    (its ROC AUC falls). Event-time order."""
    out = []
    half = RAW_PER_MODEL // 2
    base = 1_764_150_000.0
    for i, raw in enumerate(
        events(half, seed=31, start_ts=base)
        + events(half, seed=32, drift=True, start_ts=base + half * 0.01)
    ):
        event = orjson.loads(raw)
        event["model"] = "versioned"
        version = ("v1", "v2", None)[i % 3]
        if version is not None:
            event["version"] = version
        out.append(orjson.dumps(event))
    rng = np.random.default_rng(7)
    for i, raw in enumerate(events(RAW_PER_MODEL, seed=33, start_ts=base + 0.003)):
        event = orjson.loads(raw)
        event["model"], event["id"] = "perf", f"p{i}"
        out.append(orjson.dumps(event))
        y = int(rng.random() < event["prediction"])
        label = 1 - y if i >= half else y
        out.append(orjson.dumps({"model": "perf", "id": f"p{i}", "label": label,
                                 "ts": event["ts"] + 30.5}))  # fmt: skip
    return sorted(out, key=lambda m: orjson.loads(m)["ts"])


def write_raw_config(directory: Path, config: Path, reference: Path) -> Path:
    """The scale-out config of :func:`write_config` with the two raw-row models."""
    doc = yaml.safe_load(config.read_text())
    model = doc["models"][MODEL]
    versioned = copy.deepcopy(model)
    versioned.update(
        reference={"capture_events": 300},
        window={"events": 300, "slide": 150},
        versions={"references": {"v1": str(reference)}, "capture_events": 300},
    )
    perf = copy.deepcopy(model)
    perf.update(
        window={"events": 1000, "slide": 500},
        task="binary_classification",
        performance={
            "window": {"events": 400, "slide": 200},
            "thresholds": {"roc_auc": {"min": 0.7}},
        },
    )
    doc["models"] = {"versioned": versioned, "perf": perf}
    path = directory / "driftmon-raw.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def replay_records(config: Path, messages: list[bytes]) -> list[dict[str, object]]:
    """Every record ``driftmon replay`` writes for the events sorted by event time."""
    ordered = sorted(messages, key=lambda m: orjson.loads(m)["ts"])
    path = config.parent / "sorted-raw.jsonl"
    path.write_bytes(b"\n".join(ordered) + b"\n")
    out = config.parent / "replay-raw.jsonl"
    conf = load_config(config)
    with out.open("wb") as handle:
        replay(conf, load_references(conf, config.parent), path, handle)
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]
