"""``github``: a ``repository_dispatch`` event that starts a GitHub Actions workflow.

Request::

    POST <url>                        (https://api.github.com/repos/<owner>/<repo>/dispatches)
    accept: application/vnd.github+json
    authorization: Bearer <token>
    x-github-api-version: 2022-11-28
    {"event_type": <params.event_type, default "drift-retrain">,
     "client_payload": {"event_id", "type", "time", "model", "window", "drifted_features",
                        "summary", "test", <up to 2 keys from params.client_payload>}}

GitHub caps ``client_payload`` at 10 top-level keys; driftmon uses 8, and config
validation refuses more than 2 extra keys. The workflow reads e.g.
``${{ github.event.client_payload.model }}``. GitHub does not dedupe dispatches: the event
id is in the payload for the workflow to check. Success: 204.
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
    drift_payload,
    fail_status,
    json_request,
    only_params,
    str_param,
)

MAX_CLIENT_PAYLOAD_KEYS = 10
_OWN_KEYS = 8
_PARAMS = {"event_type", "client_payload"}
HEADERS = {"accept": "application/vnd.github+json", "x-github-api-version": "2022-11-28"}


def client_payload(event: DriftEvent, extra: dict[str, Any]) -> dict[str, Any]:
    """At most 10 top-level keys; the event's ``extra`` and ``version`` go in ``summary``."""
    payload = drift_payload(event)
    summary = dict(payload["summary"])
    if event.version is not None:
        summary["version"] = event.version
    if event.extra:
        summary["extra"] = dict(event.extra)
    own = {
        "event_id": event.id,
        "type": payload["type"],
        "time": event.time,
        "model": event.model,
        "window": payload["window"],
        "drifted_features": payload["drifted_features"],
        "summary": summary,
        "test": event.test,
    }
    return {**extra, **own}


def render(event: DriftEvent, ctx: RenderContext) -> WebhookRequest:
    """Render the dispatches POST."""
    params = ctx.webhook.params
    body = {
        "event_type": params.get("event_type", "drift-retrain"),
        "client_payload": client_payload(event, dict(params.get("client_payload", {}))),
    }
    return json_request(ctx, str(ctx.webhook.url), body, HEADERS)


def check(response: WebhookResponse) -> str:
    """204 No Content."""
    if response.status == 204:
        return "repository_dispatch accepted (204)"
    raise fail_status(response, "204")


def validate(webhook: WebhookConfig) -> list[tuple[str, str]]:
    """``event_type`` (at most 100 characters) and at most 2 extra payload keys."""
    problems: list[tuple[str, str]] = []
    only_params(webhook, _PARAMS, problems)
    event_type = str_param(webhook, "event_type", problems)
    if event_type is not None and len(event_type) > 100:
        problems.append(("event_type", "must be at most 100 characters"))
    extra = webhook.params.get("client_payload", {})
    if not isinstance(extra, dict):
        problems.append(("client_payload", "must be a mapping"))
    elif len(extra) > MAX_CLIENT_PAYLOAD_KEYS - _OWN_KEYS:
        problems.append(
            (
                "client_payload",
                f"GitHub allows {MAX_CLIENT_PAYLOAD_KEYS} top-level keys and driftmon uses"
                f" {_OWN_KEYS}: nest extra values under at most"
                f" {MAX_CLIENT_PAYLOAD_KEYS - _OWN_KEYS} keys",
            )
        )
    return problems


FORMAT = Format("github", render, check, validate)
