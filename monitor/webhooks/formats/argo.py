"""``argo``: submit an Argo Workflows WorkflowTemplate through argo-server.

Request::

    POST <url>                    (…/api/v1/workflows/<namespace>/submit)
    authorization: Bearer <token>
    {"namespace": <ns>, "resourceKind": "WorkflowTemplate", "resourceName": <params.template>,
     "submitOptions": {"generateName": "<template>-",
                       "parameters": ["<k>=<v>" per params.parameters,
                                      "drift_event=<payload JSON>"],
                       "labels": "driftmon/event-id=<id>,driftmon/model=<model>"}}

``url`` is either that endpoint or the argo-server base URL with ``params.namespace``.
``params.resource_kind`` may be ``ClusterWorkflowTemplate`` or ``CronWorkflow``. A token
that already starts with ``Bearer `` (as Argo's docs print it) is sent as is. Argo has no
idempotency key: the event id is a label on the workflow. Success: 200 with a workflow
``metadata.name``.
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
    json_body,
    json_request,
    only_params,
    str_param,
    url_of,
)

_ENDPOINT = re.compile(r"/api/v1/workflows/(?P<ns>[^/]+)/submit$")
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_KINDS = ("WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow")
_PARAMS = {
    "namespace",
    "template",
    "resource_kind",
    "generate_name",
    "parameters",
    "event_parameter",
}


def label_value(text: str) -> str:
    """A Kubernetes label value: at most 63 of ``[A-Za-z0-9_.-]``, alphanumeric at both ends."""
    return _LABEL_UNSAFE.sub("-", text)[:63].strip("-_.")


def endpoint(webhook: WebhookConfig) -> tuple[str, str]:
    """The submit URL and the namespace."""
    url = url_of(webhook)
    match = _ENDPOINT.search(url)
    if match:
        return url, match.group("ns")
    namespace = str(webhook.params.get("namespace", ""))
    return f"{url}/api/v1/workflows/{namespace}/submit", namespace


def render(event: DriftEvent, ctx: RenderContext) -> WebhookRequest:
    """Render the submit POST."""
    params = ctx.webhook.params
    url, namespace = endpoint(ctx.webhook)
    template = str(params["template"])
    parameters = [f"{k}={v}" for k, v in params.get("parameters", {}).items()]
    name = params.get("event_parameter", "drift_event")
    if name is not None:
        parameters.append(f"{name}={json_body(drift_payload(event)).decode()}")
    labels = f"driftmon/event-id={label_value(event.id)},driftmon/model={label_value(event.model)}"
    if event.test:
        labels += ",driftmon/test=true"
    body: dict[str, Any] = {
        "namespace": namespace,
        "resourceKind": params.get("resource_kind", "WorkflowTemplate"),
        "resourceName": template,
        "submitOptions": {
            "generateName": params.get("generate_name", f"{template}-"),
            "parameters": parameters,
            "labels": labels,
        },
    }
    return json_request(ctx, url, body)


def check(response: WebhookResponse) -> str:
    """200 with the created workflow's generated ``metadata.name``."""
    data = response.json()
    metadata = data.get("metadata") if isinstance(data, dict) else None
    if response.status == 200 and isinstance(metadata, dict) and metadata.get("name"):
        return f"workflow {metadata['name']}"
    raise fail_status(response, "200 with metadata.name")


def validate(webhook: WebhookConfig) -> list[tuple[str, str]]:
    """``template`` is required; ``namespace`` unless the URL names it."""
    problems: list[tuple[str, str]] = []
    only_params(webhook, _PARAMS, problems)
    str_param(webhook, "template", problems, required=True)
    namespace = str_param(webhook, "namespace", problems)
    if namespace is None and not _ENDPOINT.search(url_of(webhook)):
        problems.append(
            ("namespace", "is required unless url ends with /api/v1/workflows/<ns>/submit")
        )
    if webhook.params.get("resource_kind", "WorkflowTemplate") not in _KINDS:
        problems.append(("resource_kind", f"must be one of {', '.join(_KINDS)}"))
    str_param(webhook, "generate_name", problems)
    str_param(webhook, "event_parameter", problems)
    dict_param(webhook, "parameters", problems)
    return problems


FORMAT = Format("argo", render, check, validate)
