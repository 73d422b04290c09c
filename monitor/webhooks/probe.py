"""``driftmon webhook test``: one clearly marked test event, sent once, reported.

:func:`send_test_event` validates one webhook, resolves its secrets and makes a single
attempt through :class:`~monitor.webhooks.sender.WebhookSender`: no outbox, no retries,
no metrics. The result says what the receiver answered, with secrets already redacted.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from monitor.webhooks.config import WebhookConfig
from monitor.webhooks.event import DriftedFeature, DriftEvent
from monitor.webhooks.sender import (
    WebhookSender,
    make_client,
    prepare_credentials,
    register_secrets,
)

__all__ = ["TestDeliveryResult", "make_test_event", "send_test_event"]


@dataclass(frozen=True)
class TestDeliveryResult:
    """Outcome of one test delivery, for ``driftmon webhook test`` to print."""

    __test__ = False  # not a pytest test class

    ok: bool
    status: int | None
    body_excerpt: str
    elapsed_seconds: float
    detail: str
    event_id: str

    def describe(self) -> str:
        """Human-readable summary for the CLI (secrets already redacted)."""
        status = self.status if self.status is not None else "no response"
        verdict = "OK" if self.ok else "FAILED"
        lines = [
            f"{verdict}: HTTP {status} in {self.elapsed_seconds:.3f}s (test event {self.event_id})",
            f"  {self.detail}",
        ]
        if self.body_excerpt:
            lines.append(f"  response body: {self.body_excerpt}")
        return "\n".join(lines)


def make_test_event(
    model: str = "driftmon-test", clock: Callable[[], float] = time.time
) -> DriftEvent:
    """A clearly marked test event (``test: true``, id ``test-<uuid>``)."""
    now = clock()
    return DriftEvent(
        id=f"test-{uuid.uuid4()}",
        time=datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        model=model,
        window_events=1000,
        window_start=now - 300.0,
        window_end=now,
        drifted_features=(
            DriftedFeature(feature="example_feature", test="psi", score=0.42, threshold=0.2),
        ),
        features_monitored=1,
        test=True,
        extra={"note": "driftmon webhook test; not a real drift"},
    )


def send_test_event(
    webhook: WebhookConfig,
    env: Mapping[str, str] = os.environ,
    *,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
) -> TestDeliveryResult:
    """Send one test event to ``webhook`` now: one attempt, no outbox, no retries.

    Raises :class:`ConfigError` for invalid params or missing environment variables.
    """
    credentials = prepare_credentials([webhook], env)[webhook.name]
    register_secrets([credentials.current])
    model = webhook.models[0] if webhook.models else "driftmon-test"
    event = make_test_event(model, clock)
    sender = WebhookSender(webhook, credentials, make_client(webhook, transport), clock)
    try:
        result = sender.attempt(event)
    finally:
        sender.close()
    return TestDeliveryResult(
        ok=result.outcome == "delivered",
        status=result.status,
        body_excerpt=result.body_excerpt,
        elapsed_seconds=result.elapsed_seconds,
        detail=result.detail,
        event_id=event.id,
    )
