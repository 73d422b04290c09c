"""Delivery against real receivers: retries, final failures, restarts, hanging receivers."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.webhooks.config import WebhookConfig
from monitor.webhooks.delivery import WebhookDispatcher
from monitor.webhooks.event import DriftedFeature, DriftEvent
from tests.support.net import free_port
from tests.support.webhook import DROP, RecordedRequest, Reply, WebhookReceiver
from tests.support.webhook_metrics import webhook_metrics

pytestmark = pytest.mark.integration

SECRET = "raw-signing-secret-DO-NOT-LOG"
TOKEN = "bearer-token-DO-NOT-LOG"
ENV = {"SECRET": SECRET, "TOKEN": TOKEN}


def event(event_id: str = "evt-42") -> DriftEvent:
    return DriftEvent(
        id=event_id,
        time="2026-11-26T12:00:00Z",
        model="fraud",
        window_events=1000,
        window_start=None,
        window_end=None,
        drifted_features=(DriftedFeature("amount", "psi", 0.5, 0.2),),
        features_monitored=3,
    )


def webhook(url: str, **retry: float) -> WebhookConfig:
    return WebhookConfig.model_validate(
        {
            "name": "retrain",
            "url": url + "/hook",
            "secret_env": "SECRET",
            "auth": {"bearer_token_env": "TOKEN"},
            "timeout_seconds": 2,
            "retry": {
                "max_attempts": 6,
                "initial_backoff_seconds": 0.2,
                "max_backoff_seconds": 2,
                **retry,
            },
        }
    )


def outcome(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(
        "driftmon_webhook_deliveries_total", {"webhook": "retrain", "outcome": name}
    )


def test_flaky_receiver_delivers_once_with_same_id_and_backoff() -> None:
    script = [Reply(503), DROP, Reply(429, {"retry-after": "1"})]
    with WebhookReceiver(script, default=Reply(200)) as receiver:
        registry = CollectorRegistry()
        dispatcher = WebhookDispatcher(
            [webhook(receiver.url)], state_dir=None, metrics=webhook_metrics(registry), env=ENV
        )
        dispatcher.start()
        dispatcher.submit(event())
        assert dispatcher.flush(15.0)
        dispatcher.stop(2.0)
    got = receiver.requests
    assert len(got) == 4  # three failures, then exactly one success
    assert {r.headers["webhook-id"] for r in got} == {"evt-42"}
    assert len({r.body for r in got}) == 1
    gaps = [b.monotonic - a.monotonic for a, b in zip(got, got[1:], strict=False)]
    assert gaps[0] <= 0.2 + 0.5 and gaps[1] <= 0.4 + 0.5  # full jitter under the caps
    assert gaps[2] >= 0.95  # Retry-After: 1 was honoured
    assert outcome(registry, "retried") == 3 and outcome(registry, "delivered") == 1


def test_400_fails_at_once_and_secrets_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    def handler(r: RecordedRequest) -> Reply:
        # A receiver echoing credentials back must not leak them into our logs.
        return Reply(400, body={"error": "bad request", "echo": r.headers.get("authorization")})

    caplog.set_level(logging.DEBUG)  # httpx/httpcore debug lines included
    with WebhookReceiver(handler=handler) as receiver:
        registry = CollectorRegistry()
        dispatcher = WebhookDispatcher(
            [webhook(receiver.url)], state_dir=None, metrics=webhook_metrics(registry), env=ENV
        )
        dispatcher.start()
        dispatcher.submit(event())
        assert dispatcher.flush(5.0)
        dispatcher.stop(2.0)
    assert len(receiver.requests) == 1
    assert outcome(registry, "failed") == 1 and outcome(registry, "retried") == 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert (
        errors and "HTTP 400" in errors[0].getMessage() and "bad request" in errors[0].getMessage()
    )
    for record in caplog.records:
        text = record.getMessage() + str(record.args) + str(record.exc_info or "")
        assert SECRET not in text and TOKEN not in text, record.getMessage()


def test_delivery_survives_dispatcher_restart_with_receiver_down(tmp_path: Path) -> None:
    port = free_port()  # nothing listens yet: connection refused
    url = f"http://127.0.0.1:{port}"
    registry = CollectorRegistry()
    first = WebhookDispatcher(
        [webhook(url)], state_dir=tmp_path, metrics=webhook_metrics(registry), env=ENV
    )
    first.start()
    first.submit(event())
    deadline = time.monotonic() + 5
    while not outcome(registry, "retried") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert outcome(registry, "retried")  # it tried and failed
    assert not first.flush(0.1)
    first.stop(2.0)

    with WebhookReceiver(port=port) as receiver:
        second = WebhookDispatcher(
            [webhook(url)], state_dir=tmp_path, metrics=webhook_metrics(), env=ENV
        )
        assert second.pending() == {"retrain": 1}
        second.start()
        assert second.flush(10.0)
        second.submit(event())  # the daemon replaying the same episode: ignored
        assert second.pending() == {"retrain": 0}
        time.sleep(0.3)
        second.stop(2.0)
    assert len(receiver.requests) == 1
    assert receiver.requests[0].headers["webhook-id"] == "evt-42"


_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from monitor.webhooks.config import WebhookConfig
    from monitor.webhooks.delivery import WebhookDispatcher
    from monitor.webhooks.event import DriftedFeature, DriftEvent
    from tests.support.webhook_metrics import webhook_metrics

    url, state = sys.argv[1], Path(sys.argv[2])
    hook = WebhookConfig.model_validate({"name": "retrain", "url": url + "/hook",
        "retry": {"initial_backoff_seconds": 0.2, "max_backoff_seconds": 0.5}})
    d = WebhookDispatcher([hook], state_dir=state, metrics=webhook_metrics(), env={})
    d.start()
    d.submit(DriftEvent(id="evt-kill", time="2026-11-26T12:00:00Z", model="fraud",
        window_events=1, window_start=None, window_end=None,
        drifted_features=(DriftedFeature("a", "psi", 0.5, 0.2),), features_monitored=1))
    print("submitted", flush=True)
    time.sleep(60)
    """
)


