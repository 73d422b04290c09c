"""Retrain webhooks: the drift event, format adapters, signing, outbox and delivery."""

from monitor.webhooks.event import DriftedFeature, DriftEvent

__all__ = ["DriftEvent", "DriftedFeature"]
