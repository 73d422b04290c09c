"""Every dashboard and rule expression, run by a real Prometheus scraping the real daemon.

An expression that errors fails the test; so does one that returns nothing while the
data it describes exists. The few expressions that are empty on a healthy, drifting
stream by design (a target down, deliveries failing) are listed with the reason.
"""

from __future__ import annotations

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
from tests.support.daemon import RunningDaemon
from tests.support.kafka import produce
from tests.support.promql import RULES_FILE, extract_expressions
from tests.support.wait import wait_until
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.integration

# Alert conditions that do not hold on a healthy, drifting stream (the alert rules'
# firing and quiet cases are unit-tested with promtool; here they must only run).
EMPTY_BY_DESIGN = {
    "DriftmonManyFeaturesDrifted": "4 of 13 features drift, under the 50% bar",
    "DriftmonNoEvents": "events are flowing",
    "DriftmonFeatureAbsent": "every event carries every feature",
    "DriftmonInvalidEventsHigh": "no invalid events are produced",
    "DriftmonConsumerLagGrowing": "the consumer keeps up",
    "DriftmonWebhookDeliveriesFailing": "the receiver accepts every delivery",
    "DriftmonKafkaUnreachable": "the broker is reachable",
    "DriftmonNotReady": "the daemon is ready",
    "DriftmonConsumerPaused": "checkpoints are written, consumption runs",
    "DriftmonDown": "the target is up",
    "DriftmonAbsent": "the target exists",
    "DriftmonModelWithoutOwner": "scale-out is off here",
    "DriftmonWatermarkStopped": "scale-out is off here",
}

# Families only a daemon with kafka.scale_out enabled exports; this daemon runs without
# it (tests/integration/test_scaleout_*.py run the stages, promtool tests the rules).
SCALE_OUT_ONLY = (
    "driftmon_model_owner",
    "driftmon_watermark_lag_seconds",
    "driftmon_reorder_buffer_rows",
    "driftmon_partial_rows_total",
    "driftmon_watermark_forced_rows_total",
)


def _allowed_empty(source: str, expr: str = "") -> bool:
    if any(name in expr for name in SCALE_OUT_ONLY):
        return True
    return any(source.endswith(f"alert {name}") for name in EMPTY_BY_DESIGN)


def test_every_dashboard_and_rule_expression_runs_against_live_data(
    tmp_path: Path,
    kafka_bootstrap: str,
    kafka_topic,
    webhook_receiver: WebhookReceiver,
    prometheus_server,
    env: Env,
) -> None:
    env.set(SECRET_ENV, SECRET)
    topic = kafka_topic(partitions=2)
    config = write_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        group=f"{topic}-g",
        reference=write_reference(tmp_path),
        webhook_url=webhook_receiver.url,
    )
    produce(kafka_bootstrap, topic, events(8000, seed=21), key=synthetic.MODEL)
    with RunningDaemon(config) as run:
        prom = prometheus_server([f"127.0.0.1:{run.daemon.http_port}"], rule_files=[RULES_FILE])
        prom.wait_for('driftmon_events_total{model="fraud"}', timeout=30)
        drifted = events(8000, seed=22, drift=True, start_ts=1_764_160_000.0)
        for i in range(0, len(drifted), 2000):  # spread over scrapes so rates see change
            produce(kafka_bootstrap, topic, drifted[i : i + 2000], key=synthetic.MODEL)
            time.sleep(1.5)
        wait_until(lambda: run.events_total >= 16000, 60, "all events consumed")
        prom.wait_for('driftmon_model_drifted{model="fraud"} == 1', timeout=30)
        prom.wait_for("model:driftmon_events:rate5m", timeout=30)
        time.sleep(3)  # one more rule evaluation over the final samples

        expressions = extract_expressions()
        assert len(expressions) > 20
        errors: list[str] = []
        empty: list[str] = []
        for source, expr in expressions:
            try:
                result = prom.query(expr)
            except Exception as exc:  # an HTTP 400 names the parse error
                errors.append(f"{source}: {expr}\n    {exc}")
                continue
            if not result and not _allowed_empty(source, expr):
                empty.append(f"{source}: {expr}")
        assert not errors, "expressions that fail:\n" + "\n".join(errors)
        assert not empty, "expressions empty although data exists:\n" + "\n".join(empty)
