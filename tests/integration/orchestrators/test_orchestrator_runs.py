"""driftmon starts real retraining runs: a Prefect 3 flow run and an Airflow 3 DAG run.

Each test builds (or reuses) the orchestrator's pinned venv, starts the orchestrator on
127.0.0.1 with SQLite in a temporary directory, runs the real daemon against the test
broker on a stream that drifts, and checks that exactly one run was created, that it ran
to completion, and that it received the drift event as its parameters / ``conf``.
Timings (venv, start-up, drift to finished run, shutdown) are printed; run with ``-s``
to see them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.demo import synthetic
from tests.conftest import Env
from tests.integration.daemon_harness import events, write_config, write_reference
from tests.integration.orchestrators.servers import AirflowStandalone, PrefectServer
from tests.integration.orchestrators.venvs import ensure_venv
from tests.support.daemon import RunningDaemon
from tests.support.kafka import produce
from tests.support.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

DRIFTED = set(synthetic.DRIFTED_FEATURES)


def report(name: str, timings: dict[str, float]) -> None:
    figures = ", ".join(f"{k}={v:.1f}" for k, v in timings.items())
    print(f"\n[{name}] {figures}")


def produce_drifting_stream(bootstrap: str, topic: str) -> None:
    """8000 clean events then 8000 drifted ones: drift is confirmed once, on DRIFTED."""
    clean = events(8000, seed=1)
    drifted = events(8000, seed=2, drift=True, start_ts=1_764_150_100.0, id_offset=8000)
    produce(bootstrap, topic, clean + drifted, key=synthetic.MODEL)


def daemon_config(tmp_path: Path, bootstrap: str, topic: str, webhook_yaml: str) -> Path:
    """The end-to-end config with one orchestrator webhook and a durable outbox."""
    return write_config(
        tmp_path,
        bootstrap=bootstrap,
        topic=topic,
        group=f"{topic}-g",
        reference=write_reference(tmp_path),
        extra=f"state: {{dir: {tmp_path / 'state'}}}\nwebhooks:\n{webhook_yaml}",
    )


def wait_for_record(received: Path, timeout: float) -> dict[str, Any]:
    """The single record the flow / task wrote; fails if none or several appear."""
    wait_until(lambda: any(received.glob("*.json")), timeout, "the run to record its input")
    time.sleep(1.0)  # a second run, if one were started, would have shown up by now
    files = sorted(received.glob("*.json"))
    assert len(files) == 1, [f.name for f in files]
    record: dict[str, Any] = json.loads(files[0].read_text())
    return record


def assert_is_the_drift_event(payload: dict[str, Any]) -> None:
    assert payload["type"] == "driftmon.drift.detected"
    assert payload["model"] == synthetic.MODEL
    assert {f["feature"] for f in payload["drifted_features"]} == DRIFTED
    assert payload["summary"]["features_drifted"] == len(DRIFTED)
    assert payload["window"]["events"] > 0 and payload["id"]


# --- Prefect 3 ---------------------------------------------------------------------------


@pytest.fixture
def prefect(tmp_path: Path) -> Iterator[PrefectServer]:
    venv = ensure_venv("prefect")
    server = PrefectServer(venv, tmp_path / "prefect")
    server.timings["venv_seconds"] = venv.seconds
    try:
        yield server.start()
    finally:
        server.stop()
        report(f"prefect, {venv.describe()}", server.timings)
    assert not server.leftovers, f"processes needed SIGKILL: {server.leftovers}"


def test_drift_starts_a_prefect_flow_run_with_the_event_as_parameters(
    prefect: PrefectServer, tmp_path: Path, kafka_bootstrap: str, kafka_topic, env: Env
) -> None:
    topic = kafka_topic(partitions=3)
    config = daemon_config(
        tmp_path,
        kafka_bootstrap,
        topic,
        "  - name: retrain-prefect\n"
        "    format: prefect\n"
        f"    url: {prefect.api}\n"
        "    params:\n"
        f"      deployment_id: {prefect.deployment_id}\n"
        "      parameters: {reason: drift-confirmed}\n"
        "    timeout_seconds: 30\n"
        "    retry: {max_attempts: 30, initial_backoff_seconds: 0.5, max_backoff_seconds: 5}\n",
    )
    produce_drifting_stream(kafka_bootstrap, topic)

    started = time.monotonic()
    with RunningDaemon(config) as run:
        wait_until(
            lambda: (
                run.metric(
                    "driftmon_webhook_deliveries_total",
                    webhook="retrain-prefect",
                    outcome="delivered",
                )
                == 1.0
            ),
            240,  # a loaded CI box can take minutes; the run itself takes seconds
            "the flow run to be created",
        )
        prefect.timings["drift_to_run_created_seconds"] = time.monotonic() - started
        record = wait_for_record(prefect.received, 60)
        prefect.timings["drift_to_run_finished_seconds"] = time.monotonic() - started
        assert run.metric("driftmon_webhook_pending", webhook="retrain-prefect") == 0.0
        assert (
            run.metric(
                "driftmon_webhook_deliveries_total", webhook="retrain-prefect", outcome="failed"
            )
            == 0.0
        )

    # The flow received the drift event as its `event` parameter, plus the static one.
    event = record["event"]
    assert_is_the_drift_event(event)
    assert record["reason"] == "drift-confirmed"

    # Exactly one run, created with the event id as idempotency key, and completed.
    runs = prefect.flow_runs()
    assert [r["id"] for r in runs] == [record["flow_run_id"]]
    wait_until(
        lambda: prefect.flow_run(record["flow_run_id"])["state_type"] == "COMPLETED",
        30,
        "the flow run to complete",
    )
    flow_run = prefect.flow_run(record["flow_run_id"])
    assert flow_run["idempotency_key"] == event["id"]
    assert flow_run["parameters"] == {"event": event, "reason": "drift-confirmed"}
    assert "driftmon" in flow_run["tags"] and f"drift-model:{synthetic.MODEL}" in flow_run["tags"]


# --- Airflow 3 ---------------------------------------------------------------------------


@pytest.fixture
def airflow(tmp_path: Path) -> Iterator[AirflowStandalone]:
    venv = ensure_venv("airflow")
    server = AirflowStandalone(venv, tmp_path / "airflow")
    server.timings["venv_seconds"] = venv.seconds
    try:
        yield server.start()
    finally:
        server.stop()
        report(f"airflow, {venv.describe()}", server.timings)
    assert not server.leftovers, f"processes survived SIGINT: {server.leftovers}"


def test_drift_starts_an_airflow_dag_run_with_the_event_as_conf(
    airflow: AirflowStandalone, tmp_path: Path, kafka_bootstrap: str, kafka_topic, env: Env
) -> None:
    # The password comes from a file and is exchanged for a token at /auth/token.
    password_file = tmp_path / "airflow-password"
    password_file.write_text(airflow.password + "\n")
    env.set("DRIFTMON_TEST_AIRFLOW_USER", airflow.USER)
    topic = kafka_topic(partitions=3)
    config = daemon_config(
        tmp_path,
        kafka_bootstrap,
        topic,
        "  - name: retrain-airflow\n"
        "    format: airflow\n"
        f"    url: {airflow.base_url}\n"
        "    auth:\n"
        "      basic:\n"
        "        username_env: DRIFTMON_TEST_AIRFLOW_USER\n"
        f"        password_file: {password_file}\n"
        "    params:\n"
        f"      dag_id: {airflow.DAG_ID}\n"
        "      conf: {reason: drift-confirmed}\n"
        "    timeout_seconds: 30\n"
        "    retry: {max_attempts: 30, initial_backoff_seconds: 0.5, max_backoff_seconds: 5}\n",
    )
    produce_drifting_stream(kafka_bootstrap, topic)

    started = time.monotonic()
    with RunningDaemon(config) as run:
        wait_until(
            lambda: (
                run.metric(
                    "driftmon_webhook_deliveries_total",
                    webhook="retrain-airflow",
                    outcome="delivered",
                )
                == 1.0
            ),
            240,  # a loaded CI box can take minutes; the run itself takes seconds
            "the DAG run to be created",
        )
        airflow.timings["drift_to_run_created_seconds"] = time.monotonic() - started
        record = wait_for_record(airflow.received, 180)
        airflow.timings["drift_to_run_finished_seconds"] = time.monotonic() - started
        assert (
            run.metric(
                "driftmon_webhook_deliveries_total", webhook="retrain-airflow", outcome="failed"
            )
            == 0.0
        )

    # The task received the drift event as dag_run.conf, with the static conf merged in.
    conf = record["conf"]
    assert conf["reason"] == "drift-confirmed"
    assert_is_the_drift_event(conf)

    # Exactly one DAG run, named after the event id, and it succeeded.
    runs = airflow.dag_runs()
    assert [r["dag_run_id"] for r in runs] == [record["dag_run_id"]]
    assert record["dag_run_id"] == f"driftmon__{conf['id']}"
    dag_run_path = f"/api/v2/dags/{airflow.DAG_ID}/dagRuns/{record['dag_run_id']}"
    wait_until(
        lambda: airflow.get(dag_run_path).json()["state"] == "success",
        60,
        "the DAG run to succeed",
    )
    assert airflow.get(dag_run_path).json()["conf"] == conf
