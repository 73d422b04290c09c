"""One delivery attempt to one webhook: render, send, classify, redact.

:class:`WebhookSender` holds a webhook's format adapter, credentials, HTTP client and (for
Airflow 3) the fetched token; :meth:`WebhookSender.attempt` never raises for delivery
problems but returns an :class:`AttemptResult`. Connection errors, timeouts and what the
format calls retryable (408, 429, 5xx; a 401 with a fetched token) are ``retryable``;
anything else that fails is ``rejected``. Both the background dispatcher and
``driftmon webhook test`` send through here.

Secrets: :func:`prepare_credentials` validates params and resolves every webhook's
secrets (reporting all problems at once), and :func:`register_secrets` masks them in
driftmon's log handler and in httpx's own request log lines, which carry the URL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import httpx

from monitor.errors import (
    ConfigError,
    ConfigProblem,
    DeliveryError,
    DeliveryRejected,
    DeliveryRetryable,
)
from monitor.log import RedactionFilter, register_secret
from monitor.webhooks.backoff import parse_retry_after
from monitor.webhooks.config import WebhookConfig
from monitor.webhooks.credentials import Credentials, CredentialSource
from monitor.webhooks.event import DriftEvent
from monitor.webhooks.formats import (
    RenderContext,
    WebhookRequest,
    WebhookResponse,
    get_format,
    validate_webhook,
)

__all__ = [
    "AttemptResult",
    "WebhookSender",
    "make_client",
    "prepare_credentials",
    "register_secrets",
]

# The delivery modules log under one name, as before they were split.
log = logging.getLogger("monitor.webhooks")

# httpx logs every request URL at INFO on its own logger, outside driftmon's handler; a
# Slack URL (or a password in a URL) must not reach an application's root handler that way.
_HTTPX_REDACTION = RedactionFilter()


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt did. ``detail`` and ``body_excerpt`` are already redacted."""

    outcome: Literal["delivered", "retryable", "rejected"]
    detail: str
    status: int | None = None
    body_excerpt: str = ""
    elapsed_seconds: float = 0.0
    retry_after_seconds: float | None = None


def make_client(
    webhook: WebhookConfig, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """The webhook's client: explicit timeout and small connection limits, no redirects."""
    return httpx.Client(
        timeout=httpx.Timeout(webhook.timeout_seconds),
        limits=httpx.Limits(max_connections=2, max_keepalive_connections=1, keepalive_expiry=30),
        follow_redirects=False,  # a redirected POST is a misconfigured URL, not a success
        transport=transport,
    )


class WebhookSender:
    """One webhook's format, credentials, client and (Airflow 3) fetched token."""

    def __init__(
        self,
        webhook: WebhookConfig,
        source: CredentialSource,
        client: httpx.Client,
        clock: Callable[[], float],
    ) -> None:
        self.webhook = webhook
        self.source = source
        self.format = get_format(webhook)
        self.client = client
        self.clock = clock
        self._token: str | None = None

    def __repr__(self) -> str:
        return f"WebhookSender({self.webhook.name!r}, format={self.webhook.format!r})"

    @property
    def credentials(self) -> Credentials:
        return self.source.current

    def _refresh_credentials(self) -> None:
        """Pick up rotated secret files; a broken rotation keeps the previous values."""
        try:
            changed = self.source.refresh()
        except ConfigError as exc:
            problems = "; ".join(str(p) for p in exc.problems)
            log.warning("webhook %s: keeping the previous secrets: %s", self.webhook.name, problems)
            return
        if changed:
            register_secrets([self.source.current])
            self._token = None  # fetched with the old login
            log.info("webhook %s: secret files changed, credentials reloaded", self.webhook.name)

    def _send(self, request: WebhookRequest) -> WebhookResponse:
        response = self.client.request(
            request.method, request.url, headers=dict(request.headers), content=request.body
        )
        headers = {k.lower(): v for k, v in response.headers.items()}
        return WebhookResponse(response.status_code, headers, response.content)

    def _fetched_token(self, now: float) -> str | None:
        if self.format.token_request is None or self.format.parse_token is None:
            return None
        if self._token is None:
            request = self.format.token_request(RenderContext(self.webhook, self.credentials, now))
            if request is None:
                return None
            self._token = self.format.parse_token(self._send(request))
        return self._token

    def attempt(self, event: DriftEvent) -> AttemptResult:
        """Render, send and check once. Never raises for delivery problems."""
        self._refresh_credentials()
        redact = self.credentials.redact
        started = time.perf_counter()
        response: WebhookResponse | None = None
        try:
            now = self.clock()
            token = self._fetched_token(now)
            context = RenderContext(self.webhook, self.credentials, now, token)
            response = self._send(self.format.render(event, context))
            if token is not None and response.status == 401:
                self._token = None  # expired or revoked: fetch a new one next attempt
                raise DeliveryRetryable(f"HTTP 401 with a fetched token: {response.excerpt()}")
            detail = self.format.check(response)
            outcome: Literal["delivered", "retryable", "rejected"] = "delivered"
            retry_after = None
        except DeliveryRetryable as exc:
            outcome, detail = "retryable", str(exc)
            retry_after = exc.retry_after_seconds
            if retry_after is None and response is not None:
                retry_after = parse_retry_after(response.headers.get("retry-after"), self.clock())
        except DeliveryRejected as exc:
            outcome, detail, retry_after = "rejected", str(exc), None
        except httpx.TimeoutException as exc:
            limit = self.webhook.timeout_seconds
            outcome, detail, retry_after = "retryable", f"{type(exc).__name__} after {limit}s", None
        except httpx.TransportError as exc:
            outcome, detail, retry_after = "retryable", f"{type(exc).__name__}: {exc}", None
        except (httpx.HTTPError, httpx.InvalidURL, DeliveryError) as exc:
            outcome, detail, retry_after = "rejected", f"{type(exc).__name__}: {exc}", None
        return AttemptResult(
            outcome=outcome,
            detail=redact(detail),
            status=response.status if response is not None else None,
            body_excerpt=redact(response.excerpt()) if response is not None else "",
            elapsed_seconds=time.perf_counter() - started,
            retry_after_seconds=retry_after,
        )

    def close(self) -> None:
        self.client.close()


def register_secrets(credentials: Iterable[Credentials]) -> None:
    """Mask these secrets in driftmon's log handler and in httpx's request log lines."""
    httpx_log = logging.getLogger("httpx")
    if _HTTPX_REDACTION not in httpx_log.filters:
        httpx_log.addFilter(_HTTPX_REDACTION)
    for creds in credentials:
        for value in creds.secret_values():
            register_secret(value)
            _HTTPX_REDACTION.add(value)


def prepare_credentials(
    webhooks: Sequence[WebhookConfig], env: Mapping[str, str]
) -> dict[str, CredentialSource]:
    """Validate params and resolve secrets of every webhook, reporting all problems."""
    problems: list[ConfigProblem] = []
    resolved: dict[str, CredentialSource] = {}
    for index, webhook in enumerate(webhooks):
        try:
            validate_webhook(webhook, index=index)
            resolved[webhook.name] = CredentialSource(webhook, env, index=index)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return resolved
