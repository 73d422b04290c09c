"""``dagster``: launch a job run with the GraphQL ``launchRun`` mutation.

Request::

    POST <url>                     (…/graphql)
    {"query": "mutation LaunchRun($executionParams: ExecutionParams!) {
                 launchRun(...) { __typename ... } }",
     "variables": {"executionParams": {
        "selector": {"repositoryLocationName": <params.location>,
                     "repositoryName": <params.repository, default "__repository__">,
                     "jobName": <params.job>},
        "runConfigData": <params.run_config, plus
                          {"ops": {<params.op>: {"config": {"drift_event": <payload JSON text>}}}}
                          when params.op is set>,
        "executionMetadata": {"tags": [{"key": "driftmon/event_id", "value": <id>}, ...]}}}}

The op receives the event as a string config field (``params.config_key``, default
``drift_event``), which any op can declare. Dagster+ takes its token through
``auth.header: {name: Dagster-Cloud-Api-Token, value_env: ...}``.

Success: Dagster answers HTTP 200 even to errors, so success is only
``data.launchRun.__typename == "LaunchRunSuccess"``; any other type is final (the body
with its messages is logged). Dagster has no idempotency key; the event id is a run tag.
"""

from __future__ import annotations

from typing import Any

from monitor.errors import DeliveryRejected
from monitor.webhooks.config import WebhookConfig
from monitor.webhooks.event import DriftEvent
from monitor.webhooks.formats._base import (
    Format,
    RenderContext,
    WebhookRequest,
    WebhookResponse,
    dict_param,
    drift_payload,
    fail_status,
    json_body,
    json_request,
    only_params,
    str_param,
    url_of,
)

LAUNCH_RUN = (
    "mutation LaunchRun($executionParams: ExecutionParams!) {"
    " launchRun(executionParams: $executionParams) { __typename"
    " ... on LaunchRunSuccess { run { runId status } }"
    " ... on RunConfigValidationInvalid { errors { message } }"
    " ... on PipelineNotFoundError { message }"
    " ... on InvalidSubsetError { message }"
    " ... on RunConflict { message }"
    " ... on UnauthorizedError { message }"
    " ... on PythonError { message } } }"
)
_PARAMS = {"location", "repository", "job", "op", "config_key", "run_config"}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        old = merged.get(key)
        merged[key] = (
            _merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
        )
    return merged


def render(event: DriftEvent, ctx: RenderContext) -> WebhookRequest:
    """Render the launchRun mutation."""
    params = ctx.webhook.params
    run_config: dict[str, Any] = dict(params.get("run_config", {}))
    op = params.get("op")
    if op:
        key = str(params.get("config_key", "drift_event"))
        payload = json_body(drift_payload(event)).decode()
        run_config = _merge(run_config, {"ops": {op: {"config": {key: payload}}}})
    tags = [
        {"key": "driftmon/event_id", "value": event.id},
        {"key": "driftmon/model", "value": event.model},
    ]
    if event.test:
        tags.append({"key": "driftmon/test", "value": "true"})
    variables = {
        "executionParams": {
            "selector": {
                "repositoryLocationName": params["location"],
                "repositoryName": params.get("repository", "__repository__"),
                "jobName": params["job"],
            },
            "runConfigData": run_config,
            "executionMetadata": {"tags": tags},
        }
    }
    return json_request(ctx, url_of(ctx.webhook), {"query": LAUNCH_RUN, "variables": variables})


def check(response: WebhookResponse) -> str:
    """HTTP 200 and ``__typename == "LaunchRunSuccess"``."""
    data = response.json()
    if response.status != 200 or not isinstance(data, dict):
        raise fail_status(response, "200 with LaunchRunSuccess")
    result = (data.get("data") or {}).get("launchRun") or {}
    if result.get("__typename") == "LaunchRunSuccess":
        return f"run {(result.get('run') or {}).get('runId')}"
    kind = result.get("__typename") or "GraphQL error"
    raise DeliveryRejected(f"HTTP 200 but launchRun returned {kind}: {response.excerpt()}")


def validate(webhook: WebhookConfig) -> list[tuple[str, str]]:
    """``location`` and ``job`` are required."""
    problems: list[tuple[str, str]] = []
    only_params(webhook, _PARAMS, problems)
    str_param(webhook, "location", problems, required=True)
    str_param(webhook, "job", problems, required=True)
    for key in ("repository", "op", "config_key"):
        str_param(webhook, key, problems)
    dict_param(webhook, "run_config", problems)
    return problems


FORMAT = Format("dagster", render, check, validate)
