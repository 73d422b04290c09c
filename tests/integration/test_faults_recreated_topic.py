"""A topic deleted and created again while the daemon was stopped (hardening, item 5).

Before, the restarted daemon sought to the checkpoint's offset of the old topic: of 3,000
new events it counted the last 1,000, said nothing, and reported ready with lag 0. The
checkpoint now keeps the topic's id next to its offsets; a new id means a new topic,
read from the beginning, logged and counted.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from monitor.demo import synthetic
from tests.integration.daemon_harness import events, write_config, write_reference
from tests.support.daemon import DaemonProcess
from tests.support.kafka import create_topic, delete_topics, produce
from tests.support.net import free_port
from tests.support.wait import wait_until
from tests.support.yaml_edit import edit_yaml_file

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_recreated_topic_is_read_from_the_beginning(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic
) -> None:
    topic = kafka_topic(partitions=1)
    http_port = free_port()
    config = write_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        group=f"{topic}-g",
        reference=write_reference(tmp_path),
        extra=f"state: {{dir: {tmp_path / 'state'}, checkpoint_interval_seconds: 0.5}}\n",
    )
    edit_yaml_file(config, (("http", "port"), http_port))
    produce(kafka_bootstrap, topic, events(2_000, seed=41), key=synthetic.MODEL)
    first = DaemonProcess(config, http_port)
    try:
        first.wait_serving()
        wait_until(
            lambda: first.metric("driftmon_events_total", model="fraud") == 2_000, 60, "first"
        )
    finally:
        assert first.terminate() == 0, first.log_text()[-2000:]

    delete_topics(kafka_bootstrap, [topic])
    time.sleep(1.0)
    create_topic(kafka_bootstrap, topic, 1)
    produce(
        kafka_bootstrap,
        topic,
        events(3_000, seed=42, start_ts=1_764_160_000.0, id_offset=2_000),
        key=synthetic.MODEL,
    )
    second = DaemonProcess(config, http_port)
    try:
        second.wait_serving()
        wait_until(
            lambda: second.metric("driftmon_events_total", model="fraud") == 3_000, 60, "all new"
        )
        assert second.metric("driftmon_topics_recreated_total", topic=topic) == 1
        time.sleep(1.0)
        assert second.metric("driftmon_events_total", model="fraud") == 3_000
    finally:
        assert second.terminate() == 0, second.log_text()[-2000:]
    assert "topic was deleted and created again" in second.log_text()
