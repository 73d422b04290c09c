"""Replay and end-to-end throughput, and detection latency, measured in one run.

    python benchmarks/bench_pipeline.py [--events 200000] [--skip-kafka]

1. replay: the full pipeline (decode, encode, window, evaluate, alert) over a JSON-lines
   file of 20-feature events, next to plain ``orjson.loads`` of the same lines.
2. end to end on the embedded broker, against a bare confluent-kafka consumer on the same
   topic, in steady state and interleaved rounds: ``bench_e2e.py`` (run here with its
   defaults, 600,000 events and 3 rounds).
3. detection latency: time from the first drifted event produced to
   ``driftmon_model_drifted == 1`` and to the webhook received, with a 2,000-event slide.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_e2e

from monitor.app.replay import replay
from monitor.config import load_config
from monitor.stats import FeatureKind, build_profile, warmup

E2E_EVENTS = 600_000
N_NUMERIC = 12
N_CATEGORICAL = 8


def wide_events(n: int, seed: int, drift: bool = False, start_ts: float = 1.7e9) -> list[bytes]:
    """20-feature events (12 numeric, 7 categorical + a categorical-ish prediction-free mix)."""
    rng = np.random.default_rng(seed)
    shift = 0.5 if drift else 0.0
    num = rng.normal(shift, 1.0, (n, N_NUMERIC)).round(4).tolist()
    cats = rng.integers(0, 12, (n, N_CATEGORICAL)).tolist()
    pred = rng.random(n).round(5).tolist()
    out = []
    for i in range(n):
        features: dict[str, Any] = {f"x{j}": num[i][j] for j in range(N_NUMERIC)}
        features.update({f"c{j}": f"v{cats[i][j]}" for j in range(N_CATEGORICAL)})
        out.append(
            orjson.dumps(
                {
                    "model": "wide",
                    "ts": start_ts + i * 0.001,
                    "id": f"r{i}",
                    "features": features,
                    "prediction": pred[i],
                }
            )
        )
    return out


def wide_profile(path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 50_000
    data: dict[str, Any] = {f"x{j}": rng.normal(0, 1, n) for j in range(N_NUMERIC)}
    data.update({f"c{j}": [f"v{v}" for v in rng.integers(0, 12, n)] for j in range(N_CATEGORICAL)})
    data["prediction"] = rng.random(n)
    kinds = {f"x{j}": FeatureKind.NUMERIC for j in range(N_NUMERIC)}
    kinds.update({f"c{j}": FeatureKind.CATEGORICAL for j in range(N_CATEGORICAL)})
    kinds["prediction"] = FeatureKind.NUMERIC
    build_profile("wide", data, kinds, source="bench").save(path)


def wide_config(
    directory: Path, bootstrap: str, topic: str, port: int = 0, webhook: str = ""
) -> Path:
    features = "\n".join(
        [f"      x{j}: {{type: numeric}}" for j in range(N_NUMERIC)]
        + [f"      c{j}: {{type: categorical}}" for j in range(N_CATEGORICAL)]
    )
    text = f"""kafka:
  bootstrap_servers: {bootstrap}
  group_id: bench-{topic}
  topics: [{topic}]
  consumer: {{session.timeout.ms: 6000, heartbeat.interval.ms: 2000}}
  batch_max_messages: 10000
  poll_timeout_seconds: 0.2
http: {{host: 127.0.0.1, port: {port}}}
models:
  wide:
    reference: {directory / "wide.json"}
    window: {{events: 20000, slide: 2000}}
    features:
{features}
    prediction: {{type: numeric}}
    tests: [psi, ks, js, chi2]
    thresholds: {{psi: 0.2, ks_p_value: 0.000001, js: 0.1, chi2_p_value: 0.000001}}
    alert: {{min_features: 1, consecutive: 1, cooldown_seconds: 3600}}
