"""The webhook delivery worker: outbox in, HTTP out, outcomes in metrics and logs.

:class:`WebhookDispatcher` is the daemon's only entry point. ``submit`` stores a trigger
in the outbox for every webhook whose ``models`` match and returns; one background thread
per webhook (so a hanging receiver delays only its own webhook) sends due triggers
through its own ``httpx.Client``. Retries use exponential backoff with full jitter,
capped at ``max_backoff_seconds``; a receiver's ``Retry-After`` (seconds or HTTP date)
replaces the jittered delay, within the same cap (:mod:`monitor.webhooks.backoff`).
Connection errors, timeouts, 408, 429 and 5xx are retried; any other failure is final at
once and logged with the response body. Every attempt of one trigger carries the same
event id (``webhook-id``, ``dag_run_id``, idempotency key, ``ce-id``).

One attempt (render, send, classify) is :class:`~monitor.webhooks.sender.WebhookSender`'s
job; ``driftmon webhook test`` lives in :mod:`monitor.webhooks.probe`. Both are
re-exported here, where the CLI and the tests have always imported them.

Secrets are resolved from environment variables or files at :meth:`WebhookDispatcher.start`
(a secret file that changes later, such as a rotated token, is re-read before the next
attempt) and masked in every log line and error message this module writes; they are also
registered with :func:`monitor.log.register_secret`, so driftmon's log handler masks
them in records from any logger, and masked in httpx's own request log lines (which
carry the URL). A Slack URL counts as a secret.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import httpx

from monitor.errors import CheckpointError, ConfigError, ConfigProblem
from monitor.webhooks.backoff import backoff_cap, backoff_delay, parse_retry_after
from monitor.webhooks.config import WebhookConfig
from monitor.webhooks.event import DriftEvent
from monitor.webhooks.outbox import CorruptEntry, Outbox, OutboxEntry, open_outbox
from monitor.webhooks.probe import TestDeliveryResult, make_test_event, send_test_event
from monitor.webhooks.sender import (
    AttemptResult,
    WebhookSender,
    make_client,
    prepare_credentials,
    register_secrets,
)

__all__ = [
    "AttemptResult",
    "TestDeliveryResult",
    "WebhookDispatcher",
    "WebhookMetrics",
    "backoff_cap",
    "backoff_delay",
    "make_client",
    "make_test_event",
    "parse_retry_after",
    "send_test_event",
]

log = logging.getLogger("monitor.webhooks")

_IDLE_POLL_SECONDS = 5.0  # upper bound on a worker's sleep; wake-ups come from submit/stop


# --- metrics -----------------------------------------------------------------------------


class _CounterChild(Protocol):
    def inc(self, amount: float = ...) -> None: ...


class _GaugeChild(Protocol):
    def set(self, value: float) -> None: ...


class _HistogramChild(Protocol):
    def observe(self, amount: float) -> None: ...


class WebhookMetrics(Protocol):
    """The bound metric children of one webhook (``publish.metrics.WebhookCounters`` fits).

    This library declares no metric families: the ``driftmon_webhook_*`` catalogue lives
    with the application's other metrics, and its builder hands the children in.
    """

    @property
    def pending(self) -> _GaugeChild: ...

    @property
    def abandoned(self) -> _GaugeChild: ...

    @property
    def delivery_seconds(self) -> _HistogramChild: ...

    def outcome(self, outcome: str) -> _CounterChild:
        """The ``driftmon_webhook_deliveries_total`` child of ``outcome``."""
        ...


# --- the dispatcher ----------------------------------------------------------------------


class DeliveryLedger(Protocol):
    """Deliveries shared between processes (scale-out: a model's former and next owner)."""

    def delivered(self, webhook: str, event_id: str) -> bool:
        """Whether any process delivered ``event_id`` to ``webhook`` (False when unknown)."""
        ...

    def record(self, webhook: str, event_id: str) -> None:
        """Note a delivery for the others (may raise; the delivery itself stands)."""
        ...


class WebhookDispatcher:
    """Durable, non-blocking delivery of drift events to the configured webhooks.

    Lifecycle: construct (opens the outbox; pending triggers from a previous run are
    picked up), :meth:`start` (validates params, resolves secrets, starts the workers),
    :meth:`submit` per drift event, :meth:`flush` then :meth:`stop` at shutdown.
    Without ``state_dir`` the outbox lives in memory and is not durable.

    Metrics: ``metrics`` returns the bound children of a webhook by name (the daemon
    passes ``Metrics.webhook``); it is called once per webhook here, so every child
    exists from the first scrape.
    """

    def __init__(
        self,
        webhooks: Sequence[WebhookConfig],
        *,
        state_dir: Path | None,
        metrics: Callable[[str], WebhookMetrics],
        on_corrupt: str = "fresh",
        env: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        names = [w.name for w in webhooks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(
                [ConfigProblem("webhooks", f"duplicate webhook name {n!r}") for n in duplicates]
            )
        self._webhooks = {w.name: w for w in webhooks}
        self._env = env
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)
        self._transport = transport
        self._outbox: Outbox = open_outbox(state_dir, now=clock(), on_corrupt=on_corrupt)
        self._senders: dict[str, WebhookSender] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._wake = {name: threading.Event() for name in self._webhooks}
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        self._started = self._stopped = False
        self._ledger: DeliveryLedger | None = None

        # Every child exists from the first scrape, at zero.
        self._metrics = {name: metrics(name) for name in self._webhooks}
        self._update_pending()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running" if self._started else "new"
        kind = "durable" if self._outbox.durable else "memory"
        return f"WebhookDispatcher(webhooks={list(self._webhooks)}, outbox={kind}, {state})"

    @property
    def durable(self) -> bool:
        """Whether submitted triggers survive a restart (a state directory is configured)."""
        return self._outbox.durable

    def start(self) -> None:
        """Validate params, resolve secrets and start one worker thread per webhook.

        Raises :class:`ConfigError` naming every missing environment variable (never a value).
        """
        if self._started:
            return
        credentials = prepare_credentials(list(self._webhooks.values()), self._env)
        register_secrets(source.current for source in credentials.values())
        if self._webhooks and not self._outbox.durable:
            log.warning(
                "webhook outbox is in memory (no state.dir configured): pending triggers"
                " are lost if driftmon exits before delivering them"
            )
        for name, webhook in self._webhooks.items():
            client = make_client(webhook, self._transport)
            self._senders[name] = WebhookSender(webhook, credentials[name], client, self._clock)
        for name, sender in self._senders.items():
            thread = threading.Thread(
                target=self._run, args=(sender,), name=f"driftmon-webhook-{name}", daemon=True
            )
            self._threads[name] = thread
            thread.start()
        self._started = True

    def share_deliveries(self, ledger: DeliveryLedger) -> None:
        """Skip triggers another process already delivered, and record ours: with
        scale-out, a model's next owner re-derives the episodes its former owner fired
        after the last checkpoint (the episode ids are deterministic)."""
        self._ledger = ledger

    def submit(self, event: DriftEvent) -> None:
        """Store ``event`` for every matching webhook and return without network I/O.

        The trigger is durable when this returns (one SQLite commit with a state
        directory). A (webhook, event id) pair already seen, pending or finished, is
        ignored, so replaying an event after a restart never triggers twice.
        Raises :class:`CheckpointError` if the outbox cannot be written.
        """
        if self._stopped:
            raise CheckpointError("webhook dispatcher is stopped; event not stored")
        targets = [
            w.name for w in self._webhooks.values() if w.models is None or event.model in w.models
        ]
        if self._ledger is not None:
            targets = self._not_delivered_elsewhere(targets, event)
        if not targets:
            return
        try:
            added = self._outbox.add(targets, event, self._clock())
        except Exception as exc:  # sqlite3.Error, OSError: disk full, read-only state dir
            raise CheckpointError(f"cannot store webhook trigger {event.id}: {exc}") from exc
        for name in set(targets) - set(added):
            log.info("webhook %s: event %s already handled, not enqueued again", name, event.id)
        if added:
            self._update_pending()
            for name in added:
                self._wake[name].set()

    def _not_delivered_elsewhere(self, targets: list[str], event: DriftEvent) -> list[str]:
        ledger = self._ledger
        assert ledger is not None  # noqa: S101 - narrowing for mypy
        left = []
        for name in targets:
            if ledger.delivered(name, event.id):
                log.info(
                    "webhook %s: event %s delivered by another replica already", name, event.id
                )
            else:
                left.append(name)
        return left

    def pending(self) -> dict[str, int]:
        """Triggers not yet delivered or finally failed, per webhook (all webhooks listed)."""
        counts = self._outbox.counts()
        return {name: counts.get(name, 0) for name in self._webhooks}

    def flush(self, timeout_seconds: float) -> bool:
        """Wait until nothing is pending; ``True`` if the outbox emptied in time.

        Triggers waiting for a later retry keep it from emptying; with a state directory
        they are delivered after the next start.
        """
        deadline = time.monotonic() + timeout_seconds
        with self._changed:
            while any(self.pending().values()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.1))
        return True

    def stop(self, timeout_seconds: float = 5.0) -> None:
        """Stop the workers, waiting up to ``timeout_seconds`` for attempts in flight.

        Pending triggers stay in the outbox. A worker still blocked in a request when the
        time is up is left to finish on its own (it is a daemon thread).
        """
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        for wake in self._wake.values():
            wake.set()
        deadline = time.monotonic() + timeout_seconds
        stuck = []
        for name, thread in self._threads.items():
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                stuck.append(name)
            else:
                self._senders[name].close()
        if stuck:
            log.warning("webhook workers still busy at shutdown: %s", ", ".join(stuck))
        else:
            self._outbox.close()

    # --- worker --------------------------------------------------------------------------

    def _update_pending(self) -> None:
        abandoned = self._outbox.abandoned_counts()
        for name, count in self.pending().items():
            self._metrics[name].pending.set(count)
            self._metrics[name].abandoned.set(abandoned.get(name, 0))
        with self._changed:
            self._changed.notify_all()

    def _run(self, sender: WebhookSender) -> None:
        name = sender.webhook.name
        wake = self._wake[name]
        while not self._stopping.is_set():
            try:
                wake.clear()  # before looking, so a submit after the look wakes us
                entry = self._outbox.next_due(name)
                if entry is None:
                    # `driftmon webhook retry`/`ack` change the outbox from another
                    # process: the gauges catch up on every idle look.
                    self._update_pending()
                    wake.wait(_IDLE_POLL_SECONDS)
                    continue
                delay = entry.next_attempt - self._clock()
                if delay > 0:
                    wake.wait(min(delay, _IDLE_POLL_SECONDS))
                    continue
                self._deliver(sender, entry)
            except CorruptEntry as exc:
                # Moved to the quarantine table: logged once, counted, and the valid
                # triggers behind it go on at once.
                log.error("%s; moved to the outbox's quarantine table", exc)
                self._metrics[name].outcome("quarantined").inc()
                self._update_pending()
            except Exception:
                if self._stopping.is_set():
                    return
                log.exception("webhook %s: worker error; retrying in 1s", name)
                self._stopping.wait(1.0)

    def _record(self, name: str, event_id: str) -> None:
        if self._ledger is None:
            return
        try:
            self._ledger.record(name, event_id)
        except Exception as exc:  # the delivery stands; a next owner may send it again
            log.warning("webhook %s: delivery of event %s not recorded: %s", name, event_id, exc)

    def _deliver(self, sender: WebhookSender, entry: OutboxEntry) -> None:
        webhook = sender.webhook
        name, event_id = webhook.name, entry.event.id
        result = sender.attempt(entry.event)
        attempts = entry.attempts + 1
        metrics = self._metrics[name]
        metrics.delivery_seconds.observe(result.elapsed_seconds)
        now = self._clock()
        if result.outcome == "delivered":
            self._outbox.finish(name, event_id, "delivered", now)
            metrics.outcome("delivered").inc()
            self._record(name, event_id)
            log.info(
                "webhook %s: delivered event %s after %d attempt(s): %s",
                name,
                event_id,
                attempts,
                result.detail,
            )
        elif result.outcome == "retryable" and attempts < webhook.retry.max_attempts:
            if result.retry_after_seconds is not None:
                delay = min(result.retry_after_seconds, webhook.retry.max_backoff_seconds)
            else:
                delay = backoff_delay(attempts, webhook.retry, self._rng)
            self._outbox.reschedule(name, event_id, attempts, now + delay, result.detail)
            metrics.outcome("retried").inc()
            log.warning(
                "webhook %s: attempt %d/%d for event %s failed (%s); retrying in %.2fs",
                name,
                attempts,
                webhook.retry.max_attempts,
                event_id,
                result.detail,
                delay,
            )
        else:
            self._outbox.finish(name, event_id, "failed", now, result.detail)
            metrics.outcome("failed").inc()
            why = "rejected" if result.outcome == "rejected" else "gave up"
            log.error(
                "webhook %s: %s event %s after %d attempt(s): %s",
                name,
                why,
                event_id,
                attempts,
                result.detail,
            )
        self._update_pending()
