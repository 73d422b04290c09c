"""Each format's rendered request against its target's documented shape, and its check."""

from __future__ import annotations

import base64
import json
import math
import time
from typing import Any

import pytest
from webhook_samples import ENV, PASSWORD, TOKEN, WHSEC, context, make_event, make_webhook

from monitor.errors import ConfigError, DeliveryRejected, DeliveryRetryable
from monitor.webhooks.formats import (
    FORMATS,
    WebhookResponse,
    airflow,
    argo,
    dagster,
    drift_payload,
    github,
    slack,
    validate_webhook,
)


def response(
    status: int, body: Any = b"", headers: dict[str, str] | None = None
) -> WebhookResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookResponse(status, headers or {}, raw)


def render(fmt: str, event: Any = None, token: str | None = None, **kw: Any) -> Any:
    webhook = make_webhook(fmt, **kw)
    validate_webhook(webhook)
    # Signatures carry the attempt time; receivers refuse stale ones, so use the real clock.
    return FORMATS[fmt].render(event or make_event(), context(webhook, token, time.time()))


def test_generic_payload_is_exactly_the_documented_one() -> None:
    request = render("generic", url="https://hooks.example/drift")
    assert (request.method, request.url) == ("POST", "https://hooks.example/drift")
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "type": "driftmon.drift.detected",
        "id": "evt-0001",
        "time": "2026-11-26T12:26:40Z",
        "model": "fraud",
        "window": {"events": 5000, "start": "2026-11-26T12:16:40Z", "end": "2026-11-26T12:26:40Z"},
        "drifted_features": [
            {
                "feature": "amount",
                "test": "psi",
                "score": 0.42,
                "threshold": 0.2,
                "p_value": None,
                "compared": "score",
                "score_threshold": 0.2,
            },
            # The ks threshold is a p-value threshold: `compared` says so, and names it.
            {
                "feature": "amount",
                "test": "ks",
                "score": 0.31,
                "threshold": 0.001,
                "p_value": 1e-6,
                "compared": "p_value",
                "p_value_threshold": 0.001,
            },
            {
                "feature": "country",
                "test": "js",
                "score": 0.15,
                "threshold": 0.1,
                "p_value": None,
                "compared": "score",
                "score_threshold": 0.1,
            },
        ],  # fmt: skip
        "summary": {"features_monitored": 12, "features_drifted": 2},
    }
    # Unsigned without secret_env, but the id is still there for dedupe.
    assert request.headers["webhook-id"] == "evt-0001"
    assert "webhook-signature" not in request.headers


def test_payload_marks_tests_and_nulls_non_finite_scores() -> None:
    from monitor.webhooks.event import DriftedFeature

    event = make_event(test=True, drifted_features=(DriftedFeature("a", "kl", math.inf, 0.1),))
    payload = drift_payload(event)
    assert payload["test"] is True
    assert payload["drifted_features"][0]["score"] is None


def test_missing_ratio_entries_name_the_increase_they_compare() -> None:
    from monitor.webhooks.event import DriftedFeature, DriftEvent

    check = DriftedFeature(
        "velocity", "missing_ratio", 1.0, 0.1, compared="missing_ratio_increase",
        missing_ratio_increase=0.98,
    )  # fmt: skip
    [entry] = drift_payload(make_event(drifted_features=(check,)))["drifted_features"]
    assert entry["compared"] == "missing_ratio_increase"
    assert entry["missing_ratio_increase"] == 0.98
    assert entry["missing_ratio_increase_threshold"] == 0.1
    assert check.describe() == "missing_ratio missing_ratio_increase 0.98 > 0.1 (missing ratio 1)"
    # Events stored in the outbox before `compared` existed read back sensibly.
    stored = make_event().to_dict()
    for f in stored["drifted_features"]:
        del f["compared"], f["missing_ratio_increase"]
    assert [f.compared for f in DriftEvent.from_dict(stored).drifted_features] == [
        "score", "p_value", "score"
    ]  # fmt: skip
    assert DriftEvent.from_dict(make_event().to_dict()) == make_event()


