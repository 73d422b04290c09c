"""``cloudevents``: a CloudEvents 1.0 event over HTTP.

Structured mode (default, ``params.mode: structured``)::

    POST <url>
    content-type: application/cloudevents+json
    {"specversion": "1.0", "id": <event id>, "source": "/driftmon/<model>",
     "type": "io.driftmon.drift.detected", "time": <RFC 3339>, "subject": <model>,
     "datacontenttype": "application/json", "data": <the generic drift payload>}

Binary mode (``params.mode: binary``): the attributes travel as ``ce-specversion``,
``ce-id``, ``ce-source``, ``ce-type``, ``ce-time`` and ``ce-subject`` headers and the body
is the drift payload with ``content-type: application/json``.

``time`` is always set (KServe only recognises structured events that carry it). The
event id is the CloudEvent ``id`` on every retry. ``params.type`` and ``params.source``
override the defaults (``{model}`` in ``source`` is replaced). With ``secret_env`` the
request is also signed with Standard Webhooks headers. Success: any 2xx (a Knative broker
answers 202).
"""

from __future__ import annotations

from typing import Any

from monitor.webhooks.config import WebhookConfig
from monitor.webhooks.event import DriftEvent
from monitor.webhooks.formats._base import (
    JSON,
    Format,
    RenderContext,
    WebhookRequest,
    auth_headers,
    check_2xx,
    drift_payload,
    json_body,
    only_params,
    sensitive,
    str_param,
    url_of,
)
from monitor.webhooks.signing import signature_headers

STRUCTURED = "application/cloudevents+json"
DEFAULT_TYPE = "io.driftmon.{kind}.detected"
DEFAULT_SOURCE = "/driftmon/{model}"


def attributes(event: DriftEvent, ctx: RenderContext) -> dict[str, str]:
    """The context attributes of the event (without ``data``)."""
    params = ctx.webhook.params
    return {
        "specversion": "1.0",
        "id": event.id,
        "source": str(params.get("source", DEFAULT_SOURCE)).replace("{model}", event.model),
        "type": str(params.get("type", DEFAULT_TYPE)).replace("{kind}", event.kind),
        "time": event.time,
        "subject": event.model,
    }


def render(event: DriftEvent, ctx: RenderContext) -> WebhookRequest:
    """Render the event in structured (default) or binary mode."""
    attrs = attributes(event, ctx)
    data = drift_payload(event)
    headers: dict[str, str] = {"user-agent": "driftmon-webhooks", **auth_headers(ctx)}
    if ctx.webhook.params.get("mode", "structured") == "binary":
        body = json_body(data)
        headers["content-type"] = JSON
        headers.update({f"ce-{k}": v for k, v in attrs.items()})
    else:
        envelope: dict[str, Any] = {**attrs, "datacontenttype": JSON, "data": data}
        body = json_body(envelope)
        headers["content-type"] = STRUCTURED
    key = ctx.credentials.signing_key
    if key is not None:
        headers.update(signature_headers(key, event.id, int(ctx.now), body))
    return WebhookRequest("POST", url_of(ctx.webhook), headers, body, sensitive(ctx))


def validate(webhook: WebhookConfig) -> list[tuple[str, str]]:
    """``mode`` is structured or binary; ``type`` and ``source`` are strings."""
    problems: list[tuple[str, str]] = []
    only_params(webhook, {"mode", "type", "source"}, problems)
    if webhook.params.get("mode", "structured") not in ("structured", "binary"):
        problems.append(("mode", "must be 'structured' or 'binary'"))
    str_param(webhook, "type", problems)
    str_param(webhook, "source", problems)
    return problems


FORMAT = Format("cloudevents", render, check_2xx, validate)
