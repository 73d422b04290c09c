"""Types and helpers shared by the format adapters.

A format is a set of pure functions: ``render`` turns a :class:`DriftEvent` plus the
webhook's config and resolved credentials into a :class:`WebhookRequest`, and ``check``
decides from a :class:`WebhookResponse` whether the target really created a run. Neither
does I/O; the delivery worker sends the request and feeds the answer back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitor.errors import DeliveryRejected, DeliveryRetryable
from monitor.webhooks.config import WebhookConfig, mask_url
from monitor.webhooks.credentials import Credentials, basic_token
from monitor.webhooks.event import DriftedFeature, DriftEvent

USER_AGENT = "driftmon-webhooks"
JSON = "application/json"
# Headers whose values are credentials; reprs show them as ***.
_SENSITIVE = frozenset({"authorization", "webhook-signature", "cookie", "x-api-key"})


@dataclass(frozen=True)
class WebhookRequest:
    """One HTTP request, ready to send. ``headers`` may hold credentials: repr hides them."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    sensitive_headers: frozenset[str] = field(default=frozenset(), repr=False)
    secret_url: bool = field(default=False, repr=False)  # the URL is a credential (Slack)

    def __repr__(self) -> str:
        hidden = _SENSITIVE | self.sensitive_headers
        shown = {k: ("***" if k.lower() in hidden else v) for k, v in self.headers.items()}
        url = mask_url(self.url, secret=self.secret_url)
        return f"WebhookRequest({self.method} {url}, headers={shown}, {len(self.body)} bytes)"

    def json(self) -> Any:
        """The body parsed as JSON (for tests and the CLI)."""
        return json.loads(self.body)


@dataclass(frozen=True)
class WebhookResponse:
    """The parts of an HTTP response a format checks. Header names are lower case."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or ``None`` when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def excerpt(self, limit: int = 500) -> str:
        """The start of the body as text, for logs and error messages."""
        text = self.body[: limit * 4].decode("utf-8", errors="replace")
        return text if len(text) <= limit else text[:limit] + "…"


@dataclass(frozen=True)
class RenderContext:
    """Everything besides the event that a format may use for one attempt."""

    webhook: WebhookConfig
    credentials: Credentials
    now: float  # wall-clock seconds of this attempt (signature timestamps)
    token: str | None = field(default=None, repr=False)  # bearer token fetched at run time


Renderer = Callable[[DriftEvent, RenderContext], WebhookRequest]
Checker = Callable[[WebhookResponse], str]
Validator = Callable[[WebhookConfig], list[tuple[str, str]]]


@dataclass(frozen=True)
class Format:
    """One target: how to render a trigger and how to recognise success.

    ``check`` returns a short description of what was created, or raises
    :class:`DeliveryRejected` (final) or :class:`DeliveryRetryable`. ``validate`` returns
    ``(params key, message)`` problems found in the config before anything is sent.
    ``token_request`` / ``parse_token``, when set, describe a token exchange the worker
    performs before the first attempt (Airflow 3 with username and password).
    """

    name: str
    render: Renderer
    check: Checker
    validate: Validator
    token_request: Callable[[RenderContext], WebhookRequest | None] | None = None
    parse_token: Callable[[WebhookResponse], str] | None = None


def rfc3339(ts: float | None) -> str | None:
    """Epoch seconds as RFC 3339 UTC (``Z``), ``None`` stays ``None``."""
    if ts is None or not math.isfinite(ts):
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity; such scores are sent as null."""
    return value if value is not None and math.isfinite(value) else None


def drift_payload(event: DriftEvent) -> dict[str, Any]:
    """The generic drift payload, shared by every format that carries the whole event.

    Exactly the documented keys; ``version`` is added when the drift was seen on a model
    version, ``test: true`` for test events and ``extra`` only when the event has extra
    fields.
    """
    payload: dict[str, Any] = {
        "type": f"driftmon.{event.kind}.detected",
        "id": event.id,
        "time": event.time,
        "model": event.model,
        "window": {
            "events": event.window_events,
            "start": rfc3339(event.window_start),
            "end": rfc3339(event.window_end),
        },
        "drifted_features": [_drifted_entry(f) for f in event.drifted_features],
        "summary": {
            "features_monitored": event.features_monitored,
            "features_drifted": event.features_drifted,
        },
    }
    if event.version is not None:
        payload["version"] = event.version
    if event.test:
        payload["test"] = True
    if event.extra:
        payload["extra"] = dict(event.extra)
    return payload


