"""Each format delivered by the dispatcher to a real HTTP server checking the documented shape."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from monitor.webhooks.config import WebhookConfig
from monitor.webhooks.delivery import WebhookDispatcher, send_test_event
from monitor.webhooks.event import DriftedFeature, DriftEvent
from tests.support.webhook import RecordedRequest, Reply, WebhookReceiver
from tests.support.webhook_metrics import webhook_metrics

pytestmark = pytest.mark.integration

WHSEC = "whsec_" + base64.b64encode(b"integration-signing-key-32-bytes").decode()
TOKEN = "gh-token-INTEGRATION-0042"
ENV = {"SECRET": WHSEC, "TOKEN": TOKEN, "AF_USER": "admin", "AF_PASS": "af-pass-INTEGRATION"}
EVENT = DriftEvent(
    id="0f8e-drift-0001",
    time="2026-11-26T12:00:00Z",
    model="fraud",
    window_events=5000,
    window_start=1_795_694_400.0,
    window_end=1_795_695_000.0,
    drifted_features=(DriftedFeature("amount", "psi", 0.42, 0.2),),
    features_monitored=8,
)
FAST = {"max_attempts": 3, "initial_backoff_seconds": 0.05, "max_backoff_seconds": 0.2}


def check_generic(r: RecordedRequest) -> Reply:
    from standardwebhooks.webhooks import Webhook

    assert r.method == "POST" and r.path == "/hook"
    payload = Webhook(WHSEC).verify(r.body, r.headers)
    assert payload["type"] == "driftmon.drift.detected" and payload["id"] == EVENT.id
    assert set(payload) >= {"type", "id", "time", "model", "window", "drifted_features", "summary"}
    return Reply(204)


def check_cloudevents(r: RecordedRequest) -> Reply:
    from ce_sdk import from_http

    event = from_http(r.headers, r.body)
    assert r.headers["content-type"].startswith("application/cloudevents+json")
    assert event["id"] == EVENT.id and event["type"] == "io.driftmon.drift.detected"
    assert event["source"] == "/driftmon/fraud" and event["time"]
    return Reply(202)


def check_cloudevents_binary(r: RecordedRequest) -> Reply:
    from ce_sdk import from_http

    assert r.headers["ce-specversion"] == "1.0" and r.headers["ce-id"] == EVENT.id
    event = from_http(r.headers, r.body)
    assert event.data["model"] == "fraud"
    return Reply(202)


def check_airflow(r: RecordedRequest) -> Reply:
    if r.path == "/auth/token":
        assert r.json() == {"username": "admin", "password": "af-pass-INTEGRATION"}
        return Reply(201, body={"access_token": "jwt-abc"})
    assert r.path == "/api/v2/dags/retrain_fraud/dagRuns"
    assert r.headers["authorization"] == "Bearer jwt-abc"
    body = r.json()
    assert "logical_date" in body and body["logical_date"] is None
    assert body["dag_run_id"] == f"driftmon__{EVENT.id}"
    assert body["conf"]["model"] == "fraud" and body["conf"]["id"] == EVENT.id
    return Reply(200, body={"dag_run_id": body["dag_run_id"], "state": "queued"})


def check_prefect(r: RecordedRequest) -> Reply:
    assert r.path == "/api/deployments/dep-1/create_flow_run"
    body = r.json()
    assert body["idempotency_key"] == EVENT.id
    assert body["parameters"]["event"]["model"] == "fraud"
    return Reply(201, body={"id": "run-1", "state_type": "SCHEDULED", "idempotency_key": EVENT.id})


def check_dagster(r: RecordedRequest) -> Reply:
    assert r.path == "/graphql"
    body = r.json()
    assert body["query"].startswith("mutation LaunchRun")
    params = body["variables"]["executionParams"]
    assert params["selector"]["jobName"] == "drift_retrain"
    config = params["runConfigData"]["ops"]["retrain"]["config"]
    assert json.loads(config["drift_event"])["id"] == EVENT.id
    run = {"runId": "r-1", "status": "QUEUED"}
    return Reply(200, body={"data": {"launchRun": {"__typename": "LaunchRunSuccess", "run": run}}})


def check_kubeflow(r: RecordedRequest) -> Reply:
    assert r.path == "/apis/v2beta1/runs"
    body = r.json()
    assert body["pipeline_version_reference"] == {"pipeline_id": "p", "pipeline_version_id": "v"}
    assert "parameters" in body["runtime_config"]
    return Reply(200, body={"run_id": "kfp-1", "state": "PENDING"})


def check_argo(r: RecordedRequest) -> Reply:
    assert r.path == "/api/v1/workflows/ml/submit"
    assert r.headers["authorization"] == f"Bearer {TOKEN}"
    body = r.json()
    assert body["resourceKind"] == "WorkflowTemplate" and body["resourceName"] == "retrain"
    assert any(p.startswith("drift_event=") for p in body["submitOptions"]["parameters"])
    return Reply(200, body={"metadata": {"name": "retrain-x7k2p", "uid": "u"}})


def check_github(r: RecordedRequest) -> Reply:
    assert r.path == "/repos/acme/ml/dispatches"
    assert r.headers["accept"] == "application/vnd.github+json"
    assert r.headers["authorization"] == f"Bearer {TOKEN}"
    body = r.json()
    assert body["event_type"] == "drift-retrain" and len(body["client_payload"]) <= 10
    return Reply(204)


def check_slack(r: RecordedRequest) -> Reply:
    body = r.json()
    assert "fraud" in body["text"] and "var-model=fraud" in json.dumps(body["blocks"])
    return Reply(200, {"content-type": "text/plain"}, b"ok")


CASES: dict[str, tuple[dict[str, Any], Callable[[RecordedRequest], Reply]]] = {
    "generic": ({"format": "generic", "path": "/hook", "secret_env": "SECRET"}, check_generic),
    "cloudevents": ({"format": "cloudevents", "path": "/ce"}, check_cloudevents),
    "cloudevents-binary": (
        {"format": "cloudevents", "path": "/ce", "params": {"mode": "binary"}},
        check_cloudevents_binary,
    ),
    "airflow3": (
        {
            "format": "airflow",
            "path": "/api/v2/dags/retrain_fraud/dagRuns",
            "auth": {"basic": {"username_env": "AF_USER", "password_env": "AF_PASS"}},
        },
        check_airflow,
    ),
    "prefect": (
        {"format": "prefect", "path": "/api", "params": {"deployment_id": "dep-1"}},
        check_prefect,
    ),
    "dagster": (
        {
            "format": "dagster",
            "path": "/graphql",
            "params": {"location": "defs.py", "job": "drift_retrain", "op": "retrain"},
        },
        check_dagster,
    ),
    "kubeflow": (
        {
            "format": "kubeflow",
            "path": "/apis/v2beta1/runs",
            "params": {"pipeline_id": "p", "pipeline_version_id": "v"},
        },
        check_kubeflow,
    ),
    "argo": (
        {
            "format": "argo",
            "path": "/api/v1/workflows/ml/submit",
            "auth": {"bearer_token_env": "TOKEN"},
            "params": {"template": "retrain"},
        },
        check_argo,
    ),
    "github": (
        {
            "format": "github",
            "path": "/repos/acme/ml/dispatches",
            "auth": {"bearer_token_env": "TOKEN"},
        },
        check_github,
    ),
    "slack": (
        {
            "format": "slack",
            "path": "/services/T0/B0/x",
            "params": {"grafana_url": "https://grafana.example/d/dm?var-model={model}"},
        },
        check_slack,
    ),
}


def webhook_for(case: str, base_url: str) -> WebhookConfig:
    spec = dict(CASES[case][0])
    path = spec.pop("path")
    return WebhookConfig.model_validate(
        {"name": case, "url": base_url + path, "retry": FAST, "timeout_seconds": 5, **spec}
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_format_delivered_to_real_server(case: str) -> None:
    with WebhookReceiver(handler=CASES[case][1]) as receiver:
        registry = CollectorRegistry()
        dispatcher = WebhookDispatcher(
            [webhook_for(case, receiver.url)],
            state_dir=None,
            metrics=webhook_metrics(registry),
            env=ENV,
        )
        dispatcher.start()
        dispatcher.submit(EVENT)
        assert dispatcher.flush(10.0)
        dispatcher.stop(2.0)
    assert receiver.errors == []
    delivered = registry.get_sample_value(
        "driftmon_webhook_deliveries_total", {"webhook": case, "outcome": "delivered"}
    )
    assert delivered == 1


@pytest.mark.parametrize("case", ["generic", "airflow3", "slack"])
def test_send_test_event_to_real_server(case: str) -> None:
    def handler(r: RecordedRequest) -> Reply:
        if r.path == "/auth/token":
            return Reply(201, body={"access_token": "jwt-abc"})
        payload = r.json()
        text = json.dumps(payload)
        assert "test-" in text, "test events carry a test- id"
        if case == "airflow3":
            assert payload["conf"]["test"] is True
            return Reply(200, body={"dag_run_id": payload["dag_run_id"], "state": "queued"})
        if case == "slack":
            assert payload["text"].startswith("[TEST")
            return Reply(200, {"content-type": "text/plain"}, b"ok")
        assert payload["test"] is True
        return Reply(200, body={"ok": True})

    with WebhookReceiver(handler=handler) as receiver:
        result = send_test_event(webhook_for(case, receiver.url), ENV)
    assert receiver.errors == []
    assert result.ok, result.detail
    assert result.event_id.startswith("test-") and result.status == 200
    assert result.elapsed_seconds < 5
