"""The whole alert path for real: Tansu -> driftmon -> Prometheus -> Alertmanager -> a receiver.

Prometheus (Debian's 2.42) loads a copy of the shipped rules in which every duration runs
60 times faster, so the test stays well under 2 minutes: each ``for:`` and each range or
offset in an expression reads seconds for minutes and minutes for hours (``for: 5m`` ->
``5s``, ``[15m]`` -> ``[15s]``, ``[1h]`` -> ``[1m]``); thresholds and logic are unchanged.
Scrape and evaluation run every second. Alertmanager (0.25) is started before Prometheus
and routes every alert on its own to the receiver at once.

The daemon then goes through four situations, and the test asserts which alerts reach
the receiver, and that no other alert does:

1. drift, with the retrain webhook pointing at a closed port: DriftmonModelDrifted, and
   DriftmonWebhookDeliveriesFailing for the abandoned trigger;
2. silence: DriftmonNoEvents;
3. a paused consumer (the checkpoint directory replaced by a file) while 1,000 events/s
   arrive: DriftmonConsumerPaused, and DriftmonConsumerLagGrowing from the lag the broker
   reports for the paused partition (not DriftmonNotReady: that case is excluded);
4. the broker SIGKILLed: DriftmonKafkaUnreachable.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.demo import synthetic
from tests.conftest import Env
from tests.integration.daemon_harness import (
    SECRET,
    SECRET_ENV,
    events,
    write_config,
    write_reference,
)
from tests.support.alertmanager import AlertmanagerServer
from tests.support.daemon import DaemonProcess
from tests.support.kafka import create_topic, produce, tansu_broker
from tests.support.net import free_port
from tests.support.prometheus import PrometheusServer
from tests.support.promql import RULES_FILE
from tests.support.wait import wait_until
from tests.support.webhook import WebhookReceiver
from tests.support.yaml_edit import edit_yaml_file

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

EXPECTED = {
    "DriftmonModelDrifted",
    "DriftmonWebhookDeliveriesFailing",
    "DriftmonNoEvents",
    "DriftmonConsumerPaused",
    "DriftmonConsumerLagGrowing",
    "DriftmonKafkaUnreachable",
}
_DURATION = re.compile(r"(\[|offset |^)(\d+)([mh])(\]|\b)")


def faster(duration_text: str) -> str:
    """Minutes become seconds and hours minutes, in a ``for:`` or inside an expression."""

    def scale(m: re.Match[str]) -> str:
        return f"{m[1]}{m[2]}{'s' if m[3] == 'm' else 'm'}{m[4]}"

    return _DURATION.sub(scale, duration_text)


def fast_rules(path: Path) -> Path:
    """The shipped rule file with every duration 60 times shorter (see the module doc)."""
    doc: dict[str, Any] = yaml.safe_load(RULES_FILE.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule["expr"] = faster(rule["expr"])
            if "for" in rule:
                rule["for"] = faster(str(rule["for"]))
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_duration_rewrite_is_exact() -> None:
    assert faster("5m") == "5s" and faster("15m") == "15s"
    expr = "increase(x[15m]) == 0 and x offset 15m > 0 or last_over_time(up[1h]) == 0"
    assert (
        faster(expr) == "increase(x[15s]) == 0 and x offset 15s > 0 or last_over_time(up[1m]) == 0"
    )
    assert faster('up{job=~"driftmon.*"} == 0') == 'up{job=~"driftmon.*"} == 0'


class Alerts:
    """What reached the receiver: alert names by status, from Alertmanager's webhook JSON."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver

    def firing(self) -> set[str]:
        names = set()
        for request in self.receiver.requests:
            for alert in request.json()["alerts"]:
                if alert["status"] == "firing":
                    names.add(alert["labels"]["alertname"])
        return names

    def wait(self, name: str, timeout: float) -> None:
        wait_until(lambda: name in self.firing(), timeout, f"{name} at the receiver")


def test_drift_silence_paused_consumer_and_broker_loss_reach_the_receiver(
    tmp_path: Path, env: Env
) -> None:
    env.set(SECRET_ENV, SECRET)
    broker = tansu_broker(tmp_path / "tansu.log")
    broker.start()
    receiver = WebhookReceiver().start()
    am = AlertmanagerServer(_dir(tmp_path / "am"), f"{receiver.url}/alert")
    topic = "alert-chain"
    create_topic(broker.bootstrap, topic, 1)
    state = tmp_path / "state"
    port = free_port()
    config = write_config(
        tmp_path,
        bootstrap=broker.bootstrap,
        topic=topic,
        group="alert-chain-g",
        reference=write_reference(tmp_path),
        webhook_url=f"http://127.0.0.1:{free_port()}/closed",  # every delivery is refused
        extra=f"state: {{dir: {state}, checkpoint_interval_seconds: 0.5}}\n",
    )
    edit_yaml_file(config, (("http", "port"), port))
    daemon = DaemonProcess(config, port, env={SECRET_ENV: SECRET})
    prom = PrometheusServer(
        _dir(tmp_path / "prom"),
        [f"127.0.0.1:{port}"],
        rule_files=[fast_rules(tmp_path / "rules.yml")],
        alertmanagers=[am.address],
    )
    stop_producing = threading.Event()
    try:
        am.start()
        daemon.wait_serving()
        prom.start()
        prom.wait_for("driftmon_ready == 1", timeout=30)
        alerts = Alerts(receiver)

        # 1. Drift; its retrain trigger is refused until the webhook gives up.
        produce(broker.bootstrap, topic, events(4000, seed=21), key=synthetic.MODEL)
        drifted = events(8000, seed=22, drift=True, start_ts=1_764_160_000.0, id_offset=4000)
        produce(broker.bootstrap, topic, drifted, key=synthetic.MODEL)
        alerts.wait("DriftmonModelDrifted", 45)
        alerts.wait("DriftmonWebhookDeliveriesFailing", 30)

        # 2. Silence: 15 (scaled) minutes without an event after traffic.
        alerts.wait("DriftmonNoEvents", 40)

        # 3. Checkpoints fail, consumption pauses; 1,000 events/s keep arriving.
        ckpt = state / "checkpoints"
        ckpt.rename(state / "checkpoints.aside")
        ckpt.write_text("not a directory\n")

        def producer() -> None:
            i = 12_000
            deadline = time.monotonic() + 60  # bounded, whatever happens
            while not stop_producing.is_set() and time.monotonic() < deadline:
                produce(
                    broker.bootstrap, topic, events(100, seed=i, id_offset=i), key=synthetic.MODEL
                )
                i += 100
                stop_producing.wait(0.1)

        thread = threading.Thread(target=producer, daemon=True)
        thread.start()
        alerts.wait("DriftmonConsumerPaused", 30)
        alerts.wait("DriftmonConsumerLagGrowing", 60)
        # The lag the alert saw is the broker's, not the last fetch's.
        lag = prom.query("sum(driftmon_consumer_lag_messages)")
        assert float(lag[0]["value"][1]) > 10_000
        stop_producing.set()
        thread.join(10)

        # 4. The broker is lost.
        broker.stop(grace_seconds=0.0)
        alerts.wait("DriftmonKafkaUnreachable", 40)

        time.sleep(2.0)  # anything else pending would arrive now
        assert alerts.firing() == EXPECTED, prom.alerts()
    finally:
        stop_producing.set()
        prom.stop()
        am.stop()
        daemon.kill()
        receiver.stop()
        broker.stop()


def _dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