def _drifted_entry(f: DriftedFeature) -> dict[str, Any]:
    """One crossed check: the documented keys, then ``compared`` naming the quantity that
    was compared with the threshold, and that threshold under its own name
    (``p_value_threshold``, ``score_threshold``, ``missing_ratio_increase_threshold``)."""
    entry: dict[str, Any] = {
        "feature": f.feature,
        "test": f.test,
        "score": finite(f.score),
        "threshold": finite(f.threshold),
        "p_value": finite(f.p_value),
        "compared": f.compared,
    }
    if f.compared == "missing_ratio_increase":
        entry["missing_ratio_increase"] = finite(f.missing_ratio_increase)
    entry[f"{f.compared}_threshold"] = finite(f.threshold)
    return entry


def json_body(obj: Any) -> bytes:
    """Compact, deterministic UTF-8 JSON (the same bytes on every retry)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def auth_headers(ctx: RenderContext, *, use_basic: bool = True) -> dict[str, str]:
    """Authorization headers from the configured credentials (and a fetched token)."""
    creds = ctx.credentials
    headers: dict[str, str] = {}
    token = ctx.token or creds.bearer_token
    if token:
        # Argo documents tokens that already include the scheme; do not double it.
        headers["authorization"] = token if token.startswith("Bearer ") else f"Bearer {token}"
    elif creds.basic is not None and use_basic:
        headers["authorization"] = "Basic " + basic_token(*creds.basic)
    if creds.header is not None:
        headers[creds.header[0]] = creds.header[1]
    return headers


def sensitive(ctx: RenderContext) -> frozenset[str]:
    """Header names that carry credentials for this webhook (hidden in reprs)."""
    header = ctx.credentials.header
    return frozenset({header[0].lower()}) if header is not None else frozenset()


def json_request(
    ctx: RenderContext, url: str, body: Any, extra_headers: Mapping[str, str] | None = None
) -> WebhookRequest:
    """A POST with a JSON body, the user agent and the configured auth headers."""
    headers = {"content-type": JSON, "user-agent": USER_AGENT, **auth_headers(ctx)}
    headers.update(extra_headers or {})
    secret_url = ctx.webhook.url_is_secret
    return WebhookRequest("POST", url, headers, json_body(body), sensitive(ctx), secret_url)


def fail_status(response: WebhookResponse, expected: str) -> DeliveryRejected | DeliveryRetryable:
    """The error for a response that is not a success.

    408, 429 and 5xx may succeed later; any other status is final. The message carries
    the status and the start of the body (the worker redacts secrets before logging).
    """
    message = f"HTTP {response.status} (expected {expected}): {response.excerpt()}"
    if response.status in (408, 429) or response.status >= 500:
        return DeliveryRetryable(message)
    return DeliveryRejected(message)


def check_2xx(response: WebhookResponse) -> str:
    """Success is any 2xx (generic receivers, CloudEvents brokers, Slack)."""
    if 200 <= response.status < 300:
        return f"HTTP {response.status}"
    raise fail_status(response, "2xx")


def str_param(
    webhook: WebhookConfig, key: str, problems: list[tuple[str, str]], *, required: bool = False
) -> str | None:
    """Validate an optional (or required) non-empty string in ``params``."""
    value = webhook.params.get(key)
    if value is None:
        if required:
            problems.append((key, "is required for format " + webhook.format))
        return None
    if not isinstance(value, str) or not value:
        problems.append((key, "must be a non-empty string"))
        return None
    return value


def dict_param(webhook: WebhookConfig, key: str, problems: list[tuple[str, str]]) -> None:
    """Validate an optional mapping in ``params``."""
    value = webhook.params.get(key)
    if value is not None and not isinstance(value, dict):
        problems.append((key, "must be a mapping"))


def only_params(webhook: WebhookConfig, allowed: set[str], problems: list[tuple[str, str]]) -> None:
    """Reject unknown ``params`` keys, so a misspelt option is an error, not a no-op."""
    for key in sorted(set(webhook.params) - allowed):
        problems.append((key, f"unknown parameter; valid: {', '.join(sorted(allowed))}"))


def url_of(webhook: WebhookConfig) -> str:
    """The configured URL as a string, without a trailing slash."""
    return str(webhook.url).rstrip("/")
