"""Performance end to end: predictions and delayed labels through Kafka, metrics checked
against scikit-learn on the daemon's joined window, a drop delivered as a webhook."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pytest
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from standardwebhooks import Webhook

from monitor.app.baseline import save_reference
from monitor.demo import synthetic
from monitor.model.performance import performance_spec
from monitor.performance import ReferencePerformance
from monitor.stats import FeatureKind, build_profile
from tests.conftest import Env
from tests.integration.daemon_harness import SECRET, SECRET_ENV, retrain_webhook_yaml
from tests.support.daemon import RunningDaemon
from tests.support.kafka import produce
from tests.support.wait import wait_until
from tests.support.webhook import WebhookReceiver
from tests.support.yaml_edit import edit_yaml_file

pytestmark = pytest.mark.integration

T0 = 1_764_150_000.0
N_GOOD = 3000
N_BAD = 3000
WINDOW = 2000


def model_yaml(reference: Path) -> str:
    """The synthetic model with performance on (:func:`write_setup` turns drift alerts off)."""
    return synthetic.model_config_yaml(str(reference), events=4000, slide=1000) + (
        "    task: binary_classification\n"
        "    performance:\n"
        "      metrics: [accuracy, precision, recall, f1, roc_auc, log_loss]\n"
        f"      window: {{events: {WINDOW}, slide: 500}}\n"
        "      thresholds: {accuracy: {max_drop: 0.1}, roc_auc: {min: 0.6}}\n"
        "      join: {max_delay_seconds: 86400, max_pending: 100000}\n"
        "      decision_threshold: 0.2\n"
        f"      estimation: {{window: {{events: {WINDOW}, slide: 500}}}}\n"
    )


def write_setup(
    directory: Path, *, bootstrap: str, topics: tuple[str, str], webhook_url: str
) -> Path:
    """Reference profile with reference performance, and the config."""
    rng = np.random.default_rng(7)
    cols = synthetic.generate(rng, 50_000)
    labels = (rng.random(len(cols)) < cols.prediction).astype(np.float64)
    data: dict[str, object] = dict(cols.numeric)
    data.update({k: v.tolist() for k, v in cols.categorical.items()})
    data["prediction"] = cols.prediction
    kinds = {n: FeatureKind.NUMERIC for n in synthetic.NUMERIC}
    kinds.update({n: FeatureKind.CATEGORICAL for n in synthetic.CATEGORICAL})
    kinds["prediction"] = FeatureKind.NUMERIC
    profile = build_profile(synthetic.MODEL, data, kinds, source="test reference")  # type: ignore[arg-type]
    reference = directory / "fraud.profile.json"
    config = directory / "driftmon.yaml"
    config.write_text(
        "kafka:\n"
        f"  bootstrap_servers: {bootstrap}\n"
        f"  group_id: {topics[0]}-g\n"
        f"  topics: [{topics[0]}, {topics[1]}]\n"
        "  consumer: {session.timeout.ms: 6000, heartbeat.interval.ms: 2000}\n"
        "  poll_timeout_seconds: 0.2\n"
        "http: {host: 127.0.0.1, port: 0}\n"
        "models:\n" + model_yaml(reference) + retrain_webhook_yaml(webhook_url)
    )
    edit_yaml_file(  # drift alerts off: every drift threshold null
        config,
        (
            ("models", synthetic.MODEL, "thresholds"),
            dict.fromkeys(("psi", "ks_p_value", "js", "chi2_p_value", "missing_ratio")),
        ),
    )
    from monitor.config import load_config

    profile.save(reference)  # the config loader checks the file exists
    spec = performance_spec(load_config(config).models[synthetic.MODEL], estimation=True)
    save_reference(reference, profile, ReferencePerformance.build(spec, cols.prediction, labels))
    return config


def stream(seed: int) -> tuple[list[bytes], list[bytes], dict[str, tuple[float, int]]]:
    """Predictions, label events and the truth per id.

    The first N_GOOD labels follow the model's probabilities; the next N_BAD are flipped
    (a concept shift the features cannot show). Labels arrive 2 s to 1 h after their
    prediction in event time; every 20th label comes first (1 s before its prediction).
    The scores are read back from the messages, so they are exactly what driftmon sees.
    """
    rng = np.random.default_rng(seed)
    n = N_GOOD + N_BAD
    cols = synthetic.generate(rng, n)
    predictions = list(synthetic.to_events(cols, start_ts=T0, step_seconds=0.5))
    scores = np.array([orjson.loads(m)["prediction"] for m in predictions])
    y = (rng.random(n) < scores).astype(int)
    y[N_GOOD:] = 1 - y[N_GOOD:]
    delays = rng.uniform(2.0, 3600.0, n)
    delays[::20] = -1.0
    labels = [
        orjson.dumps(
            {
                "model": synthetic.MODEL,
                "id": f"req-{i}",
                "label": int(y[i]),
                "ts": round(T0 + i * 0.5 + float(delays[i]), 3),
            }
        )
        for i in range(n)
    ]
    truth = {f"req-{i}": (float(scores[i]), int(y[i])) for i in range(n)}
    return predictions, labels, truth


def test_delayed_labels_measure_performance_and_a_drop_triggers_the_webhook(
    tmp_path: Path,
    kafka_bootstrap: str,
    kafka_topic,  # type: ignore[no-untyped-def]
    webhook_receiver: WebhookReceiver,
    env: Env,
) -> None:
    env.set(SECRET_ENV, SECRET)
    topics = (kafka_topic(partitions=1), kafka_topic(partitions=1))
    config = write_setup(
        tmp_path, bootstrap=kafka_bootstrap, topics=topics, webhook_url=webhook_receiver.url
    )
    predictions, labels, truth = stream(seed=3)
    n = len(predictions)
    early = set(range(0, n, 20))
    # Labels go out after their predictions (in chunks), except the early ones.
    produce(kafka_bootstrap, topics[1], [labels[i] for i in sorted(early)], key="fraud")
    for start in range(0, n, 1000):
        produce(kafka_bootstrap, topics[0], predictions[start : start + 1000], key="fraud")
        late = [labels[i] for i in range(start, min(n, start + 1000)) if i not in early]
        produce(kafka_bootstrap, topics[1], late, key="fraud")

    with RunningDaemon(config) as run:
        wait_until(
            lambda: run.metric("driftmon_labels_joined_total", model="fraud") == n,
            90,
            "every label joined",
        )
        calls = webhook_receiver.wait_for(1, timeout=20)

        # driftmon_performance is scikit-learn's value on the daemon's joined window.
        perf = run.daemon.pipeline.monitors["fraud"].performance
        assert perf is not None
        window_pred, window_labels = perf.monitor.window.rows()
        assert len(window_labels) == WINDOW
        # every joined row pairs a prediction with its own label
        pairs = Counter(zip(window_pred.tolist(), window_labels.astype(int).tolist(), strict=True))
        available = Counter(truth.values())
        assert not pairs - available
        y, p = window_labels.astype(int), window_pred
        expected = {
            "accuracy": accuracy_score(y, p >= 0.2),
            "f1": f1_score(y, p >= 0.2, zero_division=0),
            "roc_auc": roc_auc_score(y, p),
            "log_loss": log_loss(y, p, labels=[0, 1]),
        }
        for metric, value in expected.items():
            got = run.metric("driftmon_performance", model="fraud", metric=metric)
            assert got == pytest.approx(value, rel=1e-9), metric

        assert run.metric("driftmon_labels_total", model="fraud") == n
        assert run.metric("driftmon_join_pending", model="fraud") == 0
        for reason in ("expired", "capacity"):
            assert run.metric("driftmon_join_evicted_total", model="fraud", reason=reason) == 0
        assert run.metric("driftmon_label_delay_seconds_count", model="fraud") == n
        assert run.metric("driftmon_label_delay_seconds_bucket", model="fraud", le="1.0") == len(
            early
        )
        reference = run.metric("driftmon_reference_performance", model="fraud", metric="accuracy")
        assert reference is not None and reference > 0.5
        assert run.metric("driftmon_estimated_performance", model="fraud", metric="accuracy")
        assert run.metric("driftmon_events_total", model="fraud") == n  # labels are not events
        assert run.metric("driftmon_retrain_triggers_total", model="fraud") == 1
        status = run.get("/status").json()["models"]["fraud"]["performance"]
        assert status["labels_joined_total"] == n
        assert status["alert"]["state"] == "firing"

    # One signed trigger, with the documented performance payload.
    assert len(webhook_receiver.requests) == 1
    call = calls[0]
    payload = Webhook(SECRET).verify(call.body, {k.lower(): v for k, v in call.headers.items()})
    assert payload["type"] == "driftmon.performance.detected"
    assert payload["model"] == "fraud"
    assert payload["id"].startswith("performance-realised-")
    extra = payload["extra"]["performance"]
    assert extra["kind"] == "realised"
    assert extra["window"]["events"] == WINDOW
    assert extra["window"]["unit"] == "labelled_predictions"
    assert extra["window"]["label_time_start"] <= extra["window"]["label_time_end"]
    crossed = {c["metric"]: c for c in extra["crossed"]}
    assert "accuracy" in crossed
    accuracy = crossed["accuracy"]
    assert accuracy["rule"] == "max_drop" and accuracy["limit"] == 0.1
    assert accuracy["from"] == pytest.approx(reference)
    assert accuracy["from"] - accuracy["to"] > 0.1
    assert {f["feature"] for f in payload["drifted_features"]} <= {
        "realised.accuracy",
        "realised.roc_auc",
    }
