"""The metric catalogue: every ``driftmon_`` family is declared once, in this package.

* :mod:`~monitor.publish.metrics.counters`: the hot counters, gauges and histograms the
  daemon updates as it runs (:class:`Metrics` builds the whole catalogue).
* :mod:`~monitor.publish.metrics.webhook`: the ``driftmon_webhook_*`` families and the
  per-webhook children handed to the webhook delivery library.
* :mod:`~monitor.publish.metrics.drift`: the families rendered from a results snapshot at
  scrape time (:class:`DriftCollector`).

Everything is registered in a ``CollectorRegistry`` passed in by the caller, never the
global ``REGISTRY``, so tests build their own and read it back.

The names, types, label names and HELP texts are the contract in ``docs/ARCHITECTURE.md``
and are pinned by ``tests/golden/metrics.txt``.
"""

from monitor.publish.metrics.counters import (
    BATCH_DURATION_BUCKETS,
    DEAD_LETTER_OUTCOMES,
    EVALUATION_DURATION_BUCKETS,
    Metrics,
    ModelCounters,
)
from monitor.publish.metrics.drift import DRIFT_SCORE_HELP, DriftCollector
from monitor.publish.metrics.webhook import (
    WEBHOOK_DELIVERY_BUCKETS,
    WEBHOOK_OUTCOMES,
    WebhookCounters,
    WebhookFamilies,
)

__all__ = [
    "BATCH_DURATION_BUCKETS",
    "DEAD_LETTER_OUTCOMES",
    "DRIFT_SCORE_HELP",
    "EVALUATION_DURATION_BUCKETS",
    "WEBHOOK_DELIVERY_BUCKETS",
    "WEBHOOK_OUTCOMES",
    "DriftCollector",
    "Metrics",
    "ModelCounters",
    "WebhookCounters",
    "WebhookFamilies",
]
