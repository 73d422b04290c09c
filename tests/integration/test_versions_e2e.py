"""Model versions end to end: the real daemon, the real broker, a real webhook receiver.

v1 runs against its configured reference (version in the event field). v2 is deployed with
shifted inputs (version in a Kafka header): its first events become its reference, so the
deployment raises no alert. Then v2's inputs move away from what it was deployed with, and
the alert fires naming v2.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from standardwebhooks import Webhook

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
from tests.support.wait import wait_until
from tests.support.webhook import WebhookReceiver
from tests.support.yaml_edit import edit_yaml_file

pytestmark = pytest.mark.integration

CAPTURE = 8000


def with_version_field(messages: list[bytes], version: str) -> list[bytes]:
    out = []
    for message in messages:
        event = orjson.loads(message)
        event["version"] = version
        out.append(orjson.dumps(event))
    return out


def test_a_deployed_version_is_captured_without_alarm_then_its_own_drift_fires(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic, webhook_receiver: WebhookReceiver, env: Env
) -> None:
    env.set(SECRET_ENV, SECRET)
    topic = kafka_topic(partitions=1)
    reference = write_reference(tmp_path)
    config = write_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        group=f"{topic}-g",
        reference=reference,
        webhook_url=webhook_receiver.url + "/retrain",
    )
    model = ("models", synthetic.MODEL)
    edit_yaml_file(
        config,
        ((*model, "versions"), {"references": {"v1": str(reference)}, "capture_events": CAPTURE}),
        # A captured reference has fewer events than the file one: fewer bins keep the
        # no-drift JS distance well under its threshold.
        ((*model, "bins"), 20),
    )

    v1 = with_version_field(events(8000, seed=1), "v1")
    v2_deployed = events(CAPTURE + 8000, seed=2, drift=True, start_ts=1_764_150_100.0)
    header = [("version", b"v2")]
    produce(kafka_bootstrap, topic, v1, key=synthetic.MODEL)
    produce(kafka_bootstrap, topic, v2_deployed, key=synthetic.MODEL, headers=header)
    deployed_total = len(v1) + len(v2_deployed)

    with RunningDaemon(config) as run:
        wait_until(lambda: run.events_total >= deployed_total, 90, "v1 and v2 consumed")

        # The deployment itself: v2 captured, then evaluated against its own reference,
        # and no evaluation confirmed drift, so nothing was handed to the webhooks.
        by_version = {e.version for e in run.evaluations}
        assert by_version == {"v1", "v2"}
        assert all(e.drift_event is None for e in run.evaluations)
        assert all(not e.result.drifted_features for e in run.evaluations if e.version == "v2")
        assert run.metric("driftmon_model_info", model="fraud", version="v2") == 1.0
        assert run.metric("driftmon_model_info", model="fraud", version="v1") is None
        assert run.metric("driftmon_events_total", model="fraud") == deployed_total
        assert run.metric("driftmon_model_drifted", model="fraud") == 0.0
        model = run.get("/status").json()["models"]["fraud"]
        assert model["active_version"] == "v2"
        assert model["versions"]["v2"]["reference"] == "captured"
        assert model["versions"]["v2"]["state"] == "ready"
        assert model["versions"]["v2"]["captured"] == CAPTURE
        assert model["versions"]["v1"]["reference"] == "configured"
        assert model["versions"]["v1"]["events"] == len(v1)
        assert model["versions"]["v1"]["evaluations"] > 0
        assert webhook_receiver.requests == []

        # v2's inputs go back to what v1 saw: drift against v2's own reference.
        v2_drifted = events(8000, seed=3, start_ts=1_764_150_400.0, id_offset=CAPTURE + 8000)
        produce(kafka_bootstrap, topic, v2_drifted, key=synthetic.MODEL, headers=header)
        wait_until(
            lambda: run.metric("driftmon_model_drifted", model="fraud") == 1.0, 90, "v2 drift"
        )
        calls = webhook_receiver.wait_for(1, timeout=30)
        fired = [e for e in run.evaluations if e.drift_event is not None]
        assert [e.version for e in fired] == ["v2"]
        assert run.get("/status").json()["models"]["fraud"]["alert"]["state"] == "firing"

    assert len(webhook_receiver.requests) == 1
    call = calls[0]
    payload = Webhook(SECRET).verify(call.body, {k.lower(): v for k, v in call.headers.items()})
    assert payload["model"] == "fraud"
    assert payload["version"] == "v2"
    assert payload["id"] == fired[0].drift_event.id  # type: ignore[union-attr]
