"""Issue 16, item 10: a wrong broker address and a missing topic, as a user meets them.

The daemon runs as a real process (its own log, its own exit code): once against a
closed port, once against the real broker with one subscribed topic that does not
exist until the test creates it. Each problem must be said once, in driftmon's words,
naming the config key and its value, and ``/readyz`` must say exactly what is wrong.
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

pytestmark = pytest.mark.integration


def _readyz_reasons(daemon: DaemonProcess) -> list[str]:
    resp = daemon.get("/readyz", timeout=2)
    assert resp.status_code == 503, resp.text
    reasons: list[str] = resp.json()["reasons"]
    return reasons


def test_a_closed_port_is_said_once_and_readyz_names_the_address(tmp_path: Path) -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    config = write_config(
        tmp_path,
        bootstrap=closed,
        topic="orders",
        group="unreachable-g",
        reference=write_reference(tmp_path),
    )
    edit_yaml_file(config, (("http", "port"), free_port()))
    daemon = DaemonProcess(config)
    try:
        daemon.wait_serving(90)
        expected = f"kafka_connected: broker at {closed} unreachable: connection refused"
        wait_until(lambda: expected in _readyz_reasons(daemon), 30, "readyz names the broker")
        assert daemon.metric("driftmon_kafka_connected") == 0.0
        assert daemon.metric("driftmon_ready") == 0.0
        # librdkafka retries every 50 ms to 1 s and used to print a line every 10 s.
        time.sleep(12)
        assert daemon.alive()
        code = daemon.terminate(30)
    finally:
        daemon.kill()
    log = daemon.log_text()
    said = [line for line in log.splitlines() if "cannot reach the Kafka broker" in line]
    assert len(said) == 1, log
    assert f"kafka.bootstrap_servers {closed}: connection refused" in said[0]
    assert " ERROR " in said[0]
    assert "Connect to ipv4" not in log and "broker version" not in log, log
    assert "Traceback" not in log
    assert code == 0, log


def test_a_missing_topic_is_named_and_keeps_the_daemon_not_ready_until_created(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic
) -> None:
    present = kafka_topic(partitions=1)
    missing = f"{present}-missing"
    config = write_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=present,
        group=f"{present}-g",
        reference=write_reference(tmp_path),
    )
    edit_yaml_file(
        config,
        (("http", "port"), free_port()),
        (("kafka", "topics"), [present, missing]),
        # Notice the topic's creation within a second instead of librdkafka's 5 minutes.
        (("kafka", "consumer", "topic.metadata.refresh.interval.ms"), 1000),
    )
    produce(kafka_bootstrap, present, events(500, seed=3), key=synthetic.MODEL)
    daemon = DaemonProcess(config)
    try:
        daemon.wait_serving(90)
        # The topic that exists is consumed all the same.
        wait_until(
            lambda: (daemon.metric("driftmon_events_total", model="fraud") or 0.0) >= 500,
            60,
            "events of the existing topic counted",
        )
        reasons = _readyz_reasons(daemon)
        assert f"kafka_topics: topic missing: {missing}" in reasons, reasons
        assert not any(r.startswith("kafka_connected") for r in reasons), reasons
        assert daemon.metric("driftmon_ready") == 0.0
        assert daemon.metric("driftmon_kafka_connected") == 1.0

        create_topic(kafka_bootstrap, missing, 1)
        try:
            wait_until(
                lambda: daemon.get("/readyz", timeout=2).status_code == 200,
                60,
                "ready once the topic exists",
            )
            # Stop before deleting the topic: a deletion seen while running is
            # (rightly) reported again, which is not what this test counts.
            code = daemon.terminate(30)
        finally:
            delete_topics(kafka_bootstrap, [missing])
    finally:
        daemon.kill()
    log = daemon.log_text()
    said = [line for line in log.splitlines() if "does not exist" in line]
    assert len(said) == 1, log
    assert f"subscribed topic '{missing}'" in said[0] and "kafka.topics" in said[0]
    assert "subscribed topic now exists" in log
    assert "Traceback" not in log
    assert code == 0, log
