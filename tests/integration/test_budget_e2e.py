"""A budget-configured model through the real daemon, broker and HTTP endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.demo import synthetic
from tests.integration.daemon_harness import events, write_reference
from tests.support.daemon import RunningDaemon
from tests.support.kafka import produce
from tests.support.wait import wait_until
from tests.support.yaml_edit import REMOVE, edit_yaml_file

pytestmark = pytest.mark.integration

DRIFTED = set(synthetic.DRIFTED_FEATURES)


def write_budget_config(directory: Path, *, bootstrap: str, topic: str, reference: Path) -> Path:
    """The synthetic model with no raw thresholds: every critical value is calibrated."""
    model = synthetic.model_config_yaml(str(reference), events=4000, slide=1000)
    path = directory / "driftmon.yaml"
    path.write_text(
        "kafka:\n"
        f"  bootstrap_servers: {bootstrap}\n"
        f"  group_id: {topic}-g\n"
        f"  topics: [{topic}]\n"
        "  consumer: {session.timeout.ms: 6000, heartbeat.interval.ms: 2000}\n"
        "  poll_timeout_seconds: 0.2\n"
        "http: {host: 127.0.0.1, port: 0}\n"
        "models:\n" + model
    )
    alert = ("models", synthetic.MODEL, "alert")
    return edit_yaml_file(
        path,
        (("models", synthetic.MODEL, "thresholds"), REMOVE),
        ((*alert, "false_alarms_per_month"), 1),
        ((*alert, "events_per_second"), 100),
        ((*alert, "calibration_draws"), 300),
        ((*alert, "retrain_grace_seconds"), 86400),
    )


def test_a_budget_configured_model_confirms_drift_and_reports_its_calibration(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic
) -> None:
    topic = kafka_topic(partitions=1)
    config = write_budget_config(
        tmp_path, bootstrap=kafka_bootstrap, topic=topic, reference=write_reference(tmp_path)
    )
    clean = events(8000, seed=1)
    drifted = events(8000, seed=2, drift=True, start_ts=1_764_150_100.0, id_offset=8000)
    produce(kafka_bootstrap, topic, clean + drifted, key=synthetic.MODEL)

    with RunningDaemon(config) as run:
        wait_until(lambda: run.events_total >= 16000, 90, "all events consumed")
        wait_until(lambda: run.metric("driftmon_model_drifted", model="fraud") == 1.0, 10, "drift")

        # Clean windows stay quiet under the calibrated thresholds; drift is confirmed.
        assert run.evaluations
        for evaluation in run.evaluations:
            assert set(evaluation.result.drifted_features) <= DRIFTED
        assert DRIFTED & set(run.evaluations[-1].result.drifted_features)
        assert sum(e.drift_event is not None for e in run.evaluations) == 1

        model = run.get("/status").json()["models"]["fraud"]
        assert model["alert"]["state"] == "firing"
        assert model["alert"]["retrain_grace_seconds"] == 86400
        assert model["alert"]["retrain_suppressed"] == 0
        calibration = model["calibration"]
        assert calibration["source"] == "computed" and calibration["seconds"] > 0
        assert calibration["budget"]["false_alarms_per_month"] == 1
        assert calibration["budget"]["window_events"] == 4000
        assert calibration["budget"]["evaluations_per_month"] == 259_200
        assert (calibration["correction"], calibration["dependence"]) == ("bonferroni", "union")
        assert calibration["checks_per_evaluation"] == 52
        assert 0 < calibration["alpha_test"] < calibration["alpha_evaluation"] < 1e-3
        psi = calibration["critical_values"]["amount"]["psi"]
        assert 0 < psi < 0.2
        assert calibration["overridden"] == {}

        # The threshold lines are the calibrated critical values.
        line = run.metric("driftmon_drift_threshold", model="fraud", feature="amount", test="psi")
        assert line == pytest.approx(psi)
        shown = model["last_evaluation"]["features"]["amount"]["thresholds"]["psi"]
        assert shown == pytest.approx(psi)
        assert run.metric("driftmon_retrain_suppressed_total", model="fraud") == 0.0
        assert run.metric("driftmon_retrain_triggers_total", model="fraud") == 1.0
