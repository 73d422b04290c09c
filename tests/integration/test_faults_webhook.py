"""Fault 3 of issue 6: the webhook receiver is down for a long time while drift triggers.

The daemon runs as a subprocess (so its RSS can be read) with a state directory, hence the
durable SQLite outbox. Nothing listens on the webhook's port for ``OUTAGE_SECONDS``
(scaled down from "minutes": the retry backoff is capped at 2 s so the outage spans some
25 attempts per trigger, the same regime as minutes of outage with a 300 s cap) while a
producer keeps feeding alternating clean and drifted segments, so new drift episodes
trigger during the outage. Then a receiver comes up on that port.

Checks: every trigger waits in the outbox (``driftmon_webhook_pending``), none is given up
(``failed`` stays 0), each is delivered exactly once after the receiver returns (by its
``webhook-id``), and the daemon's RSS stays flat over the outage.
"""

from __future__ import annotations

import collections
import threading
import time
from pathlib import Path

import pytest

from monitor.demo import synthetic
from tests.conftest import Env
from tests.integration.daemon_harness import (
    SECRET,
    SECRET_ENV,
    events,
    write_config,
    write_reference,
)
from tests.support.daemon import DaemonProcess
from tests.support.kafka import produce
from tests.support.net import free_port
from tests.support.wait import wait_until
from tests.support.webhook import WebhookReceiver
from tests.support.yaml_edit import edit_yaml_file

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_SECONDS = 25.0
EPISODES = 4
SEGMENT = 6_000
RSS_GROWTH_LIMIT = 40 * 1024 * 1024


def segment(i: int, drift: bool) -> list[bytes]:
    # Segments 1000 s apart in event time, so the 1 s cooldown never suppresses a trigger.
    return events(
        SEGMENT,
        seed=100 + i,
        drift=drift,
        start_ts=1_764_150_000.0 + 1000.0 * i,
        id_offset=SEGMENT * i,
    )


def test_receiver_down_nothing_lost_delivered_once_memory_flat(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic, env: Env
) -> None:
    env.set(SECRET_ENV, SECRET)
    topic = kafka_topic(partitions=1)
    http_port, hook_port = free_port(), free_port()
    config = write_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        group=f"{topic}-g",
        reference=write_reference(tmp_path),
        webhook_url=f"http://127.0.0.1:{hook_port}/retrain",
        extra=f"state: {{dir: {tmp_path / 'state'}, checkpoint_interval_seconds: 1}}\n",
    )
    edit_yaml_file(
        config,
        (("http", "port"), http_port),
        (("models", synthetic.MODEL, "alert", "cooldown_seconds"), 1),
        (("webhooks", 0, "retry", "max_attempts"), 100),
        (("webhooks", 0, "retry", "max_backoff_seconds"), 2),
    )

    def feed() -> None:
        for i in range(EPISODES):
            produce(kafka_bootstrap, topic, segment(2 * i, drift=False), key=synthetic.MODEL)
            produce(kafka_bootstrap, topic, segment(2 * i + 1, drift=True), key=synthetic.MODEL)
            time.sleep(OUTAGE_SECONDS / (EPISODES + 1))

    daemon = DaemonProcess(config, http_port)
    receiver = WebhookReceiver(port=hook_port)
    try:
        wait_until(lambda: daemon.metric("driftmon_ready") is not None, 60, "daemon serving")
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        wait_until(
            lambda: (daemon.metric("driftmon_retrain_triggers_total", model="fraud") or 0) >= 1,
            60,
            "first trigger",
        )
        outage_start = time.monotonic()
        rss: list[int] = [daemon.rss()]
        while time.monotonic() - outage_start < OUTAGE_SECONDS or feeder.is_alive():
            time.sleep(1.0)
            rss.append(daemon.rss())
            assert daemon.alive(), daemon.log_text()[-3000:]
        feeder.join()
        total = EPISODES * 2 * SEGMENT
        wait_until(
            lambda: daemon.metric("driftmon_events_total", model="fraud") == total, 60, "all in"
        )
        triggers = int(daemon.metric("driftmon_retrain_triggers_total", model="fraud") or 0)
        assert triggers == EPISODES, "one trigger per drifted segment"

        # Receiver down: every trigger is pending in the outbox, none given up.
        assert daemon.metric("driftmon_webhook_pending", webhook="retrain") == triggers
        assert daemon.metric("driftmon_webhook_deliveries_total", outcome="delivered") == 0
        assert daemon.metric("driftmon_webhook_deliveries_total", outcome="failed") == 0
        assert (daemon.metric("driftmon_webhook_deliveries_total", outcome="retried") or 0) >= 10
        growth = max(rss) - rss[0]
        assert growth < RSS_GROWTH_LIMIT, f"RSS grew {growth / 2**20:.1f} MiB: {rss}"

        # The receiver comes back on the same port: each trigger arrives exactly once.
        receiver.start()
        wait_until(
            lambda: daemon.metric("driftmon_webhook_pending", webhook="retrain") == 0,
            30,
            "outbox drained",
        )
        time.sleep(3.0)  # room for a duplicate to show up
        ids = collections.Counter(r.headers["webhook-id"] for r in receiver.requests)
        assert len(ids) == triggers
        assert set(ids.values()) == {1}, ids
        assert daemon.metric("driftmon_webhook_deliveries_total", outcome="delivered") == triggers
        assert daemon.metric("driftmon_webhook_deliveries_total", outcome="failed") == 0
        assert daemon.terminate() == 0
    finally:
        daemon.kill()
        receiver.stop()
