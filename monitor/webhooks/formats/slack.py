"""``slack``: a Slack incoming-webhook message a person can read at a glance.

Request::

    POST <url>                (https://hooks.slack.com/services/…)
    {"text": "Drift detected on model fraud: 2 of 12 features drifted",
     "blocks": [header, each crossed check naming what was compared with what
                (`ks p_value 2.1e-09 < 0.001 (statistic 0.3102)`),
                "Open dashboard" link when params.grafana_url is set, event id and window]}

``params.grafana_url`` may contain ``{model}`` (URL-encoded model name), ``{from}`` and
``{to}`` (window bounds in epoch milliseconds, for Grafana's ``from``/``to`` params), e.g.
``https://grafana.example/d/driftmon-model?var-model={model}&from={from}&to={to}``.
Test events say so in the first words. Success: any 2xx (Slack answers 200 ``ok``).
The URL of a Slack webhook is itself a secret (anyone holding it can post): driftmon
shows it as ``https://hooks.slack.com/***`` in reprs and masks it in every log line and
error message, but it is written in the config file, so keep that file private.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from monitor.webhooks.config import WebhookConfig
from monitor.webhooks.event import DriftEvent
from monitor.webhooks.formats._base import (
    Format,
    RenderContext,
    WebhookRequest,
    check_2xx,
    json_request,
    only_params,
    str_param,
    url_of,
)

MAX_LISTED = 10


def escape(text: str) -> str:
    """Slack mrkdwn needs &, < and > escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def dashboard_link(event: DriftEvent, template: str) -> str:
    """Fill ``{model}``, ``{from}`` and ``{to}`` in the Grafana URL."""
    start, end = event.window_start, event.window_end
    return (
        template.replace("{model}", quote(event.model, safe=""))
        .replace("{from}", str(int(start * 1000)) if start is not None else "now-1h")
        .replace("{to}", str(int(end * 1000)) if end is not None else "now")
    )


def headline(event: DriftEvent) -> str:
    """One line: what happened to which model."""
    prefix = "[TEST, not a real drift] " if event.test else ""
    what = "Performance drop" if event.kind == "performance" else "Drift"
    version = f" (version {event.version})" if event.version is not None else ""
    return (
        f"{prefix}{what} detected on model {event.model}{version}: {event.features_drifted} of "
        f"{event.features_monitored} features drifted"
    )


def render(event: DriftEvent, ctx: RenderContext) -> WebhookRequest:
    """Render the message."""
    # Each line names what crossed what: `ks p_value 2.1e-09 < 0.001 (statistic 0.3102)`.
    lines = [
        f"• `{escape(f.feature)}` {escape(f.describe())}"
        for f in event.drifted_features[:MAX_LISTED]
    ]
    if len(event.drifted_features) > MAX_LISTED:
        lines.append(f"… and {len(event.drifted_features) - MAX_LISTED} more")
    text = headline(event)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{escape(text)}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines) or "(none)"}},
    ]
    grafana = ctx.webhook.params.get("grafana_url")
    if grafana:
        link = dashboard_link(event, str(grafana))
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"<{link}|Open dashboard>"}}
        )
        text += f" | dashboard: {link}"
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"event `{escape(event.id)}` · window of {event.window_events} events"
                    f" · {escape(event.time)}",
                }
            ],
        }
    )
    return json_request(ctx, url_of(ctx.webhook), {"text": text, "blocks": blocks})


def validate(webhook: WebhookConfig) -> list[tuple[str, str]]:
    """``grafana_url`` is optional."""
    problems: list[tuple[str, str]] = []
    only_params(webhook, {"grafana_url"}, problems)
    str_param(webhook, "grafana_url", problems)
    return problems


FORMAT = Format("slack", render, check_2xx, validate)
