"""Sample events, configs and secrets shared by the webhook unit tests."""

from __future__ import annotations

import base64
from typing import Any

from monitor.webhooks.config import WebhookConfig
from monitor.webhooks.credentials import Credentials, resolve_credentials
from monitor.webhooks.event import DriftedFeature, DriftEvent
from monitor.webhooks.formats import RenderContext

RAW_SECRET = "s3cr3t-signing-key-value"
WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
TOKEN = "tok-VERY-SECRET-4242"
PASSWORD = "pw-VERY-SECRET-1717"
ENV = {
    "WH_SECRET": WHSEC,
    "WH_RAW_SECRET": RAW_SECRET,
    "WH_TOKEN": TOKEN,
    "WH_USER": "admin",
    "WH_PASSWORD": PASSWORD,
}
NOW = 1_795_696_000.0  # 2026-11-26T12:26:40Z


def make_event(event_id: str = "evt-0001", model: str = "fraud", **kw: Any) -> DriftEvent:
    fields: dict[str, Any] = {
        "id": event_id,
        "time": "2026-11-26T12:26:40Z",
        "model": model,
        "window_events": 5000,
        "window_start": NOW - 600,
        "window_end": NOW,
        "drifted_features": (
            DriftedFeature("amount", "psi", 0.42, 0.2),
            DriftedFeature("amount", "ks", 0.31, 0.001, p_value=1e-6, compared="p_value"),
            DriftedFeature("country", "js", 0.15, 0.1),
        ),
        "features_monitored": 12,
    }
    fields.update(kw)
    return DriftEvent(**fields)


def make_webhook(
    fmt: str = "generic", url: str = "http://127.0.0.1:9/hook", **kw: Any
) -> WebhookConfig:
    return WebhookConfig.model_validate({"name": f"wh-{fmt}", "format": fmt, "url": url, **kw})


def context(webhook: WebhookConfig, token: str | None = None, now: float = NOW) -> RenderContext:
    creds: Credentials = resolve_credentials(webhook, ENV)
    return RenderContext(webhook, creds, now, token)
