"""``generic``: the drift payload as JSON, signed per Standard Webhooks.

Request::

    POST <url>
    content-type: application/json
    webhook-id: <event id>            (the same on every retry)
    webhook-timestamp: <unix seconds of this attempt>
    webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">
                                      (when secret_env is set)

    {"type": "driftmon.drift.detected", "id", "time", "model",
     "window": {"events", "start", "end"},
     "drifted_features": [{"feature", "test", "score", "threshold", "p_value", "compared",
                           "<compared>_threshold"}],
     "summary": {"features_monitored", "features_drifted"}}

Success: any 2xx.
"""

from __future__ import annotations

from monitor.webhooks.config import WebhookConfig
from monitor.webhooks.event import DriftEvent
from monitor.webhooks.formats._base import (
    Format,
    RenderContext,
    WebhookRequest,
    check_2xx,
    drift_payload,
    json_body,
    json_request,
    only_params,
    url_of,
)
from monitor.webhooks.signing import signature_headers


def render(event: DriftEvent, ctx: RenderContext) -> WebhookRequest:
    """Render the signed generic request."""
    body = json_body(drift_payload(event))
    signed = signature_headers(ctx.credentials.signing_key, event.id, int(ctx.now), body)
    request = json_request(ctx, url_of(ctx.webhook), {}, signed)
    return WebhookRequest(
        request.method, request.url, request.headers, body, request.sensitive_headers
    )


def validate(webhook: WebhookConfig) -> list[tuple[str, str]]:
    """The generic format takes no params."""
    problems: list[tuple[str, str]] = []
    only_params(webhook, set(), problems)
    return problems


FORMAT = Format("generic", render, check_2xx, validate)
