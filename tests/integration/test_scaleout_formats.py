"""Scale-out with a model server's own log: KServe's halves paired by the model's owner.

KServe's InferenceLogger writes each request and its response as separate unkeyed
binary-mode CloudEvents; here every response goes to a DIFFERENT partition of a
4-partition topic than its request, so with two replicas the two halves of an inference
usually reach different stage-1 replicas. Stage 1 decodes them in the topic's format with
the string limits applied (a hostile inference with an over-long CloudEvent id is rejected,
a long category cut, as in one process) and sends them raw; the model's owner pairs them.
Every pair is joined exactly once, by the owner only, and the evaluation equals
``driftmon replay`` of the same CloudEvents (structured mode, as captured to a file)
sorted by event time.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from monitor.app.accounting import BatchAccounting
from monitor.app.replay import evaluation_record, replay
from monitor.app.scaleout.stage1 import Stage1
from monitor.app.scaleout.topics import KIND
from monitor.app.scaleout.topics import ROWS as ROW_BATCH
from monitor.config import load_config, validate_config
from monitor.ingest.decode.columns import REQUEST, RESPONSE
from monitor.ingest.decode.limits import MAX_CATEGORY_CHARS, MAX_ID_CHARS
from monitor.model.reference_file import load_references
from monitor.pipeline import Pipeline
from monitor.scaleout.codec import decode_rows
from tests.integration.daemon_harness import SECRET, SECRET_ENV, write_reference
from tests.integration.scaleout_harness import create_internal_topics, write_config
from tests.integration.test_formats_e2e import FEATURES, inferences
from tests.support.daemon import RunningDaemon
from tests.support.kafka import consumer_config
from tests.support.payloads import kserve_record
from tests.support.wait import wait_until

pytestmark = pytest.mark.integration

PARTITIONS = 4
ROWS = 8  # rows per inference (test_formats_e2e.inferences)
INFERENCES = 250
T0 = 1_764_150_000.0


def cloud_events(structured: bool) -> list[tuple[float, int, bytes, list[tuple[str, bytes]]]]:
    """``(event time, partition, value, headers)`` of every half: a request on partition
    ``k % 4``, its response 0.05 s later on another one. The last inference is hostile: an
    over-long CloudEvent id (both halves rejected) and a 1,000-character category (cut)."""
    out = []
    items = list(inferences(INFERENCES * ROWS, seed=3))
    for k, (inputs, scores) in enumerate(items):
        hostile = k == len(items) - 1
        ce_id = ("x" * 400) if hostile else str(uuid.uuid4())
        if k == len(items) - 2:
            inputs = {**inputs, FEATURES[-1]: ("BYTES", ["c" * 1000] * ROWS)}
        request = {
            "instances": [list(r) for r in zip(*(inputs[f][1] for f in FEATURES), strict=True)]
        }
        t = T0 + k * 0.1
        part = k % PARTITIONS
        for body, at, is_request, p in (
            (request, t, True, part),
            ({"predictions": scores}, t + 0.05, False, (part + 1 + k % 3) % PARTITIONS),
        ):
            when = datetime.fromtimestamp(at, UTC)
            value, headers = kserve_record(
                body, ce_id, request=is_request, structured=structured, time=when
            )
            out.append((at, p, value, headers))
    return out


def configure(tmp_path: Path, base: Path, topic: str) -> Path:
    """One model over a KServe topic, one window over every paired row (so its evaluation
    is the set of rows, whatever order pairs complete in)."""
    doc = yaml.safe_load(base.read_text())
    doc["kafka"]["topics"] = [{"name": topic, "format": "kserve"}]
    model = doc["models"]["fraud"]
    rows = (INFERENCES - 1) * ROWS  # the hostile inference is rejected
    model["window"] = {"events": rows, "slide": rows}
    doc["models"] = {"fraud": model}
    path = tmp_path / "driftmon-kserve.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def replayed(config: Path, topic: str) -> tuple[list[dict[str, Any]], int]:
    """``driftmon replay`` of the structured CloudEvents sorted by event time: its records
    and the events it rejected."""
    halves = sorted(cloud_events(structured=True), key=lambda e: e[0])
    path = config.parent / "kserve.jsonl"
    path.write_bytes(b"\n".join(value for _, _, value, _ in halves) + b"\n")
    out = config.parent / "replay.jsonl"
    conf = load_config(config)
    with out.open("wb") as handle:
        summary = replay(conf, load_references(conf, config.parent), path, handle, topic=topic)
    return [orjson.loads(line) for line in out.read_bytes().splitlines()], summary.rejected


def produce_halves(bootstrap: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for _, partition, value, headers in cloud_events(structured=False):
        producer.produce(topic, value, partition=partition, headers=headers)
        producer.poll(0)
    assert producer.flush(30) == 0


def raw_strings(bootstrap: str, group: str) -> tuple[set[int], int, int]:
    """What stage 1 sent on ``<group>.rows``: the half kinds, the longest category and the
    longest row id of its raw rows (assigned, no group join)."""
    consumer = Consumer(consumer_config(bootstrap))
    rows_topic = f"{group}.rows"
    consumer.assign([TopicPartition(rows_topic, p, OFFSET_BEGINNING) for p in range(4)])
    kinds: set[int] = set()
    longest_category = longest_id = 0
    deadline, seen = time.monotonic() + 10.0, False
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(500, 1.0)
            if not batch and seen:
                break
            seen = seen or bool(batch)
            for msg in batch:
                if (KIND, ROW_BATCH) not in (msg.headers() or []):
                    continue
                raw = decode_rows(msg.value() or b"").raw
                assert raw is not None and raw.halves is not None and raw.tables is not None
                kinds.update(raw.halves.tolist())
                strings = [len(v) for table in raw.tables for v in table]
                longest_category = max([longest_category, *strings])
                longest_id = max([longest_id, *(len(i or "") for i in raw.ids)])
    finally:
        consumer.close()
    return kinds, longest_category, longest_id


def test_kserve_halves_on_different_partitions_pair_once_in_the_owner(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic, webhook_receiver, env
) -> None:
    env.set(SECRET_ENV, SECRET)
    topic = kafka_topic(partitions=PARTITIONS)
    group = f"{topic}-g"
    create_internal_topics(kafka_bootstrap, group)
    reference = write_reference(tmp_path)
    base = write_config(tmp_path, kafka_bootstrap, topic, group, reference, webhook_receiver.url)
    config = configure(tmp_path, base, topic)
    expected, rejected = replayed(config, topic)
    assert len(expected) == 1 and rejected == 2  # the hostile request and response
    produce_halves(kafka_bootstrap, topic)
    replicas = [RunningDaemon(config, daemon_kwargs={"replica_id": n}) for n in ("a", "b")]
    for replica in replicas:
        replica.start()
    try:

        def got() -> list[dict[str, Any]]:
            found = [evaluation_record(e) for r in replicas for e in r.evaluations]
            return orjson.loads(orjson.dumps(found))

        wait_until(lambda: len(got()) >= 1, 25, "the evaluation over every pair")
        assert got() == expected
        [owner] = [r for r in replicas if r.daemon.results.get("fraud")]
        [other] = [r for r in replicas if r is not owner]
        pairs = (INFERENCES - 1) * ROWS
        assert owner.metric("driftmon_pairing_paired_total", model="fraud") == pairs
        assert other.metric("driftmon_pairing_paired_total", model="fraud") is None
        for half in ("request", "response"):
            for reason in ("expired", "capacity", "duplicate", "no_id"):
                labels = {"model": "fraud", "half": half, "reason": reason}
                assert not owner.metric("driftmon_pairing_unpaired_total", **labels)
            assert owner.metric("driftmon_pairing_pending", model="fraud", half=half) == 0.0
        # the hostile halves were rejected by stage 1, wherever they were read
        too_long = [r.metric("driftmon_invalid_events_total", reason="too_long") for r in replicas]
        assert sum(v or 0.0 for v in too_long) == 2
        # stage 1 sent halves, never pairs; the long category cut, no over-long id
        kinds, longest_category, longest_id = raw_strings(kafka_bootstrap, group)
        assert kinds == {REQUEST, RESPONSE}
        assert longest_category == MAX_CATEGORY_CHARS and longest_id <= MAX_ID_CHARS
        # both replicas read source partitions: the halves did part
        assert all(r.daemon.scaleout and r.daemon.scaleout.stage1.source.assigned_partitions
                   for r in replicas)  # fmt: skip
    finally:
        for replica in replicas:
            replica.stop()


def test_a_versioned_model_whose_halves_its_owner_pairs_travels_raw_from_stage_1(
    kafka_bootstrap: str, kafka_topic
) -> None:
    # Stage 1 bins a versioned model's rows per version, but halves must reach the owner
    # with their values (their other half is unknown until paired): no grids, raw rows.
    topic = kafka_topic(partitions=1)
    group = f"{topic}-g"
    create_internal_topics(kafka_bootstrap, group)
    conf = validate_config(
        {
            "kafka": {
                "bootstrap_servers": kafka_bootstrap,
                "group_id": group,
                "scale_out": {"enabled": True},
                "topics": [{"name": topic, "model": "fraud", "format": "oip"}],
            },
            "models": {
                "fraud": {
                    "reference": {"capture_events": 200},
                    "versions": {"on_new_version": "capture", "capture_events": 200},
                    "window": {"events": 100, "slide": 50},
                    "features": {"age": {"type": "numeric"}},
                    "prediction": {"type": "numeric"},
                }
            },
        }
    )
    assert conf.kafka is not None
    stage1 = Stage1(
        conf,
        conf.kafka,
        Pipeline(conf, {}),
        cast(BatchAccounting, None),  # not used before a batch arrives
        on_assign=lambda pairs: None,
        on_revoke=lambda: None,
        on_lag=lambda topic, partition, lag: None,
        on_condition=lambda *args, **kwargs: None,
    )
    try:
        assert stage1.paired == {"fraud"}
        assert "fraud" not in stage1.grids and stage1.codecs["fraud"] is None
        assert stage1.sends("fraud") == "raw"
    finally:
        stage1.close()
