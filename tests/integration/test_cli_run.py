"""`driftmon run` as a process, and `driftmon replay` against the live daemon."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from monitor.app.replay import evaluation_record
from monitor.demo import synthetic
from tests.integration.daemon_harness import events, write_config, write_reference
from tests.support.daemon import DaemonProcess, RunningDaemon
from tests.support.kafka import consumer_config, produce
from tests.support.net import free_port
from tests.support.wait import wait_until
from tests.support.yaml_edit import edit_yaml_file

pytestmark = pytest.mark.integration


def test_sigterm_finishes_the_batch_commits_and_exits_zero(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic
) -> None:
    topic = kafka_topic(partitions=2)
    group = f"{topic}-g"
    port = free_port()
    config = write_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        group=group,
        reference=write_reference(tmp_path),
    )
    edit_yaml_file(config, (("http", "port"), port))
    total = 6000
    produce(kafka_bootstrap, topic, events(total, seed=8), key=synthetic.MODEL)
    daemon = DaemonProcess(config)
    try:
        wait_until(
            lambda: (daemon.metric("driftmon_events_total", model="fraud") or 0.0) >= total,
            90,
            "daemon consumed the topic",
        )
        assert daemon.get("/readyz", timeout=2).status_code == 200
        started = time.monotonic()
        code = daemon.terminate(20)
        elapsed = time.monotonic() - started
    finally:
        daemon.kill()
    output = daemon.log_text()
    assert code == 0, output
    assert elapsed < 10, f"shutdown took {elapsed:.1f} s"
    assert "Traceback" not in output

    consumer = Consumer(consumer_config(kafka_bootstrap, group_id=group))
    committed = consumer.committed([TopicPartition(topic, p) for p in range(2)], timeout=10)
    consumer.close()
    # Keyed by model, every event is on one partition; the other has no commit (-1001).
    assert sum(max(0, tp.offset) for tp in committed) == total


def test_replay_matches_the_daemon_on_the_same_events(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic
) -> None:
    topic = kafka_topic(partitions=1)
    config = write_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        group=f"{topic}-g",
        reference=write_reference(tmp_path),
    )
    stream = events(6000, seed=9) + events(6000, seed=10, drift=True, start_ts=1_764_160_000.0)
    produce(kafka_bootstrap, topic, stream)
    with RunningDaemon(config) as run:
        wait_until(lambda: run.events_total >= len(stream), 60, "all events consumed")
        live = [orjson.loads(orjson.dumps(evaluation_record(e))) for e in run.evaluations]

    events_file = tmp_path / "events.jsonl"
    events_file.write_bytes(b"\n".join(stream) + b"\n")
    report = tmp_path / "report.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "replay",
            "--config",
            str(config),
            "--input",
            str(events_file),
            "--output",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    replayed = [orjson.loads(line) for line in report.read_bytes().splitlines()]
    assert len(replayed) == len(live) == 9
    assert replayed == live
    assert any(r["triggered"] for r in replayed)
