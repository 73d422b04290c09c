"""Webhook deliveries shared by every replica, on ``<group_id>.checkpoints``.

A model's owner fires an episode's webhook as soon as its evaluation confirms it, but
checkpoints only every ``checkpoint_interval_seconds``: an owner killed in between leaves
the next owner to re-derive the same episode (same rows, same deterministic episode id)
from the older checkpoint. Each delivery is therefore recorded under
``delivered/<webhook>/<event id>`` once the receiver accepted it, and a trigger found there
is not sent again. Only a kill in the moment between the receiver's answer and this record
can send an episode twice (with the same id, the receiver's idempotency key).
"""

from __future__ import annotations

import logging

from monitor.app.scaleout.topics import TopicCheckpoints
from monitor.errors import CheckpointError

logger = logging.getLogger(__name__)

PREFIX = "delivered/"


class TopicLedger:
    """:class:`~monitor.webhooks.delivery.DeliveryLedger` on the checkpoints topic."""

    def __init__(self, checkpoints: TopicCheckpoints) -> None:
        self.checkpoints = checkpoints

    @staticmethod
    def key(webhook: str, event_id: str) -> str:
        return f"{PREFIX}{webhook}/{event_id}"

    def delivered(self, webhook: str, event_id: str) -> bool:
        try:
            return self.checkpoints.latest(self.key(webhook, event_id)) is not None
        except CheckpointError as exc:  # unknown: send (at least once beats never)
            logger.warning(
                "webhook deliveries of other replicas unreadable; sending",
                extra={"webhook": webhook, "event_id": event_id, "error": str(exc)},
            )
            return False

    def record(self, webhook: str, event_id: str) -> None:
        self.checkpoints.write(self.key(webhook, event_id), b"1")
        logger.info(
            "webhook delivery recorded for the other replicas",
            extra={"webhook": webhook, "event_id": event_id},
        )