def test_same_event_renders_same_body_every_attempt() -> None:
    first = render("airflow", url="http://af/api/v2/dags/retrain/dagRuns")
    second = render("airflow", url="http://af/api/v2/dags/retrain/dagRuns")
    assert first.body == second.body


def test_cloudevents_structured_parses_with_sdk() -> None:
    from cloudevents_compat import from_http

    request = render("cloudevents", secret_env="WH_SECRET")
    assert request.headers["content-type"] == "application/cloudevents+json"
    event = from_http(dict(request.headers), request.body)
    assert event["specversion"] == "1.0"
    assert event["id"] == "evt-0001"
    assert event["type"] == "io.driftmon.drift.detected"
    assert event["source"] == "/driftmon/fraud"
    assert event["time"] and event.data["model"] == "fraud"
    # Signed too, over the exact body.
    from standardwebhooks.webhooks import Webhook

    Webhook(WHSEC).verify(request.body, dict(request.headers))


def test_cloudevents_binary_parses_with_sdk() -> None:
    from cloudevents_compat import from_http

    request = render("cloudevents", params={"mode": "binary", "source": "/ml/{model}"})
    assert request.headers["ce-id"] == "evt-0001"
    assert request.headers["content-type"] == "application/json"
    event = from_http(dict(request.headers), request.body)
    assert event["source"] == "/ml/fraud"
    assert event["subject"] == "fraud"
    assert event.data == drift_payload(make_event())


def test_airflow3_body_and_bearer() -> None:
    request = render(
        "airflow",
        url="https://af.example/api/v2/dags/retrain_fraud/dagRuns",
        auth={"bearer_token_env": "WH_TOKEN"},
        params={"conf": {"team": "risk"}},
    )
    assert request.url == "https://af.example/api/v2/dags/retrain_fraud/dagRuns"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    body = request.json()
    assert body["dag_run_id"] == "driftmon__evt-0001"
    assert "logical_date" in body and body["logical_date"] is None  # v2 requires the key
    assert body["conf"]["team"] == "risk" and body["conf"]["model"] == "fraud"
    assert TOKEN not in repr(request)


def test_airflow3_token_exchange_and_fetched_token_use() -> None:
    webhook = make_webhook(
        "airflow",
        url="http://af:8080",
        auth={"basic": {"username_env": "WH_USER", "password_env": "WH_PASSWORD"}},
        params={"dag_id": "retrain"},
    )
    token_request = airflow.token_request(context(webhook))
    assert token_request is not None
    assert token_request.url == "http://af:8080/auth/token"
    assert token_request.json() == {"username": "admin", "password": PASSWORD}
    assert PASSWORD not in repr(token_request) or "***" in repr(token_request)
    assert airflow.parse_token(response(201, {"access_token": "jwt"})) == "jwt"
    with pytest.raises(DeliveryRejected):
        airflow.parse_token(response(401, {"detail": "Invalid credentials"}))
    request = airflow.render(make_event(), context(webhook, token="jwt"))
    assert request.url == "http://af:8080/api/v2/dags/retrain/dagRuns"
    assert request.headers["authorization"] == "Bearer jwt"  # never Basic on v2


def test_airflow2_basic_auth_v1_without_logical_date() -> None:
    request = render(
        "airflow",
        url="http://af2:8080/api/v1/dags/retrain/dagRuns",
        auth={"basic": {"username_env": "WH_USER", "password_env": "WH_PASSWORD"}},
    )
    expected = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert "logical_date" not in request.json()
    webhook = make_webhook("airflow", url="http://af2:8080/api/v1/dags/retrain/dagRuns")
    assert airflow.token_request(context(webhook)) is None


def test_airflow_check() -> None:
    assert "queued" in airflow.check(response(200, {"state": "queued", "dag_run_id": "x"}))
    assert "already" in airflow.check(response(409, {"detail": "Unique constraint violation"}))
    with pytest.raises(DeliveryRejected):
        airflow.check(response(422, {"detail": [{"loc": ["body", "logical_date"]}]}))
    with pytest.raises(DeliveryRejected):
        airflow.check(response(200, {"state": "failed"}))
    with pytest.raises(DeliveryRetryable):
        airflow.check(response(503, b"busy"))


