"""A delivery ledger shared by processes: what another delivered is skipped, ours recorded."""

from __future__ import annotations

import random

import httpx
from webhook_samples import ENV, make_event, make_webhook

from monitor.webhooks.delivery import WebhookDispatcher
from tests.support.webhook_metrics import webhook_metrics


class FakeLedger:
    def __init__(self, delivered: set[tuple[str, str]], *, failing: bool = False) -> None:
        self.seen = set(delivered)
        self.recorded: list[tuple[str, str]] = []
        self.failing = failing

    def delivered(self, webhook: str, event_id: str) -> bool:
        return (webhook, event_id) in self.seen

    def record(self, webhook: str, event_id: str) -> None:
        if self.failing:
            raise RuntimeError("broker away")
        self.recorded.append((webhook, event_id))


def dispatcher(seen: list[str]) -> WebhookDispatcher:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["webhook-id"])
        return httpx.Response(204)

    webhook = make_webhook("generic", secret_env="WH_SECRET")
    return WebhookDispatcher(
        [webhook],
        state_dir=None,
        metrics=webhook_metrics(),
        env=ENV,
        rng=random.Random(1),
        transport=httpx.MockTransport(handler),
    )


def test_a_trigger_another_process_delivered_is_not_sent_and_ours_are_recorded() -> None:
    seen: list[str] = []
    ledger = FakeLedger({("wh-generic", "e1")})
    d = dispatcher(seen)
    d.share_deliveries(ledger)
    d.start()
    d.submit(make_event("e1"))  # the former owner delivered it
    d.submit(make_event("e2"))
    assert d.flush(5.0)
    d.stop(2.0)
    assert seen == ["e2"]
    assert ledger.recorded == [("wh-generic", "e2")]


def test_a_ledger_that_cannot_record_leaves_the_delivery_standing() -> None:
    seen: list[str] = []
    d = dispatcher(seen)
    d.share_deliveries(FakeLedger(set(), failing=True))
    d.start()
    d.submit(make_event("e3"))
    assert d.flush(5.0)
    d.stop(2.0)
    assert seen == ["e3"] and d.pending() == {"wh-generic": 0}