def test_trigger_delivered_after_sigkill_and_restart(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    repo = Path(__file__).resolve().parents[3]
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, url, str(tmp_path)],
        stdout=subprocess.PIPE,
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "submitted"
        time.sleep(0.3)  # let it fail an attempt or two against the closed port
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(5)
        if child.stdout is not None:
            child.stdout.close()

    with WebhookReceiver(port=port) as receiver:
        hook = WebhookConfig.model_validate(
            {
                "name": "retrain",
                "url": url + "/hook",
                "retry": {"initial_backoff_seconds": 0.2, "max_backoff_seconds": 0.5},
            }
        )
        dispatcher = WebhookDispatcher(
            [hook], state_dir=tmp_path, metrics=webhook_metrics(), env={}
        )
        dispatcher.start()
        assert dispatcher.flush(10.0)
        dispatcher.stop(2.0)
    assert [r.headers["webhook-id"] for r in receiver.requests] == ["evt-kill"]


def test_hanging_receiver_does_not_block_submit() -> None:
    with WebhookReceiver(default=Reply(200, delay_seconds=3.0)) as receiver:
        hook = webhook(receiver.url).model_copy(update={"timeout_seconds": 2.0})
        dispatcher = WebhookDispatcher([hook], state_dir=None, metrics=webhook_metrics(), env=ENV)
        dispatcher.start()
        dispatcher.submit(event("first"))
        time.sleep(0.1)  # the worker is now blocked in a request for up to 2 s
        # A submit that waited for the worker would take most of the 2 s timeout; the
        # bound is far below that and far above any scheduling hiccup on a loaded box.
        slowest = 0.0
        for i in range(1000):
            started = time.perf_counter()
            dispatcher.submit(event(f"e{i}"))
            slowest = max(slowest, time.perf_counter() - started)
        assert slowest < 1.0, f"one submit took {slowest:.3f}s"
        assert dispatcher.pending()["retrain"] == 1001
        started = time.perf_counter()
        dispatcher.stop(1.0)
        assert time.perf_counter() - started < 2.5  # stop waits at most its bound (+ slack)
    assert receiver.requests  # attempts were made, and timed out
