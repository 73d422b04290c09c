"""``driftmon demo``: the whole loop on one machine with nothing set up.

Starts the embedded Kafka-compatible broker (unless ``--bootstrap`` is given), builds a
reference profile for a synthetic fraud model, starts a local webhook receiver, the daemon
and a producer that injects drift into a few features part-way, shows live progress, and
prints a summary.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from monitor.demo import synthetic
from monitor.demo.broker import EmbeddedBroker
from monitor.demo.startup import DemoOutcome, verdict, wait_until_ready

TOPIC = "driftmon.demo"
SECRET_ENV = "DRIFTMON_DEMO_WEBHOOK_SECRET"  # noqa: S105 - a variable name
# A fixed key for the demo's own local receiver; never used outside the demo.
_DEMO_SECRET = "whsec_ZGVtby1zZWNyZXQtZm9yLWRyaWZ0bW9uLWRlbW8tb25seQ=="  # noqa: S105


@dataclass
class Received:
    """Webhook calls the local receiver got."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


def _start_receiver(received: Received) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            try:
                payload = json.loads(body)
            except ValueError:
                payload = {"raw": body.decode("utf-8", "replace")}
            received.calls.append(
                {"time": time.time(), "headers": dict(self.headers), "payload": payload}
            )
            received.arrived.set()
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, name="demo-receiver", daemon=True).start()
    return server


def _create_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, partitions, 1)])
    for future in futures.values():
        with contextlib.suppress(Exception):  # already exists is fine
            future.result(10)


def _write_reference(workdir: Path, seed: int = 7) -> Path:
    path = workdir / "fraud.profile.json"
    synthetic.reference_profile(seed, source=f"demo reference (seed {seed})").save(path)
    return path


def demo_config_yaml(bootstrap: str, reference: Path, http_port: int, webhook_url: str) -> str:
    """The embedded default configuration of the demo."""
    return (
        "kafka:\n"
        f"  bootstrap_servers: {bootstrap}\n"
        "  group_id: driftmon-demo\n"
        f"  topics: [{TOPIC}]\n"
        "  consumer: {session.timeout.ms: 6000, heartbeat.interval.ms: 2000,"
        " statistics.interval.ms: 1000}\n"
        f"http: {{host: 127.0.0.1, port: {http_port}}}\n"
        "models:\n"
        + synthetic.model_config_yaml(str(reference))
        .replace("ks_p_value: 0.001", "ks_p_value: 0.000001")
        .replace("chi2_p_value: 0.001", "chi2_p_value: 0.000001")
        + "webhooks:\n"
        "  - name: retrain\n"
        "    format: generic\n"
        f"    url: {webhook_url}\n"
        f"    secret_env: {SECRET_ENV}\n"
        "    timeout_seconds: 5\n"
    )


class Producer(threading.Thread):
    """Produces the synthetic stream at ``rate`` events/s; drift starts at ``drift_at`` seconds."""

    def __init__(self, bootstrap: str, rate: float, drift_at: float | None, stop: threading.Event):
        super().__init__(name="demo-producer", daemon=True)
        from confluent_kafka import Producer as KafkaProducer

        self.producer = KafkaProducer(
            {
                "bootstrap.servers": bootstrap,
                "linger.ms": 20,
                "logger": logging.getLogger("monitor.librdkafka"),
            }
        )
        self.rate = rate
        self.drift_at = drift_at
        self.stop_event = stop
        self.sent = 0
        self.drift_started_at: float | None = None

    def run(self) -> None:
        rng = np.random.default_rng(11)
        started = time.monotonic()
        tick = 0.2
        while not self.stop_event.is_set():
            elapsed = time.monotonic() - started
            drift = self.drift_at is not None and elapsed >= self.drift_at
            if drift and self.drift_started_at is None:
                self.drift_started_at = time.time()
            n = max(1, int(self.rate * tick))
            cols = synthetic.generate(rng, n, drift=drift)
            for i, payload in enumerate(
                synthetic.to_events(
                    cols, start_ts=time.time(), step_seconds=tick / n, id_offset=self.sent
                )
            ):
                key = f"{synthetic.MODEL}".encode()
                try:
                    self.producer.produce(TOPIC, value=payload, key=key)
                except BufferError:
                    self.producer.poll(0.5)
                    self.producer.produce(TOPIC, value=payload, key=key)
                del i
            self.sent += n
            self.producer.poll(0)
            target = started + (self.sent / self.rate)
            delay = target - time.monotonic()
            if delay > 0:
                self.stop_event.wait(delay)
        self.producer.flush(5)