def test_prefect_request_and_check() -> None:
    request = render(
        "prefect",
        url="http://127.0.0.1:4200/api",
        params={"deployment_id": "bc69d477", "parameters": {"reason": "drift"}},
    )
    assert request.url == "http://127.0.0.1:4200/api/deployments/bc69d477/create_flow_run"
    body = request.json()
    assert body["idempotency_key"] == "evt-0001"
    assert body["parameters"]["reason"] == "drift"
    assert body["parameters"]["event"]["id"] == "evt-0001"
    assert "driftmon" in body["tags"]
    check = FORMATS["prefect"].check
    assert "SCHEDULED" in check(response(201, {"id": "r1", "state_type": "SCHEDULED"}))
    assert "existing run" in check(response(200, {"id": "r1", "state_type": "SCHEDULED"}))
    with pytest.raises(DeliveryRejected):
        check(response(409, {"detail": "Validation failed for field 'drift_score'"}))
    with pytest.raises(DeliveryRejected):
        check(response(404, {"detail": "Deployment not found"}))


def test_dagster_mutation_and_typename_check() -> None:
    request = render(
        "dagster",
        url="http://127.0.0.1:3000/graphql",
        params={"location": "defs.py", "job": "drift_retrain", "op": "retrain"},
    )
    body = request.json()
    assert "launchRun(executionParams: $executionParams)" in body["query"]
    params = body["variables"]["executionParams"]
    assert params["selector"] == {
        "repositoryLocationName": "defs.py",
        "repositoryName": "__repository__",
        "jobName": "drift_retrain",
    }
    event_json = params["runConfigData"]["ops"]["retrain"]["config"]["drift_event"]
    assert json.loads(event_json)["id"] == "evt-0001"
    assert {"key": "driftmon/event_id", "value": "evt-0001"} in params["executionMetadata"]["tags"]
    ok = {"data": {"launchRun": {"__typename": "LaunchRunSuccess", "run": {"runId": "r9"}}}}
    assert "r9" in dagster.check(response(200, ok))
    invalid = {"data": {"launchRun": {"__typename": "RunConfigValidationInvalid", "errors": []}}}
    with pytest.raises(DeliveryRejected, match="RunConfigValidationInvalid"):
        dagster.check(response(200, invalid))
    with pytest.raises(DeliveryRejected):
        dagster.check(response(200, {"errors": [{"message": "syntax"}]}))


def test_kubeflow_run_shape() -> None:
    request = render(
        "kubeflow",
        url="https://kfp.example/apis/v2beta1/runs",
        auth={"bearer_token_env": "WH_TOKEN"},
        params={"pipeline_id": "p1", "pipeline_version_id": "v1", "experiment_id": "e1"},
    )
    body = request.json()
    assert body["pipeline_version_reference"] == {"pipeline_id": "p1", "pipeline_version_id": "v1"}
    assert body["experiment_id"] == "e1"
    assert "evt-0001" in body["display_name"]
    assert json.loads(body["runtime_config"]["parameters"]["drift_event"])["model"] == "fraud"
    check = FORMATS["kubeflow"].check
    assert "run-1" in check(response(200, {"run_id": "run-1", "state": "PENDING"}))
    with pytest.raises(DeliveryRejected):
        check(response(200, {}))


def test_argo_submit_shape() -> None:
    request = render(
        "argo",
        url="https://argo.example/api/v1/workflows/ml/submit",
        auth={"bearer_token_env": "WH_TOKEN"},
        params={"template": "retrain", "parameters": {"dataset": "s3://x"}},
    )
    body = request.json()
    assert body["namespace"] == "ml"
    assert (body["resourceKind"], body["resourceName"]) == ("WorkflowTemplate", "retrain")
    options = body["submitOptions"]
    assert options["generateName"] == "retrain-"
    assert "dataset=s3://x" in options["parameters"]
    assert all(isinstance(p, str) and "=" in p for p in options["parameters"])
    assert "driftmon/event-id=evt-0001" in options["labels"]
    assert argo.label_value("a b/c" * 30)[-1].isalnum() and len(argo.label_value("x" * 99)) == 63
    assert "retrain-abc" in argo.check(response(200, {"metadata": {"name": "retrain-abc"}}))


