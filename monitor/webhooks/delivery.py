"""The webhook delivery worker: outbox in, HTTP out, outcomes in metrics and logs.

:class:`WebhookDispatcher` is the daemon's only entry point. ``submit`` stores a trigger
in the outbox for every webhook whose ``models`` match and returns; one background thread
per webhook (so a hanging receiver delays only its own webhook) sends due triggers
through its own ``httpx.Client``. Retries use exponential backoff with full jitter,
capped at ``max_backoff_seconds``; a receiver's ``Retry-After`` (seconds or HTTP date)
replaces the jittered delay, within the same cap. Connection errors, timeouts, 408, 429
and 5xx are retried; any other failure is final at once and logged with the response
body. Every attempt of one trigger carries the same event id (``webhook-id``,
``dag_run_id``, idempotency key, ``ce-id``).

Secrets are resolved from environment variables or files at :meth:`WebhookDispatcher.start`
(a secret file that changes later, such as a rotated token, is re-read before the next
attempt) and masked in every log line and error message this module writes; they are also
registered with :func:`monitor.log.register_secret`, so driftmon's log handler masks
them in records from any logger, and masked in httpx's own request log lines (which
carry the URL). A Slack URL counts as a secret.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Literal, Protocol

import httpx

from monitor.errors import (
    CheckpointError,
    ConfigError,
    ConfigProblem,
    DeliveryError,
    DeliveryRejected,
    DeliveryRetryable,
)
from monitor.log import RedactionFilter, register_secret
from monitor.webhooks.config import RetryConfig, WebhookConfig
from monitor.webhooks.credentials import Credentials, CredentialSource
from monitor.webhooks.event import DriftedFeature, DriftEvent
from monitor.webhooks.formats import (
    RenderContext,
    WebhookRequest,
    WebhookResponse,
    get_format,
    validate_webhook,
)
from monitor.webhooks.outbox import Outbox, OutboxEntry, open_outbox

log = logging.getLogger("monitor.webhooks")

# httpx logs every request URL at INFO on its own logger, outside driftmon's handler; a
# Slack URL (or a password in a URL) must not reach an application's root handler that way.
_HTTPX_REDACTION = RedactionFilter()

_IDLE_POLL_SECONDS = 5.0  # upper bound on a worker's sleep; wake-ups come from submit/stop


# --- backoff and Retry-After -------------------------------------------------------------


def backoff_cap(attempts: int, retry: RetryConfig) -> float:
    """Upper bound of the delay after ``attempts`` failed attempts (1, 2, ...).

    ``initial_backoff_seconds * 2 ** (attempts - 1)``, capped at ``max_backoff_seconds``.
    """
    exponent = min(attempts - 1, 62)  # 2**62 seconds is already far past any cap
    return min(retry.max_backoff_seconds, retry.initial_backoff_seconds * 2.0**exponent)


def backoff_delay(attempts: int, retry: RetryConfig, rng: random.Random) -> float:
    """Full jitter: uniform in ``[0, backoff_cap(attempts)]`` (spreads retry storms)."""
    return rng.uniform(0.0, backoff_cap(attempts, retry))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


# --- one attempt -------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt did. ``detail`` and ``body_excerpt`` are already redacted."""

    outcome: Literal["delivered", "retryable", "rejected"]
    detail: str
    status: int | None = None
    body_excerpt: str = ""
    elapsed_seconds: float = 0.0
    retry_after_seconds: float | None = None