def _render_table(daemon: Any, producer: Producer, received: Received, url: str) -> str:
    status = daemon.results.snapshot().get(synthetic.MODEL)
    lines = [
        f"driftmon demo — metrics at {url}/metrics, status at {url}/status",
        f"produced {producer.sent:,} events"
        + (" (drift injected)" if producer.drift_started_at else " (no drift yet)"),
    ]
    if status is None or status.last_result is None:
        fill = 0.0 if status is None else status.window_fill_ratio
        lines.append(f"window filling: {fill:.0%}")
        return "\n".join(lines)
    lines.append(
        f"window {status.window_events:,} events, {status.evaluations} evaluations, "
        f"alert state: {status.alert_state.upper()}"
        + (f", webhook calls received: {len(received.calls)}" if received.calls else "")
    )
    lines.append(
        f"{'feature':<20}{'psi':>8}{'ks p':>10}{'js':>8}{'chi2 p':>10}{'missing':>9}  status"
    )
    for feature in status.last_result.features:
        s, p = feature.scores, feature.p_values

        def fmt(value: float | None, width: int, spec: str) -> str:
            return f"{value:>{width}{spec}}" if value is not None else " " * (width - 1) + "-"

        lines.append(
            f"{feature.name:<20}{fmt(s.get('psi'), 8, '.3f')}{fmt(p.get('ks'), 10, '.1e')}"
            f"{fmt(s.get('js'), 8, '.3f')}{fmt(p.get('chi2'), 10, '.1e')}"
            f"{feature.missing_ratio:>9.1%}  {'DRIFT' if feature.drifted else 'ok'}"
        )
    return "\n".join(lines)


def run_demo(
    *,
    duration_seconds: float = 60.0,
    bootstrap: str | None = None,
    http_port: int = 0,
    rate: float = 5000.0,
    producer_only: bool = False,
    live_table: bool = True,
) -> int:
    """Run the demo; returns the exit code."""
    from monitor.app.daemon import Daemon
    from monitor.config import load_config

    stop = threading.Event()
    forever = duration_seconds <= 0
    drift_at = None if forever else max(5.0, duration_seconds * 0.45)
    if forever:
        drift_at = 45.0
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="driftmon-demo-")))
        if bootstrap is None:
            print("starting the embedded Kafka-compatible broker (Tansu) ...", flush=True)
            broker = stack.enter_context(EmbeddedBroker(log_path=workdir / "broker.log"))
            bootstrap = broker.bootstrap
        _create_topic(bootstrap, TOPIC)
        producer = Producer(bootstrap, rate, drift_at, stop)
        if producer_only:
            producer.start()
            print(f"producing to {TOPIC} on {bootstrap} at {rate:,.0f} events/s", flush=True)
            try:
                while producer.is_alive() and (forever or producer.sent < rate * duration_seconds):
                    time.sleep(0.5)
            finally:
                stop.set()
                producer.join(10)
            return 0
        received = Received()
        receiver = _start_receiver(received)
        stack.callback(receiver.shutdown)
        webhook_url = f"http://127.0.0.1:{receiver.server_address[1]}/retrain"
        reference = _write_reference(workdir)
        config_path = workdir / "driftmon.yaml"
        config_path.write_text(demo_config_yaml(bootstrap, reference, http_port, webhook_url))
        os.environ.setdefault(SECRET_ENV, _DEMO_SECRET)
        config = load_config(config_path)
        daemon = Daemon(config, config_dir=workdir)
        runner = threading.Thread(
            target=daemon.run,
            kwargs={"install_signals": False},
            name="driftmon-daemon",
            daemon=True,
        )
        runner.start()
        while daemon.http_port == 0 and runner.is_alive():
            time.sleep(0.05)
        url = f"http://127.0.0.1:{daemon.http_port}"
        print(f"driftmon is serving {url}/metrics  ({url}/status, {url}/readyz)", flush=True)
        # The clock starts when the daemon is ready: a first run compiles kernels first.
        not_ready = wait_until_ready(daemon, runner.is_alive, _say)
        if not_ready is not None:
            daemon.request_stop()
            runner.join(30)
            print(f"demo failed: {not_ready}", flush=True)
            return 1
        producer.start()
        try:
            confirmed_at = _watch(
                daemon, runner, producer, received, url, duration_seconds, live_table
            )
        finally:
            alive = runner.is_alive()
            stop.set()
            producer.join(10)
            daemon.request_stop()
            runner.join(30)
        _print_summary(daemon, producer, received, confirmed_at)
        outcome = DemoOutcome(
            events_counted=daemon.events_total,
            webhooks_received=len(received.calls),
            drift_injected=producer.drift_started_at is not None,
            daemon_alive=alive,
        )
    reasons = verdict(outcome)
    for reason in reasons:
        print(f"demo failed: {reason}", flush=True)
    return 1 if reasons else 0


