"""Hostile strings past the decoder, end to end (hardening, items 1-3): the daemon as a
subprocess on the Tansu broker receives a 900 KB id, 200 KB categories during a reference
capture and a 200-character version. Before, these took the join checkpoint to 800 MB and
RSS to 2.5 GB (a crash loop at 900 KB), the capture to 1 GB and its checkpoint to
200-400 MB, and put a 200,047-character line into /metrics. Now every size stays small."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.daemon import DaemonProcess
from tests.support.kafka import produce
from tests.support.net import free_port
from tests.support.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = 1_764_150_000.0


def event(i: int, **over: object) -> bytes:
    body: dict[str, object] = {
        "model": "m",
        "ts": T0 + i,
        "id": f"req-{i}",
        "version": "v1",
        "features": {"x": float(i % 13), "c": "abc"[i % 3]},
        "prediction": (i % 10) / 10,
    }
    body.update(over)
    return json.dumps(body).encode()


def test_long_ids_categories_and_versions_stay_small(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic
) -> None:
    topic = kafka_topic(partitions=1)
    port = free_port()
    state = tmp_path / "state"
    config = tmp_path / "driftmon.yaml"
    config.write_text(
        f"kafka: {{bootstrap_servers: '{kafka_bootstrap}', group_id: {topic}-g, "
        f"topics: [{topic}], consumer: {{session.timeout.ms: 6000}}, poll_timeout_seconds: 0.2}}\n"
        f"http: {{host: 127.0.0.1, port: {port}}}\n"
        f"state: {{dir: {state}, checkpoint_interval_seconds: 0.5}}\n"
        "models:\n"
        "  m:\n"
        "    reference: {capture_events: 3000}\n"
        "    window: {events: 1000, slide: 500}\n"
        "    features: {x: {type: numeric}, c: {type: categorical}}\n"
        "    prediction: {type: numeric}\n"
        "    task: binary_classification\n"
        "    performance:\n"
        "      metrics: [accuracy]\n"
        "      window: {events: 500, slide: 250}\n"
        "      join: {max_delay_seconds: 31000000, max_pending: 100000}\n"
        "    versions: {capture_events: 100}\n"
    )
    payloads = [event(i) for i in range(2_000)]
    payloads.append(event(2_000, id="x" * 900_000))  # the id that crash-looped the daemon
    payloads += [event(2_001 + i, features={"x": 1.0, "c": f"{i}" * 200_000}) for i in range(40)]
    payloads.append(event(2_041, version="v" * 200))
    produce(kafka_bootstrap, topic, payloads)

    daemon = DaemonProcess(config)
    try:
        daemon.wait_serving()
        wait_until(
            lambda: (daemon.metric("driftmon_invalid_events_total", reason="too_long") or 0) == 2,
            60,
            "both over-long strings rejected",
        )
        wait_until(lambda: daemon.metric("driftmon_events_total", model="m") == 2_040, 60, "all")
        time.sleep(1.5)  # a checkpoint after the last batch
        checkpoints = list((state / "checkpoints").glob("*.ckpt"))
        assert checkpoints and max(p.stat().st_size for p in checkpoints) < 2_000_000
        metrics_text = daemon.get("/metrics").text
        assert max(len(line) for line in metrics_text.splitlines()) < 2_000
        assert len(daemon.get("/status").content) < 200_000
        assert daemon.rss() < 600 * 1024 * 1024, daemon.rss()
        assert daemon.alive()
        assert daemon.terminate() == 0
    finally:
        daemon.kill()
    log = daemon.log_text()
    assert "id of 900000 characters" in log and "version of 200 characters" in log
