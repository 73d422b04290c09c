"""Backoff math, Retry-After, secrets handling and the dispatcher over MockTransport."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from webhook_samples import ENV, PASSWORD, TOKEN, make_event, make_webhook

from monitor.errors import ConfigError
from monitor.webhooks.config import RetryConfig
from monitor.webhooks.delivery import (
    WebhookDispatcher,
    backoff_cap,
    backoff_delay,
    parse_retry_after,
    send_test_event,
)
from tests.support.webhook_metrics import webhook_metrics

FAST = {"max_attempts": 5, "initial_backoff_seconds": 0.01, "max_backoff_seconds": 0.05}


def test_backoff_cap_doubles_until_the_cap() -> None:
    retry = RetryConfig(initial_backoff_seconds=1, max_backoff_seconds=300)
    assert [backoff_cap(n, retry) for n in range(1, 11)] == [
        1, 2, 4, 8, 16, 32, 64, 128, 256, 300
    ]  # fmt: skip
    assert backoff_cap(10_000, retry) == 300  # no overflow on absurd counts


def test_full_jitter_stays_within_zero_and_cap_and_spreads() -> None:
    retry = RetryConfig(initial_backoff_seconds=1, max_backoff_seconds=300)
    rng = random.Random(7)
    samples = [backoff_delay(4, retry, rng) for _ in range(2000)]
    assert all(0.0 <= s <= 8.0 for s in samples)
    assert 3.0 < sum(samples) / len(samples) < 5.0  # uniform mean ~ cap / 2
    assert min(samples) < 0.5 and max(samples) > 7.5


def test_retry_after_seconds_and_http_date() -> None:
    now = 1_795_696_000.0
    assert parse_retry_after("1", now) == 1.0
    assert parse_retry_after(" 120 ", now) == 120.0
    date = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert parse_retry_after(date, now) == pytest.approx(30.0)
    past = format_datetime(datetime.fromtimestamp(now - 30, UTC), usegmt=True)
    assert parse_retry_after(past, now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_missing_env_variable_is_named_at_start_without_values() -> None:
    webhooks = [
        make_webhook("generic", secret_env="NOPE_SECRET"),
        make_webhook(
            "airflow", url="http://af/api/v2/dags/d/dagRuns", auth={"bearer_token_env": "WH_TOKEN"}
        ),
    ]
    dispatcher = WebhookDispatcher(webhooks, state_dir=None, metrics=webhook_metrics(), env=ENV)
    with pytest.raises(ConfigError) as info:
        dispatcher.start()
    message = str(info.value)
    assert "NOPE_SECRET" in message and "webhooks[0].secret_env" in message
    assert TOKEN not in message


def _dispatcher(
    handler, tmp_path: Path | None = None, **kw
) -> tuple[WebhookDispatcher, CollectorRegistry]:
    registry = CollectorRegistry()
    webhook = make_webhook(
        "generic",
        secret_env="WH_SECRET",
        auth={"bearer_token_env": "WH_TOKEN"},
        retry=FAST,
        **kw,
    )
    dispatcher = WebhookDispatcher(
        [webhook],
        state_dir=tmp_path,
        metrics=webhook_metrics(registry),
        env=ENV,
        rng=random.Random(1),
        transport=httpx.MockTransport(handler),
    )
    return dispatcher, registry


def test_dispatcher_retries_5xx_then_delivers_with_same_id(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503 if len(seen) < 3 else 200)

    dispatcher, registry = _dispatcher(handler, tmp_path)
    dispatcher.start()
    dispatcher.submit(make_event("e1"))
    assert dispatcher.flush(5.0)
    dispatcher.stop(2.0)
    assert [r.headers["webhook-id"] for r in seen] == ["e1"] * 3
    assert len({r.content for r in seen}) == 1
    value = registry.get_sample_value
    labels = {"webhook": "wh-generic"}
    assert value("driftmon_webhook_deliveries_total", {**labels, "outcome": "retried"}) == 2
    assert value("driftmon_webhook_deliveries_total", {**labels, "outcome": "delivered"}) == 1
    assert value("driftmon_webhook_deliveries_total", {**labels, "outcome": "failed"}) == 0
    assert value("driftmon_webhook_pending", labels) == 0
    assert value("driftmon_webhook_delivery_seconds_count", labels) == 3


def test_models_filter_and_gives_up_after_max_attempts(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500, text=f"oops token={TOKEN}")

    dispatcher, registry = _dispatcher(handler, models=["fraud"])
    dispatcher.start()
    with caplog.at_level(logging.DEBUG):
        dispatcher.submit(make_event("other", model="churn"))  # not this webhook's model
        assert dispatcher.pending() == {"wh-generic": 0}
        dispatcher.submit(make_event("e1"))
        assert dispatcher.flush(5.0)
        dispatcher.stop(2.0)
    assert len(calls) == FAST["max_attempts"]
    assert (
        registry.get_sample_value(
            "driftmon_webhook_deliveries_total", {"webhook": "wh-generic", "outcome": "failed"}
        )
        == 1
    )
    assert "gave up" in caplog.text
    assert TOKEN not in caplog.text and "***" in caplog.text
    # The lost trigger stays visible until someone retries or acknowledges it.
    assert registry.get_sample_value("driftmon_webhook_abandoned", {"webhook": "wh-generic"}) == 1


def test_send_test_event_reports_status_and_body(caplog: pytest.LogCaptureFixture) -> None:
    received: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(400, json={"error": f"bad password {PASSWORD}"})

    webhook = make_webhook(
        "airflow",
        url="http://af:8080",
        params={"dag_id": "retrain", "api_version": 1},
        auth={"basic": {"username_env": "WH_USER", "password_env": "WH_PASSWORD"}},
    )
    result = send_test_event(webhook, ENV, transport=httpx.MockTransport(handler))
    assert not result.ok and result.status == 400
    assert PASSWORD not in result.body_excerpt and PASSWORD not in result.detail
    assert result.event_id.startswith("test-")
    body = received[0].read()
    assert b'"test":true' in body and b"TEST" in body
    assert result.elapsed_seconds >= 0


def test_airflow3_fetches_token_once_and_refreshes_after_401() -> None:
    log: list[tuple[str, str]] = []
    tokens = iter(["jwt-1", "jwt-2"])

    def handler(request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        log.append((request.url.path, auth))
        if request.url.path == "/auth/token":
            return httpx.Response(201, json={"access_token": next(tokens)})
        if auth == "Bearer jwt-1":
            return httpx.Response(401, json={"detail": "expired"})
        return httpx.Response(200, json={"state": "queued", "dag_run_id": "x"})

    registry = CollectorRegistry()
    webhook = make_webhook(
        "airflow",
        url="http://af:8080",
        params={"dag_id": "retrain"},
        auth={"basic": {"username_env": "WH_USER", "password_env": "WH_PASSWORD"}},
        retry=FAST,
    )
    dispatcher = WebhookDispatcher(
        [webhook],
        state_dir=None,
        metrics=webhook_metrics(registry),
        env=ENV,
        transport=httpx.MockTransport(handler),
    )
    dispatcher.start()
    dispatcher.submit(make_event("e1"))
    assert dispatcher.flush(5.0)
    dispatcher.stop(2.0)
    assert [p for p, _ in log] == [
        "/auth/token",
        "/api/v2/dags/retrain/dagRuns",
        "/auth/token",
        "/api/v2/dags/retrain/dagRuns",
    ]
    assert log[-1][1] == "Bearer jwt-2"


def test_reprs_hide_secrets(tmp_path: Path) -> None:
    dispatcher, _ = _dispatcher(lambda r: httpx.Response(200), tmp_path)
    dispatcher.start()
    text = (
        repr(dispatcher)
        + repr(dispatcher._senders)
        + repr(dispatcher._senders["wh-generic"].credentials)
    )
    dispatcher.stop(1.0)
    assert TOKEN not in text and "whsec_" not in text


def test_submit_after_stop_raises_and_duplicate_names_rejected() -> None:
    dispatcher, _ = _dispatcher(lambda r: httpx.Response(200))
    dispatcher.start()
    dispatcher.stop(1.0)
    with pytest.raises(Exception, match="stopped"):
        dispatcher.submit(make_event())
    with pytest.raises(ConfigError, match="duplicate"):
        WebhookDispatcher(
            [make_webhook(), make_webhook()], state_dir=None, metrics=webhook_metrics()
        )


def test_submit_with_a_state_dir_queues_every_trigger(tmp_path: Path) -> None:
    # Speed is a benchmark matter; here: each submit is accounted for in the outbox.
    dispatcher, _ = _dispatcher(lambda r: httpx.Response(200), tmp_path)
    for i in range(100):
        dispatcher.submit(make_event(f"e{i}"))
    assert dispatcher.pending() == {"wh-generic": 100}
    dispatcher.stop(1.0)


def test_external_metrics_children_are_used() -> None:
    from prometheus_client import Counter, Gauge, Histogram

    registry = CollectorRegistry()
    counter = Counter("driftmon_webhook_deliveries", "h", ["webhook", "outcome"], registry=registry)
    gauge = Gauge("driftmon_webhook_pending", "h", ["webhook"], registry=registry)
    abandoned = Gauge("driftmon_webhook_abandoned", "h", ["webhook"], registry=registry)
    histogram = Histogram("driftmon_webhook_delivery_seconds", "h", ["webhook"], registry=registry)

    class Children:
        def __init__(self, name: str) -> None:
            self.pending = gauge.labels(name)
            self.abandoned = abandoned.labels(name)
            self.delivery_seconds = histogram.labels(name)
            self.name = name

        def outcome(self, outcome: str) -> Counter:
            return counter.labels(self.name, outcome)

    webhook = make_webhook("generic")
    dispatcher = WebhookDispatcher(
        [webhook],
        state_dir=None,
        metrics=Children,
        transport=httpx.MockTransport(lambda r: httpx.Response(200)),
    )
    dispatcher.start()
    dispatcher.submit(make_event())
    assert dispatcher.flush(5.0)
    dispatcher.stop(1.0)
    labels = {"webhook": "wh-generic", "outcome": "delivered"}
    assert registry.get_sample_value("driftmon_webhook_deliveries_total", labels) == 1


def test_test_result_describe_is_readable() -> None:
    result = send_test_event(
        make_webhook("generic"),
        ENV,
        transport=httpx.MockTransport(lambda r: httpx.Response(204)),
    )
    text = result.describe()
    assert text.startswith("OK: HTTP 204") and result.event_id in text


def test_a_memory_outbox_is_announced_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="monitor.webhooks"):
        memory, _ = _dispatcher(lambda r: httpx.Response(200))
        memory.start()
        memory.stop(1.0)
    assert "outbox is in memory" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="monitor.webhooks"):
        durable, _ = _dispatcher(lambda r: httpx.Response(200), tmp_path)
        durable.start()
        durable.stop(1.0)
    assert "outbox is in memory" not in caplog.text
