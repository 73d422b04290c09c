"""``prefect``: create a flow run from a Prefect 3 deployment.

Request::

    POST <api>/deployments/<deployment_id>/create_flow_run
    {"parameters": {<params.parameters>, "<params.event_parameter>": <the generic drift payload>},
     "tags": ["driftmon", "drift-model:<model>"], "idempotency_key": <event id>}

``url`` is either that full endpoint or the API base (``http://host:4200/api``) together
with ``params.deployment_id``. The flow must accept the event parameter (default name
``event``, a dict); set ``event_parameter: null`` to send only the static ``parameters``.
Auth: none (open source), ``basic`` (``PREFECT_SERVER_API_AUTH_STRING``) or a bearer API
key (Prefect Cloud).

Success: 201, or 200 when the idempotency key was seen before (Prefect returns the run it
already created, so a retry never starts a second run). 409 (parameters rejected by the
flow's schema) and 404 (unknown deployment) are final.
"""

from __future__ import annotations

import re
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
    json_request,
    only_params,
    str_param,
    url_of,
)

_ENDPOINT = re.compile(r"/deployments/[^/]+/create_flow_run$")
_PARAMS = {"deployment_id", "parameters", "event_parameter", "tags"}


def endpoint(webhook: WebhookConfig) -> str:
    """The create_flow_run URL."""
    url = url_of(webhook)
    deployment = webhook.params.get("deployment_id")
    return f"{url}/deployments/{deployment}/create_flow_run" if deployment else url


def render(event: DriftEvent, ctx: RenderContext) -> WebhookRequest:
    """Render the create_flow_run POST."""
    params = ctx.webhook.params
    parameters: dict[str, Any] = dict(params.get("parameters", {}))
    name = params.get("event_parameter", "event")
    if name is not None:
        parameters[str(name)] = drift_payload(event)
    tags = ["driftmon", f"drift-model:{event.model}", *params.get("tags", [])]
    if event.test:
        tags.append("driftmon-test")
    body = {"parameters": parameters, "tags": tags, "idempotency_key": event.id}
    return json_request(ctx, endpoint(ctx.webhook), body)


def check(response: WebhookResponse) -> str:
    """201 (created) or 200 (the run created earlier for this idempotency key)."""
    data = response.json()
    if response.status in (200, 201) and isinstance(data, dict) and data.get("id"):
        replay = " (existing run for this idempotency key)" if response.status == 200 else ""
        return f"flow run {data['id']} {data.get('state_type', '')}{replay}".strip()
    raise fail_status(response, "201, or 200 with the run for a replayed idempotency key")


def validate(webhook: WebhookConfig) -> list[tuple[str, str]]:
    """Either a full create_flow_run URL or ``deployment_id``."""
    problems: list[tuple[str, str]] = []
    only_params(webhook, _PARAMS, problems)
    deployment = str_param(webhook, "deployment_id", problems)
    if deployment is None and not _ENDPOINT.search(url_of(webhook)):
        problems.append(
            ("deployment_id", "is required unless url ends with /deployments/<id>/create_flow_run")
        )
    dict_param(webhook, "parameters", problems)
    name = webhook.params.get("event_parameter", "event")
    if name is not None and (not isinstance(name, str) or not name):
        problems.append(("event_parameter", "must be a parameter name or null"))
    tags = webhook.params.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        problems.append(("tags", "must be a list of strings"))
    return problems


FORMAT = Format("prefect", render, check, validate)