"""
    if webhook:
        text += (
            "webhooks:\n"
            f"  - {{name: bench, format: generic, url: '{webhook}', secret_env: BENCH_SECRET}}\n"
        )
    path = directory / f"{topic}.yaml"
    path.write_text(text)
    return path


def bench_replay(directory: Path, n: int) -> dict[str, float]:
    lines = wide_events(n, seed=1)
    events_file = directory / "events.jsonl"
    events_file.write_bytes(b"\n".join(lines) + b"\n")
    config = load_config(wide_config(directory, "127.0.0.1:9", "unused"))
    from monitor.model.reference_file import load_references

    references = load_references(config)
    plain, full = [], []
    for _ in range(3):
        t = time.perf_counter()
        for line in lines:
            orjson.loads(line)
        plain.append(n / (time.perf_counter() - t))
        summary = replay(config, references, events_file, None)
        full.append(summary.events_per_second)
    return {
        "replay_events_per_s": statistics.median(full),
        "orjson_events_per_s": statistics.median(plain),
    }


def bench_latency(directory: Path) -> dict[str, float]:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from monitor.app.daemon import Daemon
    from monitor.demo.broker import EmbeddedBroker
    from monitor.demo.runner import Received, _start_receiver

    os.environ.setdefault("BENCH_SECRET", "whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldA==")
    received = Received()
    receiver = _start_receiver(received)
    try:
        with EmbeddedBroker() as broker:
            admin = AdminClient({"bootstrap.servers": broker.bootstrap})
            topic = "bench-latency"
            admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(10)
            url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
            config = load_config(wide_config(directory, broker.bootstrap, topic, webhook=url))
            daemon = Daemon(config)
            thread = threading.Thread(
                target=daemon.run, kwargs={"install_signals": False}, daemon=True
            )
            thread.start()
            producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
            rate = 10_000  # events/s
            clean = wide_events(30_000, seed=3)
            drifted = wide_events(30_000, seed=4, drift=True, start_ts=1.8e9)
            for i in range(0, len(clean), 1000):
                for p in clean[i : i + 1000]:
                    producer.produce(topic, p, key=b"wide")
                producer.poll(0)
                time.sleep(1000 / rate)
            producer.flush(10)
            while daemon.events_total < len(clean):
                time.sleep(0.05)
            drift_started = time.time()
            drifted_at = None
            for i in range(0, len(drifted), 1000):
                for p in drifted[i : i + 1000]:
                    producer.produce(topic, p, key=b"wide")
                producer.poll(0)
                status = daemon.results.snapshot().get("wide")
                if drifted_at is None and status is not None and status.drifted:
                    drifted_at = time.time()
                time.sleep(1000 / rate)
            producer.flush(10)
            deadline = time.time() + 30
            while (drifted_at is None or not received.calls) and time.time() < deadline:
                status = daemon.results.snapshot().get("wide")
                if drifted_at is None and status is not None and status.drifted:
                    drifted_at = time.time()
                time.sleep(0.01)
            daemon.request_stop()
            thread.join(30)
    finally:
        receiver.shutdown()
    webhook_at = received.calls[0]["time"] if received.calls else float("nan")
    return {
        "to_model_drifted_s": (drifted_at or float("nan")) - drift_started,
        "to_webhook_s": webhook_at - drift_started,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--skip-kafka", action="store_true")
    args = parser.parse_args()
    warmup()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        wide_profile(directory / "wide.json")
        r = bench_replay(directory, args.events)
        print(
            f"replay: {r['replay_events_per_s']:,.0f} events/s "
            f"(plain orjson.loads of the same lines: {r['orjson_events_per_s']:,.0f}/s)"
        )
        if args.skip_kafka:
            return
        # The strict end-to-end comparison with a bare consumer (its own topic and sizes).
        bench_e2e.report(bench_e2e.run(E2E_EVENTS, rounds=3, bare_batch=1000), E2E_EVENTS)
        lat = bench_latency(directory)
        print(
            f"detection latency (slide 2,000 at 10k events/s): model_drifted after "
            f"{lat['to_model_drifted_s']:.2f} s, webhook after {lat['to_webhook_s']:.2f} s"
        )


if __name__ == "__main__":
    main()
