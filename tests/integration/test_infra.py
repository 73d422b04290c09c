"""The shared fixtures work for real: broker, Prometheus, promtool, webhook receiver."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from prometheus_client import CollectorRegistry, Counter, start_http_server

from tests.conftest import Env
from tests.support.kafka import consumer_config, produce
from tests.support.net import free_port
from tests.support.prometheus import PrometheusServer
from tests.support.webhook import DROP, Reply, WebhookReceiver


def test_env_sets_and_restores(env: Env) -> None:
    env.set("DRIFTMON_TEST_A", "1")
    env.unset("HOME")
    assert os.environ["DRIFTMON_TEST_A"] == "1"
    assert "HOME" not in os.environ
    env.restore()
    assert "DRIFTMON_TEST_A" not in os.environ
    assert "HOME" in os.environ


@pytest.mark.integration
def test_tansu_round_trip_through_a_consumer_group(
    kafka_bootstrap: str, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=3)
    sent = [f'{{"i": {i}}}'.encode() for i in range(1000)]
    # One slice per partition, so the group must deliver from every partition to finish.
    for partition in range(3):
        produce(kafka_bootstrap, topic, sent[partition::3], partition=partition)

    consumer = Consumer(consumer_config(kafka_bootstrap))
    received: list[bytes] = []
    partitions: set[int] = set()
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while len(received) < len(sent) and time.monotonic() < deadline:
            for msg in consumer.consume(500, 1.0):
                err = msg.error()
                assert err is None or err.code() == KafkaError._PARTITION_EOF, err
                value = msg.value()
                assert value is not None
                received.append(value)
                partition = msg.partition()
                assert partition is not None
                partitions.add(partition)
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    assert sorted(received) == sorted(sent)
    assert partitions == {0, 1, 2}


@pytest.mark.integration
def test_exact_offsets_give_true_watermarks_and_consumers_close(
    kafka_bootstrap: str,
    kafka_topic: Callable[..., str],
    kafka_consumer: Callable[..., Consumer],
) -> None:
    topic = kafka_topic(partitions=1)
    produce(kafka_bootstrap, topic, [b"x"] * 50, key="fraud", exact_offsets=True)
    consumer = kafka_consumer()
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    assert (low, high) == (0, 50)


@pytest.mark.integration
def test_prometheus_scrapes_a_client_endpoint(
    prometheus_server: Callable[..., PrometheusServer],
) -> None:
    registry = CollectorRegistry()
    Counter("infra_probe_events", "Probe counter.", registry=registry).inc(42)
    port = free_port()
    http, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        prom = prometheus_server([f"127.0.0.1:{port}"])
        result = prom.wait_for("infra_probe_events_total", timeout=20)
        assert result[0]["value"][1] == "42"
        assert result[0]["metric"]["job"] == "driftmon"
    finally:
        http.shutdown()
        http.server_close()
        thread.join(5)


@pytest.mark.integration
def test_promtool_runs(promtool: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n- name: g\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n"
    )
    out = subprocess.run(
        [str(promtool), "check", "rules", str(rules)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.integration
def test_webhook_receiver_records_and_scripts(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.script(Reply(503, {"Retry-After": "1"}), DROP)
    with httpx.Client(timeout=5) as client:
        first = client.post(f"{webhook_receiver.url}/hook", json={"n": 1})
        assert first.status_code == 503
        assert first.headers["retry-after"] == "1"
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(f"{webhook_receiver.url}/hook", json={"n": 2})
        third = client.post(
            f"{webhook_receiver.url}/other", content=b"raw", headers={"X-Sig": "abc"}
        )
        assert third.status_code == 204
    got = webhook_receiver.wait_for(3, timeout=5)
    assert [r.method for r in got] == ["POST"] * 3
    assert [r.path for r in got] == ["/hook", "/hook", "/other"]
    assert got[0].json() == {"n": 1}
    assert got[1].json() == {"n": 2}
    assert got[2].body == b"raw"
    assert got[2].headers["x-sig"] == "abc"
    assert got[0].time <= got[2].time
    with pytest.raises(TimeoutError):
        webhook_receiver.wait_for(4, timeout=0.2)
