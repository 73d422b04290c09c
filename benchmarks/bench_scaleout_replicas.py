"""Scale-out throughput: 1 against 2 replica processes over the same pre-filled topic.

    python benchmarks/bench_scaleout_replicas.py [--events 300000] [--repeats 3]

An embedded broker, a six-partition topic pre-filled once with the synthetic fraud model's
events under two model names (13 monitored features each), and ``driftmon run`` processes
with ``kafka.scale_out`` in a fresh consumer group per run. Throughput is the rate at
which rows are applied by the models' owners (``driftmon_partial_rows_total{outcome=
"applied"}`` summed over the replicas, polled every 0.2 s) between 10 % and 90 % of all
events, so process start-up and group joins are left out of both. Medians of
``--repeats`` runs per replica count, runs alternating, the load average printed with them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import orjson
import yaml
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.demo import synthetic
from monitor.demo.broker import EmbeddedBroker, free_port

MODELS = ("fraud", "fraud2")


def prefill(bootstrap: str, topic: str, events: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    rng = np.random.default_rng(0)
    per_model = events // len(MODELS)
    for i, model in enumerate(MODELS):
        cols = synthetic.generate(np.random.default_rng(i), per_model)
        stream = synthetic.to_events(cols, start_ts=1.76e9 + i * 0.003, step_seconds=0.01)
        targets = rng.integers(0, 6, per_model)
        for n, (raw, p) in enumerate(zip(stream, targets, strict=True)):
            value = orjson.dumps({**orjson.loads(raw), "model": model})
            while True:
                try:
                    producer.produce(topic, value, partition=int(p))
                    break
                except BufferError:
                    producer.poll(0.1)
            if n % 5000 == 0:
                producer.poll(0)
    producer.flush(60)


def config(directory: Path, bootstrap: str, topic: str, group: str, reference: Path) -> Path:
    text = (
        "kafka:\n"
        f"  bootstrap_servers: {bootstrap}\n"
        f"  group_id: {group}\n"
        f"  topics: [{topic}]\n"
        "  consumer: {session.timeout.ms: 2000, heartbeat.interval.ms: 500}\n"
        "  scale_out: {enabled: true, idle_seconds: 1, checkpoint_interval_seconds: 2}\n"
        "http: {host: 127.0.0.1, port: 0}\n"
        "models:\n" + synthetic.model_config_yaml(str(reference), events=20000, slide=2000)
    )
    doc = yaml.safe_load(text)
    model = doc["models"][synthetic.MODEL]
    doc["models"] = {name: model for name in MODELS}
    path = directory / f"{group}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def applied(ports: list[int]) -> float:
    total = 0.0
    for port in ports:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except httpx.HTTPError:
            continue
        for line in text.splitlines():
            if line.startswith("driftmon_partial_rows_total{") and 'outcome="applied"' in line:
                total += float(line.rsplit(" ", 1)[1])
    return total


def run(directory: Path, bootstrap: str, topic: str, replicas: int, events: int, n: int) -> float:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    group = f"bench{n}"
    for name, parts in ((f"{group}.rows", 4), (f"{group}.checkpoints", 1)):
        for future in admin.create_topics([NewTopic(name, parts, 1)]).values():
            future.result()
    base = config(directory, bootstrap, topic, group, directory / "fraud.profile.json")
    procs, ports = [], []
    for r in range(replicas):
        port = free_port()
        doc = yaml.safe_load(base.read_text())
        doc["http"]["port"] = port
        path = directory / f"{group}-{r}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        log = (directory / f"{group}-{r}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "DRIFTMON_REPLICA_ID": f"r{r}"},
            )
        )
        ports.append(port)
    marks: dict[float, float] = {}
    deadline = time.monotonic() + 600
    try:
        while len(marks) < 2 and time.monotonic() < deadline:
            done = applied(ports)
            for share in (0.1, 0.9):
                if share not in marks and done >= share * events:
                    marks[share] = time.monotonic()
            time.sleep(0.2)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
    if len(marks) < 2:
        raise RuntimeError(f"{replicas} replica(s) did not apply 90% of the events in time")
    return 0.8 * events / (marks[0.9] - marks[0.1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        directory = Path(tmp)
        synthetic.reference_profile(7, 50_000, source="bench").save(
            directory / "fraud.profile.json"
        )
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for future in admin.create_topics([NewTopic("events", 6, 1)]).values():
            future.result()
        prefill(broker.bootstrap, "events", args.events)
        rates: dict[int, list[float]] = {1: [], 2: []}
        n = 0
        for _ in range(args.repeats):
            for replicas in (1, 2):
                n += 1
                rates[replicas].append(run(directory, broker.bootstrap, "events", replicas,
                                           args.events, n))  # fmt: skip
                print(f"  {replicas} replica(s): {rates[replicas][-1]:,.0f} events/s", flush=True)
        one, two = statistics.median(rates[1]), statistics.median(rates[2])
        print(f"events: {args.events:,} over 6 partitions, 2 models x 13 features")
        print(f"1 replica:  {one:,.0f} events/s (median of {args.repeats})")
        print(f"2 replicas: {two:,.0f} events/s (median of {args.repeats})")
        print(f"2 / 1: {two / one:.2f}x")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
