"""Scale-out on the test broker: three replicas give exactly one process's answer.

Three replicas (in this process, so every evaluation can be collected) run both stages
over one six-partition topic carrying two models' events spread over every partition.
Every evaluation (scores, p-values, flags, alert states, event ids, window bounds) equals
``driftmon replay`` of the same events sorted by event time, to the bit, and the webhook
receiver gets exactly one delivery per episode across all replicas.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from monitor.app.replay import evaluation_record
from tests.integration.daemon_harness import SECRET, SECRET_ENV, write_reference
from tests.integration.scaleout_harness import (
    MODELS,
    PER_MODEL,
    RAW_PER_MODEL,
    all_events,
    produce_spread,
    raw_model_events,
    records_of,
    replay_records,
    replayed,
    scaled_out,
    write_config,
    write_raw_config,
)
from tests.support.daemon import RunningDaemon
from tests.support.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def shares(replicas: list[RunningDaemon]) -> tuple[list[int], int]:
    """Source partitions per replica (stage 1), internal partitions owned in all (stage 2)."""
    stage1, stage2 = [], 0
    for r in replicas:
        scaleout = r.daemon.scaleout
        if scaleout is None:
            return [], 0
        stage1.append(len(scaleout.stage1.source.assigned_partitions))
        stage2 += len(scaleout.stage2.owned)
    return sorted(stage1), stage2


def test_three_replicas_equal_a_replay_sorted_by_event_time(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic, webhook_receiver, env
) -> None:
    env.set(SECRET_ENV, SECRET)
    topic, group, _, config = scaled_out(
        tmp_path, kafka_bootstrap, kafka_topic, webhook_receiver.url
    )
    messages = all_events()
    expected = replayed(config, messages)
    assert all(expected[m] for m in MODELS)
    assert any(r["triggered"] for m in MODELS for r in expected[m])
    # Produced before the replicas start: a source partition is reported idle only once
    # caught up, so none stops holding the watermark while the test is still producing
    # (produced after the groups settled, every partition was idle and the first one
    # produced let the watermark pass rows the others had not sent yet, which were then
    # applied in arrival order). The replicas join one after the other and share the
    # partitions through cooperative rebalances, deduplicating what a handover repeats.
    produce_spread(kafka_bootstrap, topic, messages)
    replicas = [
        RunningDaemon(config, daemon_kwargs={"replica_id": name}) for name in ("a", "b", "c")
    ]
    for replica in replicas:
        replica.start()
    try:

        def evaluations() -> list[object]:
            return [e for r in replicas for e in r.evaluations]

        def done() -> bool:
            got = records_of(evaluations())
            return all(len(got[m]) >= len(expected[m]) for m in MODELS)

        wait_until(done, 90, "every evaluation of the replay")
        got = records_of(evaluations())
        for model in MODELS:
            assert got[model] == expected[model], model
        owners = {
            m: [r.daemon.replica_id for r in replicas if r.daemon.results.get(m)] for m in MODELS
        }
        assert all(len(o) == 1 for o in owners.values()), owners
        wait_until(lambda: shares(replicas) == ([2, 2, 2], 4), 60, "stable groups")
        for model in MODELS:  # metrics and /status: one owner, every row applied once
            owner = [r.metric("driftmon_model_owner", model=model) for r in replicas]
            assert sorted(owner) == [0.0, 0.0, 1.0], (model, owner)
            [doc] = [r.get("/status").json() for r in replicas if r.daemon.results.get(model)]
            assert model in doc["scale_out"]["owned_models"] and model in doc["models"]
            assert doc["scale_out"]["models"][model]["rows"]["applied"] == PER_MODEL
            assert doc["scale_out"]["models"][model]["rows"]["late"] == 0
            assert doc["models"][model]["evaluations"] == len(expected[model])
        triggered = [r["event_id"] for m in MODELS for r in expected[m] if r["triggered"]]
        wait_until(lambda: len(webhook_receiver.requests) >= len(triggered), 30, "webhooks")
        received = [req.json()["id"] for req in webhook_receiver.requests]
        assert sorted(received) == sorted(triggered)  # one delivery per episode, no more
    finally:
        for replica in replicas:
            replica.stop()


def drift_records(records: list[dict[str, object]]) -> list[dict[str, object]]:
    drift = [r for r in records if r["type"] == "drift"]
    return sorted(drift, key=lambda r: (str(r["model"]), str(r.get("version")), r["slide"]))  # type: ignore[arg-type]


def test_versions_a_captured_reference_and_the_join_equal_a_replay(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic, webhook_receiver, env
) -> None:
    """A model with versions over a captured default reference (raw rows) and one with a
    performance join (binned rows carrying the join's values), on two replicas, equal the
    replay sorted by event time."""
    env.set(SECRET_ENV, SECRET)
    topic, group, reference, base = scaled_out(
        tmp_path, kafka_bootstrap, kafka_topic, webhook_receiver.url
    )
    config = write_raw_config(tmp_path, base, reference)
    messages = raw_model_events()
    records = replay_records(config, messages)
    expected = drift_records(records)
    versions = {(r["model"], r.get("version")) for r in expected}
    assert versions == {("versioned", None), ("versioned", "v1"), ("versioned", "v2"),
                        ("perf", None)}  # fmt: skip
    triggered = sorted(str(r["event_id"]) for r in records if r["triggered"])
    assert any(r["type"] == "performance" and r["triggered"] for r in records)
    assert any(r["type"] == "drift" and r["triggered"] for r in records)
    # Produced before the replicas start: a source partition is reported idle only once
    # caught up, so none stops holding the watermark while the test is still producing
    # (rows behind a watermark an idle source let pass are applied in arrival order).
    produce_spread(kafka_bootstrap, topic, messages)
    replicas = [RunningDaemon(config, daemon_kwargs={"replica_id": n}) for n in ("a", "b")]
    for replica in replicas:
        replica.start()
    try:

        def got() -> list[dict[str, object]]:
            found = [evaluation_record(e) for r in replicas for e in r.evaluations]
            return drift_records(orjson.loads(orjson.dumps(found)))

        wait_until(lambda: len(got()) >= len(expected), 90, "every evaluation of the replay")
        assert got() == expected
        wait_until(lambda: len(webhook_receiver.requests) >= len(triggered), 30, "webhooks")
        received = sorted(req.json()["id"] for req in webhook_receiver.requests)
        assert received == triggered  # drift and performance episodes, once each
        [owner] = [r for r in replicas if r.daemon.results.get("perf")]

        def joined() -> int:
            return int(
                owner.get("/status").json()["models"]["perf"]["performance"]["labels_joined_total"]
            )

        # The last labels wait for the watermark until the sources are reported idle.
        wait_until(lambda: joined() == RAW_PER_MODEL, 30, "every label joined")
        doc = owner.get("/status").json()
        assert doc["scale_out"]["models"]["perf"]["rows"]["applied"] == 2 * RAW_PER_MODEL
        assert doc["scale_out"]["models"]["perf"]["sends"] == "binned"
        realised = [r for r in records if r["type"] == "performance" and r["kind"] == "realised"]
        assert doc["models"]["perf"]["performance"]["values"] == realised[-1]["values"]
    finally:
        for replica in replicas:
            replica.stop()


def test_a_missing_internal_topic_is_named_and_not_created(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic
) -> None:
    topic = kafka_topic(partitions=2)
    group = f"{topic}-g"  # its .rows and .checkpoints topics do not exist
    config = write_config(
        tmp_path, kafka_bootstrap, topic, group, write_reference(tmp_path), "http://127.0.0.1:9/"
    )
    run = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, SECRET_ENV: SECRET},
    )
    assert run.returncode == 1
    assert f"topics '{group}.rows', '{group}.checkpoints' do not exist" in run.stderr
    assert "kafka.scale_out.enabled: false" in run.stderr and "Traceback" not in run.stderr
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    assert f"{group}.rows" not in admin.list_topics(timeout=10).topics  # not auto-created


def test_a_group_holding_replicas_without_scale_out_is_named_with_the_fix(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic
) -> None:
    _topic, group, _reference, config = scaled_out(
        tmp_path, kafka_bootstrap, kafka_topic, "http://127.0.0.1:9/"
    )
    # A replica without scale-out (librdkafka's default, eager assignors) holds the group,
    # as in a rolling update that turns scale_out on.
    member = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": group, "session.timeout.ms": 6000}
    )
    member.subscribe([_topic])
    wait_until(lambda: member.poll(0.2) or member.assignment(), 30, "old member assigned")
    try:
        run = subprocess.run(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)]
            + ["--max-seconds", "8"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, SECRET_ENV: SECRET},
        )
    finally:
        member.close()
    assert run.returncode == 0 and "Traceback" not in run.stderr
    said = [line for line in run.stderr.splitlines() if "refuses this replica" in line]
    assert said, run.stderr
    assert " ERROR " in said[0] and f"consumer group '{group}' (kafka.group_id)" in said[0]
    assert "stop every replica before switching kafka.scale_out" in said[0]
    assert "Inconsistent group protocol" not in run.stderr  # librdkafka's words kept back
