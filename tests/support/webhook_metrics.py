"""The catalogue's webhook metric children for a ``WebhookDispatcher`` built in a test.

The dispatcher declares no metric families; the daemon hands it ``Metrics.webhook``.
Tests of the delivery library alone use :func:`webhook_metrics` instead, which declares
the same ``driftmon_webhook_*`` families (from ``monitor.publish.metrics``) in a registry
the test can read back, and binds each webhook the dispatcher asks for.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry

from monitor.publish.metrics import WebhookCounters, WebhookFamilies


def webhook_metrics(registry: CollectorRegistry | None = None) -> Callable[[str], WebhookCounters]:
    """A ``metrics=`` argument for ``WebhookDispatcher``, registered in ``registry``."""
    families = WebhookFamilies(registry if registry is not None else CollectorRegistry())
    names: list[str] = []

    def children(name: str) -> WebhookCounters:
        if name not in names:
            names.append(name)
            families.bind(names)
        return families.webhook(name)

    return children
