"""Fault 4 of issue 6: the state directory stops accepting writes, then recovers.

Root ignores file permissions and there is no tiny tmpfs to fill here, so the test makes
the checkpoints path unwritable another way: it moves ``<state>/checkpoints`` aside and
puts a regular *file* in its place. Every checkpoint write then fails inside
``mkdir``/``open`` with an ``OSError`` (``File exists`` / ``Not a directory``), which is
exactly the code path of a full disk (``ENOSPC``) or a read-only remount (``EROFS``):
``CheckpointStore.save`` turns any ``OSError`` into a ``CheckpointError``. Putting the
directory back makes the path writable again.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from monitor.demo import synthetic
from tests.integration.daemon_harness import checkpointed, events, write_config, write_reference
from tests.support.daemon import RunningDaemon
from tests.support.kafka import consumer_config, produce
from tests.support.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BEFORE = 4_000
DURING = 3_000


def committed(bootstrap: str, group: str, topic: str) -> int:
    """The group's committed offset of partition 0 (read without joining the group)."""
    consumer = Consumer(consumer_config(bootstrap, group))
    try:
        (tp,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return int(tp.offset)
    finally:
        consumer.close()


def test_unwritable_state_dir_pauses_without_committing_and_resumes(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="monitor")
    topic = kafka_topic(partitions=1)
    group = f"{topic}-g"
    state = tmp_path / "state"
    config = write_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        group=group,
        reference=write_reference(tmp_path),
        extra_kafka="  batch_max_messages: 500\n",
        extra=f"state: {{dir: {state}, checkpoint_interval_seconds: 0.5}}\n",
    )
    produce(kafka_bootstrap, topic, events(BEFORE, seed=21), key=synthetic.MODEL)
    with RunningDaemon(config) as run:
        wait_until(lambda: run.events_total >= BEFORE, 60, "first events consumed")
        wait_until(lambda: checkpointed(state, topic) == BEFORE, 15, "checkpoint covers them")
        wait_until(lambda: committed(kafka_bootstrap, group, topic) == BEFORE, 15, "committed")
        assert run.metric("driftmon_checkpoint_failures_total") == 0.0

        # Break the state directory: the checkpoints path becomes a regular file.
        ckpt_dir = state / "checkpoints"
        aside = state / "checkpoints.aside"
        ckpt_dir.rename(aside)
        ckpt_dir.write_text("not a directory\n")
        produce(
            kafka_bootstrap,
            topic,
            events(DURING, seed=22, start_ts=1_764_160_000.0, id_offset=BEFORE),
            key=synthetic.MODEL,
        )
        wait_until(
            lambda: (run.metric("driftmon_checkpoint_failures_total") or 0) >= 1, 30, "failure"
        )
        readyz = run.get("/readyz")
        assert readyz.status_code == 503
        body = readyz.json()
        assert body["conditions"]["state_dir_writable"] is False
        (reason,) = [r for r in body["reasons"] if r.startswith("state_dir_writable")]
        assert "cannot write checkpoint" in reason
        errors = [
            r for r in caplog.records if r.levelno >= logging.ERROR and "checkpoint" in r.message
        ]
        assert errors, "no error logged"
        assert "consumption paused" in errors[0].getMessage()
        assert "cannot write checkpoint" in str(getattr(errors[0], "error", ""))

        # Paused: nothing more is consumed, nothing is committed past the last durable
        # checkpoint, and failures keep being counted while retried.
        failures = run.metric("driftmon_checkpoint_failures_total") or 0
        seen = run.events_total
        time.sleep(3.0)
        assert run.events_total == seen
        assert committed(kafka_bootstrap, group, topic) == BEFORE
        assert (run.metric("driftmon_checkpoint_failures_total") or 0) > failures
        assert len(errors) == len(
            [r for r in caplog.records if r.levelno >= logging.ERROR and "checkpoint" in r.message]
        ), "the error is logged once per episode, not on every retry"

        # Writable again: consumption resumes and every event is counted exactly once.
        ckpt_dir.unlink()
        aside.rename(ckpt_dir)
        wait_until(lambda: run.events_total >= BEFORE + DURING, 60, "the rest consumed")
        wait_until(lambda: run.get("/readyz").status_code == 200, 15, "ready again")
        wait_until(
            lambda: committed(kafka_bootstrap, group, topic) == BEFORE + DURING, 15, "committed"
        )
        time.sleep(1.0)
        assert run.events_total == BEFORE + DURING
        assert run.metric("driftmon_events_total", model="fraud") == BEFORE + DURING
        assert checkpointed(state, topic) == BEFORE + DURING
    assert any("consumption resumes" in r.getMessage() for r in caplog.records)
    shutil.rmtree(state, ignore_errors=True)