def _watch(
    daemon: Any,
    runner: threading.Thread,
    producer: Producer,
    received: Received,
    url: str,
    duration_seconds: float,
    live_table: bool,
) -> float | None:
    """Show progress until the duration is over (or Ctrl-C); when drift was confirmed."""
    forever = duration_seconds <= 0
    started = time.monotonic()
    confirmed_at: float | None = None
    last_plain = 0.0
    try:
        while runner.is_alive():
            elapsed = time.monotonic() - started
            if not forever and elapsed >= duration_seconds:
                break
            status = daemon.results.snapshot().get(synthetic.MODEL)
            if confirmed_at is None and status is not None and status.drifted:
                confirmed_at = time.time()
                if not live_table:
                    print(
                        f"[{elapsed:5.1f}s] drift confirmed on model {synthetic.MODEL}",
                        flush=True,
                    )
            if live_table:
                sys.stdout.write(
                    "\x1b[H\x1b[2J" + _render_table(daemon, producer, received, url) + "\n"
                )
                sys.stdout.flush()
            elif elapsed - last_plain >= 5.0:
                last_plain = elapsed
                fill = 0.0 if status is None else status.window_fill_ratio
                state = "-" if status is None else status.alert_state
                print(
                    f"[{elapsed:5.1f}s] produced {producer.sent:,}, "
                    f"window fill {fill:.0%}, alert {state}",
                    flush=True,
                )
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    return confirmed_at


def _say(line: str) -> None:
    print(line, flush=True)


def _print_summary(
    daemon: Any, producer: Producer, received: Received, confirmed_at: float | None
) -> None:
    status = daemon.results.snapshot().get(synthetic.MODEL)
    print("\n=== driftmon demo summary ===")
    print(
        f"events produced: {producer.sent:,}; events counted by the daemon: {daemon.events_total:,}"
    )
    if producer.drift_started_at is None:
        print("drift was not injected (run longer to see it)")
    else:
        print(f"drift injected into: {', '.join(synthetic.DRIFTED_FEATURES)}")
    if confirmed_at is not None and producer.drift_started_at is not None:
        print(f"drift confirmed {confirmed_at - producer.drift_started_at:.1f} s after it started")
    if status is not None and status.last_result is not None:
        flagged = ", ".join(status.last_result.drifted_features) or "none"
        print(f"features flagged in the last evaluation: {flagged}")
    if received.calls:
        first = received.calls[0]
        payload = first["payload"]
        print(
            f"retrain webhook received: {len(received.calls)} call(s); "
            f"first id {payload.get('id')}, "
            f"signed ({first['headers'].get('webhook-signature', '')[:12]}...)"
        )
    else:
        print("no retrain webhook received")
