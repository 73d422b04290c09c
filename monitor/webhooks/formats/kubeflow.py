"""``kubeflow``: create a Kubeflow Pipelines v2 run (API v2beta1).

Request::

    POST <url>                       (…/apis/v2beta1/runs)
    authorization: Bearer <token>
    {"display_name": "driftmon-<model>-<event id>",
     "description": "...",
     "experiment_id": <params.experiment_id, optional>,
     "pipeline_version_reference": {"pipeline_id": ..., "pipeline_version_id": ...},
     "runtime_config": {"parameters": {<params.parameters>,
                                       "<params.event_parameter>": <drift payload as JSON text>}},
     "service_account": <params.service_account, optional>}

The event is passed as one string parameter (default ``drift_event``) holding the JSON
payload, because pipeline parameters are typed and a string fits any pipeline. KFP has no
idempotency key; the event id is in ``display_name``. Success: 200 with a ``run_id``.
"""

from __future__ import annotations

from typing import Any

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

_PARAMS = {
    "pipeline_id",
    "pipeline_version_id",
    "experiment_id",
    "service_account",
    "parameters",
    "event_parameter",
}


def render(event: DriftEvent, ctx: RenderContext) -> WebhookRequest:
    """Render the runs POST."""
    params = ctx.webhook.params
    runtime: dict[str, Any] = dict(params.get("parameters", {}))
    runtime[str(params.get("event_parameter", "drift_event"))] = json_body(
        drift_payload(event)
    ).decode()
    test = "TEST event, not a real drift: " if event.test else ""
    body: dict[str, Any] = {
        "display_name": f"driftmon-{event.model}-{event.id}",
        "description": f"driftmon {test}{event.kind} detected on {event.model} (event {event.id})",
        "pipeline_version_reference": {
            "pipeline_id": params["pipeline_id"],
            "pipeline_version_id": params["pipeline_version_id"],
        },
        "runtime_config": {"parameters": runtime},
    }
    for key in ("experiment_id", "service_account"):
        if params.get(key):
            body[key] = params[key]
    return json_request(ctx, url_of(ctx.webhook), body)


def check(response: WebhookResponse) -> str:
    """200 with the created run's ``run_id``."""
    data = response.json()
    if response.status == 200 and isinstance(data, dict) and data.get("run_id"):
        return f"run {data['run_id']} {data.get('state', '')}".strip()
    raise fail_status(response, "200 with run_id")


def validate(webhook: WebhookConfig) -> list[tuple[str, str]]:
    """``pipeline_id`` and ``pipeline_version_id`` are required."""
    problems: list[tuple[str, str]] = []
    only_params(webhook, _PARAMS, problems)
    str_param(webhook, "pipeline_id", problems, required=True)
    str_param(webhook, "pipeline_version_id", problems, required=True)
    str_param(webhook, "experiment_id", problems)
    str_param(webhook, "service_account", problems)
    str_param(webhook, "event_parameter", problems)
    dict_param(webhook, "parameters", problems)
    return problems


FORMAT = Format("kubeflow", render, check, validate)
