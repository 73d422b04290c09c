"""The ``driftmon_webhook_*`` families and the per-webhook children handed to delivery.

The webhook delivery library (:mod:`monitor.webhooks.delivery`) imports nothing of the
app, so it declares no metrics: whoever builds a ``WebhookDispatcher`` passes it
:meth:`WebhookFamilies.webhook`, whose :class:`WebhookCounters` satisfy the library's
``WebhookMetrics`` protocol. These four families are declared here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# One webhook delivery attempt over HTTP: tens of milliseconds to the client timeout.
WEBHOOK_DELIVERY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

#: ``quarantined``: a stored trigger that could not be read back, set aside unsent.
WEBHOOK_OUTCOMES = ("delivered", "retried", "failed", "quarantined")


@dataclass(frozen=True)
class WebhookCounters:
    """The bound per-webhook children the delivery worker updates per attempt."""

    delivered: Counter
    retried: Counter
    failed: Counter
    quarantined: Counter
    pending: Gauge
    abandoned: Gauge
    delivery_seconds: Histogram

    def outcome(self, outcome: str) -> Counter:
        """The counter child of one of :data:`WEBHOOK_OUTCOMES`."""
        children = {
            "delivered": self.delivered,
            "retried": self.retried,
            "failed": self.failed,
            "quarantined": self.quarantined,
        }
        return children[outcome]


class WebhookFamilies:
    """The four webhook families in ``registry`` and the children of each bound webhook."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._deliveries = Counter(
            "driftmon_webhook_deliveries",
            "Webhook delivery attempts by outcome.",
            ["webhook", "outcome"],
            registry=registry,
        )
        self._pending = Gauge(
            "driftmon_webhook_pending",
            "Drift triggers waiting in a webhook's outbox.",
            ["webhook"],
            registry=registry,
        )
        self._abandoned = Gauge(
            "driftmon_webhook_abandoned",
            "Triggers a webhook gave up on (retries exhausted, rejected, or unreadable) "
            "and nobody redelivered or acknowledged yet (driftmon webhook retry / ack).",
            ["webhook"],
            registry=registry,
        )
        self._seconds = Histogram(
            "driftmon_webhook_delivery_seconds",
            "Duration of one webhook delivery attempt.",
            ["webhook"],
            buckets=WEBHOOK_DELIVERY_BUCKETS,
            registry=registry,
        )
        self._bound: dict[str, WebhookCounters] = {}

    def bind(self, webhooks: Sequence[str]) -> None:
        """Create the children of every configured webhook; drop those of removed ones."""
        for gone in set(self._bound) - set(webhooks):
            for outcome in WEBHOOK_OUTCOMES:
                self._deliveries.remove(gone, outcome)
            self._pending.remove(gone)
            self._abandoned.remove(gone)
            self._seconds.remove(gone)
            del self._bound[gone]
        for name in webhooks:
            if name not in self._bound:
                self._bound[name] = WebhookCounters(
                    delivered=self._deliveries.labels(name, "delivered"),
                    retried=self._deliveries.labels(name, "retried"),
                    failed=self._deliveries.labels(name, "failed"),
                    quarantined=self._deliveries.labels(name, "quarantined"),
                    pending=self._pending.labels(name),
                    abandoned=self._abandoned.labels(name),
                    delivery_seconds=self._seconds.labels(name),
                )

    def webhook(self, name: str) -> WebhookCounters:
        """The bound children of a webhook bound earlier (``KeyError`` otherwise)."""
        return self._bound[name]