def test_github_dispatch_shape_and_key_limit() -> None:
    request = render(
        "github",
        url="https://api.github.com/repos/acme/ml/dispatches",
        auth={"bearer_token_env": "WH_TOKEN"},
        params={"client_payload": {"env": "prod"}},
    )
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.headers["x-github-api-version"] == "2022-11-28"
    body = request.json()
    assert body["event_type"] == "drift-retrain"
    assert len(body["client_payload"]) <= 10
    assert body["client_payload"]["event_id"] == "evt-0001"
    assert body["client_payload"]["env"] == "prod"
    big = make_event(extra={f"k{i}": i for i in range(20)})
    assert len(github.client_payload(big, {"a": 1, "b": 2})) == 10
    assert github.check(response(204))
    with pytest.raises(ConfigError, match="top-level keys"):
        validate_webhook(
            make_webhook("github", params={"client_payload": {"a": 1, "b": 2, "c": 3}})
        )


def test_slack_message_is_readable_with_grafana_link() -> None:
    request = render(
        "slack",
        params={
            "grafana_url": "https://grafana.example/d/dm?var-model={model}&from={from}&to={to}"
        },
    )
    body = request.json()
    assert body["text"].startswith("Drift detected on model fraud: 2 of 12 features drifted")
    text = json.dumps(body["blocks"])
    assert "amount" in text and "0.42" in text and "country" in text
    # What is compared with what, never a statistic beside a p-value threshold unexplained.
    lines = body["blocks"][1]["text"]["text"].split("\n")
    assert lines == [  # mrkdwn escapes < and >; Slack shows them as written
        "• `amount` psi score 0.42 &gt; 0.2",
        "• `amount` ks p_value 1e-06 &lt; 0.001 (statistic 0.31)",
        "• `country` js score 0.15 &gt; 0.1",
    ]
    assert "var-model=fraud&from=1795695400000&to=1795696000000" in text
    test_message = slack.render(make_event(test=True), context(make_webhook("slack")))
    assert test_message.json()["text"].startswith("[TEST")


@pytest.mark.parametrize(
    ("fmt", "params", "key"),
    [
        ("prefect", {}, "deployment_id"),
        ("kubeflow", {"pipeline_id": "p"}, "pipeline_version_id"),
        ("argo", {"namespace": "ml"}, "template"),
        ("dagster", {"job": "j"}, "location"),
        ("airflow", {}, "dag_id"),
        ("cloudevents", {"mode": "xml"}, "mode"),
        ("generic", {"typo": 1}, "typo"),
    ],
)
def test_params_are_validated_with_key_paths(fmt: str, params: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"webhooks\.wh-{fmt}\.params\.{key}"):
        validate_webhook(make_webhook(fmt, url="http://x/y", params=params))


def test_every_format_renders_a_test_event() -> None:
    params = {
        "prefect": {"deployment_id": "d"},
        "kubeflow": {"pipeline_id": "p", "pipeline_version_id": "v"},
        "argo": {"template": "t", "namespace": "n"},
        "dagster": {"location": "l", "job": "j"},
        "airflow": {"dag_id": "d"},
    }
    event = make_event("test-123", test=True)
    for name, fmt in FORMATS.items():
        webhook = make_webhook(name, url="http://x", params=params.get(name, {}))
        request = fmt.render(event, context(webhook))
        assert b"test-123" in request.body, name
    assert ENV  # the sample env resolves every variable used above


def test_a_versioned_event_names_its_version_in_every_shape() -> None:
    event = make_event(version="v2")
    payload = drift_payload(event)
    assert payload["version"] == "v2"
    assert "version" not in drift_payload(make_event())  # unversioned: the documented keys
    client = github.client_payload(event, {"a": 1, "b": 2})
    assert len(client) == 10 and client["summary"]["version"] == "v2"
    assert "(version v2)" in slack.headline(event)
    assert "version" not in slack.headline(make_event())
    assert type(event).from_dict(event.to_dict()) == event
    assert type(event).from_dict({**make_event().to_dict(), "version": None}).version is None