def make_client(
    webhook: WebhookConfig, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """The webhook's client: explicit timeout and small connection limits, no redirects."""
    return httpx.Client(
        timeout=httpx.Timeout(webhook.timeout_seconds),
        limits=httpx.Limits(max_connections=2, max_keepalive_connections=1, keepalive_expiry=30),
        follow_redirects=False,  # a redirected POST is a misconfigured URL, not a success
        transport=transport,
    )


class _Sender:
    """One webhook's format, credentials, client and (Airflow 3) fetched token."""

    def __init__(
        self,
        webhook: WebhookConfig,
        source: CredentialSource,
        client: httpx.Client,
        clock: Callable[[], float],
    ) -> None:
        self.webhook = webhook
        self.source = source
        self.format = get_format(webhook)
        self.client = client
        self.clock = clock
        self._token: str | None = None

    def __repr__(self) -> str:
        return f"_Sender({self.webhook.name!r}, format={self.webhook.format!r})"

    @property
    def credentials(self) -> Credentials:
        return self.source.current

    def _refresh_credentials(self) -> None:
        """Pick up rotated secret files; a broken rotation keeps the previous values."""
        try:
            changed = self.source.refresh()
        except ConfigError as exc:
            problems = "; ".join(str(p) for p in exc.problems)
            log.warning("webhook %s: keeping the previous secrets: %s", self.webhook.name, problems)
            return
        if changed:
            _register_secrets([self.source.current])
            self._token = None  # fetched with the old login
            log.info("webhook %s: secret files changed, credentials reloaded", self.webhook.name)

    def _send(self, request: WebhookRequest) -> WebhookResponse:
        response = self.client.request(
            request.method, request.url, headers=dict(request.headers), content=request.body
        )
        headers = {k.lower(): v for k, v in response.headers.items()}
        return WebhookResponse(response.status_code, headers, response.content)

    def _fetched_token(self, now: float) -> str | None:
        if self.format.token_request is None or self.format.parse_token is None:
            return None
        if self._token is None:
            request = self.format.token_request(RenderContext(self.webhook, self.credentials, now))
            if request is None:
                return None
            self._token = self.format.parse_token(self._send(request))
        return self._token

    def attempt(self, event: DriftEvent) -> AttemptResult:
        """Render, send and check once. Never raises for delivery problems."""
        self._refresh_credentials()
        redact = self.credentials.redact
        started = time.perf_counter()
        response: WebhookResponse | None = None
        try:
            now = self.clock()
            token = self._fetched_token(now)
            context = RenderContext(self.webhook, self.credentials, now, token)
            response = self._send(self.format.render(event, context))
            if token is not None and response.status == 401:
                self._token = None  # expired or revoked: fetch a new one next attempt
                raise DeliveryRetryable(f"HTTP 401 with a fetched token: {response.excerpt()}")
            detail = self.format.check(response)
            outcome: Literal["delivered", "retryable", "rejected"] = "delivered"
            retry_after = None
        except DeliveryRetryable as exc:
            outcome, detail = "retryable", str(exc)
            retry_after = exc.retry_after_seconds
            if retry_after is None and response is not None:
                retry_after = parse_retry_after(response.headers.get("retry-after"), self.clock())
        except DeliveryRejected as exc:
            outcome, detail, retry_after = "rejected", str(exc), None
        except httpx.TimeoutException as exc:
            limit = self.webhook.timeout_seconds
            outcome, detail, retry_after = "retryable", f"{type(exc).__name__} after {limit}s", None
        except httpx.TransportError as exc:
            outcome, detail, retry_after = "retryable", f"{type(exc).__name__}: {exc}", None
        except (httpx.HTTPError, httpx.InvalidURL, DeliveryError) as exc:
            outcome, detail, retry_after = "rejected", f"{type(exc).__name__}: {exc}", None
        return AttemptResult(
            outcome=outcome,
            detail=redact(detail),
            status=response.status if response is not None else None,
            body_excerpt=redact(response.excerpt()) if response is not None else "",
            elapsed_seconds=time.perf_counter() - started,
            retry_after_seconds=retry_after,
        )

    def close(self) -> None:
        self.client.close()


def _register_secrets(credentials: Iterable[Credentials]) -> None:
    """Mask these secrets in driftmon's log handler and in httpx's request log lines."""
    httpx_log = logging.getLogger("httpx")
    if _HTTPX_REDACTION not in httpx_log.filters:
        httpx_log.addFilter(_HTTPX_REDACTION)
    for creds in credentials:
        for value in creds.secret_values():
            register_secret(value)
            _HTTPX_REDACTION.add(value)


def _prepare(
    webhooks: Sequence[WebhookConfig], env: Mapping[str, str]
) -> dict[str, CredentialSource]:
    """Validate params and resolve secrets of every webhook, reporting all problems."""
    problems: list[ConfigProblem] = []
    resolved: dict[str, CredentialSource] = {}
    for index, webhook in enumerate(webhooks):
        try:
            validate_webhook(webhook, index=index)
            resolved[webhook.name] = CredentialSource(webhook, env, index=index)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return resolved


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
    def delivery_seconds(self) -> _HistogramChild: ...

    def outcome(self, outcome: str) -> _CounterChild:
        """The ``driftmon_webhook_deliveries_total`` child of ``outcome``."""
        ...


# --- the dispatcher ----------------------------------------------------------------------


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
        self._outbox: Outbox = open_outbox(state_dir, now=clock())
        self._senders: dict[str, _Sender] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._wake = {name: threading.Event() for name in self._webhooks}
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        self._started = self._stopped = False

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
        credentials = _prepare(list(self._webhooks.values()), self._env)
        _register_secrets(source.current for source in credentials.values())
        if self._webhooks and not self._outbox.durable:
            log.warning(
                "webhook outbox is in memory (no state.dir configured): pending triggers"
                " are lost if driftmon exits before delivering them"
            )
        for name, webhook in self._webhooks.items():
            client = make_client(webhook, self._transport)
            self._senders[name] = _Sender(webhook, credentials[name], client, self._clock)
        for name, sender in self._senders.items():
            thread = threading.Thread(
                target=self._run, args=(sender,), name=f"driftmon-webhook-{name}", daemon=True
            )
            self._threads[name] = thread
            thread.start()
        self._started = True

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
        for name, count in self.pending().items():
            self._metrics[name].pending.set(count)
        with self._changed:
            self._changed.notify_all()

    def _run(self, sender: _Sender) -> None:
        name = sender.webhook.name
        wake = self._wake[name]
        while not self._stopping.is_set():
            try:
                wake.clear()  # before looking, so a submit after the look wakes us
                entry = self._outbox.next_due(name)
                if entry is None:
                    wake.wait(_IDLE_POLL_SECONDS)
                    continue
                delay = entry.next_attempt - self._clock()
                if delay > 0:
                    wake.wait(min(delay, _IDLE_POLL_SECONDS))
                    continue
                self._deliver(sender, entry)
            except Exception:
                if self._stopping.is_set():
                    return
                log.exception("webhook %s: worker error; retrying in 1s", name)
                self._stopping.wait(1.0)

    def _deliver(self, sender: _Sender, entry: OutboxEntry) -> None:
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
            self._outbox.finish(name, event_id, "failed", now)
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


# --- driftmon webhook test ---------------------------------------------------------------


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
    credentials = _prepare([webhook], env)[webhook.name]
    _register_secrets([credentials.current])
    model = webhook.models[0] if webhook.models else "driftmon-test"
    event = make_test_event(model, clock)
    sender = _Sender(webhook, credentials, make_client(webhook, transport), clock)
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
