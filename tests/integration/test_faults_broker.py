"""Fault 2 of issue 6: the broker stops and comes back while the daemon runs.

The test owns its broker (a Tansu on a fixed port, stopped and started again on the same
port). Tansu's memory engine loses every topic, record and group offset on restart, so the
test recreates the topic and produces the second half of the stream after the restart,
exactly like an operator replacing a broker that lost its disk. The outage lasts
``OUTAGE_SECONDS`` (10 s instead of the issue's 30 s: long enough for the session to
time out and for every readiness signal to flip; the daemon's behaviour does not change
with the length of the outage, only the amount of reconnect noise does).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from monitor.demo import synthetic
from tests.integration.daemon_harness import events, write_config, write_reference
from tests.support.daemon import RunningDaemon
from tests.support.kafka import create_topic, produce, tansu_broker
from tests.support.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_SECONDS = 10.0
FIRST = 5_000
SECOND = 5_000


def test_broker_restart_daemon_stays_up_reports_not_ready_and_resumes(tmp_path: Path) -> None:
    broker = tansu_broker(tmp_path / "tansu.log")
    broker.start()
    try:
        topic = "faults-broker"
        create_topic(broker.bootstrap, topic, 1)
        config = write_config(
            tmp_path,
            bootstrap=broker.bootstrap,
            topic=topic,
            group="faults-broker-g",
            reference=write_reference(tmp_path),
        )
        produce(broker.bootstrap, topic, events(FIRST, seed=11), key=synthetic.MODEL)
        with RunningDaemon(config) as run:
            wait_until(lambda: run.events_total >= FIRST, 60, "first half consumed")
            wait_until(lambda: run.get("/readyz").status_code == 200, 15, "ready")
            assert run.metric("driftmon_kafka_connected") == 1.0

            broker.stop()
            down_at = time.monotonic()
            wait_until(
                lambda: run.metric("driftmon_kafka_connected") == 0.0, 15, "connected drops to 0"
            )
            readyz = run.get("/readyz")
            assert readyz.status_code == 503
            body = readyz.json()
            assert body["ready"] is False
            assert body["conditions"]["kafka_connected"] is False
            assert any(r.startswith("kafka_connected") for r in body["reasons"])
            # The daemon keeps serving for the whole outage: liveness, metrics, status.
            while time.monotonic() - down_at < OUTAGE_SECONDS:
                assert run.get("/healthz").status_code == 200
                assert run.get("/readyz").status_code == 503
                assert run.exit_code is None
                time.sleep(1.0)

            broker.start()
            create_topic(broker.bootstrap, topic, 1)
            produce(
                broker.bootstrap,
                topic,
                events(SECOND, seed=12, start_ts=1_764_160_000.0, id_offset=FIRST),
                key=synthetic.MODEL,
            )
            wait_until(lambda: run.events_total >= FIRST + SECOND, 90, "second half consumed")
            wait_until(lambda: run.get("/readyz").status_code == 200, 30, "ready again")
            assert run.metric("driftmon_kafka_connected") == 1.0
            # Nothing was counted twice: the restarted broker holds only the second half.
            time.sleep(2.0)
            assert run.events_total == FIRST + SECOND
            assert run.metric("driftmon_events_total", model="fraud") == FIRST + SECOND
            assert run.exit_code is None  # never restarted
    finally:
        broker.stop()
