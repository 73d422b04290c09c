"""The daemon end to end: real broker, real HTTP receiver, real metrics endpoint."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from monitor.app.replay import evaluation_record
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

pytestmark = pytest.mark.integration

DRIFTED = set(synthetic.DRIFTED_FEATURES)
ALL_FEATURES = set(synthetic.NUMERIC) | set(synthetic.CATEGORICAL) | {"prediction"}


def test_drift_is_confirmed_on_exactly_the_drifted_features(
    tmp_path: Path,
    kafka_bootstrap: str,
    kafka_topic,
    webhook_receiver: WebhookReceiver,
    env: Env,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="monitor")
    env.set(SECRET_ENV, SECRET)
    topic = kafka_topic(partitions=3)
    reference = write_reference(tmp_path)
    config = write_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        group=f"{topic}-g",
        reference=reference,
        webhook_url=webhook_receiver.url + "/retrain",
    )
    clean = events(8000, seed=1)
    drifted = events(8000, seed=2, drift=True, start_ts=1_764_150_100.0, id_offset=8000)
    produce(kafka_bootstrap, topic, clean + drifted, key=synthetic.MODEL)

    with RunningDaemon(config) as run:
        wait_until(lambda: run.events_total >= 16000, 60, "all events consumed")
        wait_until(lambda: run.metric("driftmon_model_drifted", model="fraud") == 1.0, 10, "drift")
        calls = webhook_receiver.wait_for(1, timeout=15)

        # Every evaluation flags only features that really drifted; the last one flags all.
        assert run.evaluations, "no evaluation ran"
        for evaluation in run.evaluations:
            assert set(evaluation.result.drifted_features) <= DRIFTED
        last = run.evaluations[-1].result
        assert set(last.drifted_features) == DRIFTED

        for feature in ALL_FEATURES:
            flagged = run.metric("driftmon_feature_drifted", model="fraud", feature=feature)
            assert flagged == (1.0 if feature in DRIFTED else 0.0), feature
        assert run.metric("driftmon_events_total", model="fraud") == 16000
        assert run.metric("driftmon_drift_score", model="fraud", feature="amount", test="psi") > 0.2

        status = run.get("/status").json()
        model = status["models"]["fraud"]
        assert model["alert"]["drifted"] is True
        assert model["alert"]["state"] == "firing"
        flagged = {name for name, f in model["last_evaluation"]["features"].items() if f["drifted"]}
        assert flagged == DRIFTED
        # Each check names what it compared: ks and chi2 thresholds are on their p-values.
        for f in model["last_evaluation"]["features"].values():
            for key, check in f["checks"].items():
                assert check["compared"] == (
                    "p_value"
                    if key.endswith("_p_value")
                    else ("missing_ratio_increase" if key == "missing_ratio" else "score")
                )
                assert f"{check['compared']}_threshold" in check and check["compared"] in check
        amount = model["last_evaluation"]["features"]["amount"]
        assert "ks_p_value" in amount["thresholds"] and "ks" not in amount["thresholds"]

    # One signed trigger for the episode, verifiable with the Standard Webhooks package.
    assert len(webhook_receiver.requests) == 1
    call = calls[0]
    payload = Webhook(SECRET).verify(call.body, {k.lower(): v for k, v in call.headers.items()})
    assert payload["type"] == "driftmon.drift.detected"
    assert payload["model"] == "fraud"
    assert {f["feature"] for f in payload["drifted_features"]} == DRIFTED
    assert payload["summary"]["features_monitored"] == len(ALL_FEATURES)
    for f in payload["drifted_features"]:
        assert f[f"{f['compared']}_threshold"] == f["threshold"]
        if f["test"] in ("ks", "chi2"):
            assert f["compared"] == "p_value" and f["p_value"] < f["p_value_threshold"]
    assert any(f["compared"] == "p_value" for f in payload["drifted_features"])
    [confirmed] = [r for r in caplog.records if r.getMessage().startswith("drift confirmed")]
    assert " p_value " in confirmed.checks and " < " in confirmed.checks  # type: ignore[attr-defined]


def test_a_stream_without_drift_raises_no_alert(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic, webhook_receiver: WebhookReceiver, env: Env
) -> None:
    env.set(SECRET_ENV, SECRET)
    topic = kafka_topic(partitions=3)
    config = write_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        group=f"{topic}-g",
        reference=write_reference(tmp_path),
        webhook_url=webhook_receiver.url,
    )
    produce(kafka_bootstrap, topic, events(20000, seed=3), key=synthetic.MODEL)
    with RunningDaemon(config) as run:
        wait_until(lambda: run.events_total >= 20000, 60, "all events consumed")
        assert len(run.evaluations) == 17  # (20000 - 4000) / 1000 + 1
        assert all(not e.result.drifted_features for e in run.evaluations)
        assert run.metric("driftmon_model_drifted", model="fraud") == 0.0
        assert run.metric("driftmon_alert_state", model="fraud") == 0.0
        assert run.get("/readyz").status_code == 200
    assert webhook_receiver.requests == []


def test_restart_continues_from_the_committed_offsets(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic
) -> None:
    topic = kafka_topic(partitions=3)
    config = write_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        group=f"{topic}-g",
        reference=write_reference(tmp_path),
        extra_kafka="  batch_max_messages: 500\n",
    )
    total = 12000
    produce(kafka_bootstrap, topic, events(total, seed=4), key=synthetic.MODEL)
    first = RunningDaemon(config, max_events=5000)
    with first:
        first.join(60)
    assert first.exit_code == 0
    consumed_first = first.events_total
    assert 5000 <= consumed_first < total

    with RunningDaemon(config) as second:
        wait_until(lambda: second.events_total >= total - consumed_first, 60, "rest consumed")
        # Give a duplicate delivery time to show up before asserting there is none.
        import time

        time.sleep(2.0)
        assert second.events_total == total - consumed_first


def test_max_events_stops_the_loop_when_the_stream_ends_exactly_there(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic
) -> None:
    # The last batch is accounted for only after the next (idle) poll; the limit must be
    # checked then too, not only after a batch arrives, or the run lasts until max_seconds.
    topic = kafka_topic(partitions=1)
    config = write_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        group=f"{topic}-g",
        reference=write_reference(tmp_path),
    )
    total = 3000
    produce(kafka_bootstrap, topic, events(total, seed=5), key=synthetic.MODEL)
    daemon = RunningDaemon(config, max_events=total, max_seconds=120)
    import time

    started = time.monotonic()
    with daemon:
        daemon.join(60)
        assert daemon.exit_code == 0, "still running after 60 s: max_events was not honoured"
    assert time.monotonic() - started < 60
    assert daemon.events_total == total


def test_bad_input_is_counted_dead_lettered_and_does_not_disturb_valid_events(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic
) -> None:
    from confluent_kafka import Consumer

    from monitor.config import load_config
    from monitor.model.reference_file import load_references
    from monitor.pipeline import Pipeline
    from tests.support.kafka import consumer_config

    topic = kafka_topic(partitions=1)
    dlq = kafka_topic(partitions=1, prefix="dlq")
    config_path = write_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        group=f"{topic}-g",
        reference=write_reference(tmp_path),
        extra_kafka=f"  dead_letter_topic: {dlq}\n  max_message_bytes: 4096\n",
    )
    valid = events(6000, seed=5)
    garbage: dict[str, bytes] = {
        "not_json": b"{not json",
        "not_utf8": b'{"model": "fraud", "features": {"country": "\xff\xfe"}}',
        "not_object": b'"just a string"',
        "missing_model": b'{"features": {"amount": 1.0}}',
        "unknown_model": b'{"model": "nope", "features": {"amount": 1.0}}',
        "wrong_type": b'{"model": "fraud", "features": {"amount": "lots"}}',
        "non_finite": b'{"model": "fraud", "features": {"amount": NaN}}',
        "oversized": b'{"model": "fraud", "pad": "' + b"x" * 5000 + b'"}',
        "no_payload": b'{"model": "fraud"}',
        "bad_timestamp": b'{"model": "fraud", "ts": "yesterday", "prediction": 0.5}',
    }
    stream: list[bytes] = []
    bad = list(garbage.values())
    for i, message in enumerate(valid):
        stream.append(message)
        if i % 500 == 0:
            stream.append(bad[(i // 500) % len(bad)])
    expected_reasons: dict[str, int] = {}
    for i in range(0, len(valid), 500):
        reason = list(garbage)[(i // 500) % len(bad)]
        expected_reasons[reason] = expected_reasons.get(reason, 0) + 1
    produce(kafka_bootstrap, topic, stream, key=synthetic.MODEL)

    with RunningDaemon(config_path) as run:
        wait_until(lambda: run.events_total >= len(valid), 60, "valid events consumed")
        wait_until(
            lambda: (
                sum(run.metric("driftmon_invalid_events_total", reason=r) or 0 for r in garbage)
                >= sum(expected_reasons.values())
            ),
            10,
            "invalid events counted",
        )
        for reason, count in expected_reasons.items():
            assert run.metric("driftmon_invalid_events_total", reason=reason) == count, reason
        assert run.metric("driftmon_events_total", model="fraud") == len(valid)
        live = [evaluation_record(e) for e in run.evaluations]

    # The statistics equal those of the valid events alone, evaluation for evaluation.
    config = load_config(config_path)
    pipeline = Pipeline(config, load_references(config, config_path.parent))
    import numpy as np

    alone = pipeline.process(valid, np.zeros(len(valid)), topic=topic).evaluations
    assert live and [evaluation_record(e) for e in alone] == live

    # Each rejected message is on the dead-letter topic with its reason in a header.
    consumer = Consumer(consumer_config(kafka_bootstrap))
    consumer.subscribe([dlq])
    reasons: dict[str, int] = {}
    import time

    deadline = time.monotonic() + 30
    while sum(reasons.values()) < sum(expected_reasons.values()) and time.monotonic() < deadline:
        for msg in consumer.consume(100, 1.0):
            if msg.error():
                continue
            headers = dict(msg.headers() or [])
            reason = headers["driftmon-reason"].decode()
            reasons[reason] = reasons.get(reason, 0) + 1
            assert json.loads(json.dumps(headers["driftmon-source"].decode())).startswith(topic)
    consumer.close()
    assert reasons == expected_reasons
