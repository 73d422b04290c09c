"""End to end on the embedded broker: the daemon against a bare confluent-kafka consumer.

    python benchmarks/bench_e2e.py [--events 600000] [--rounds 3] [--tree DIR] [--profile DIR]

One topic (3 partitions) is filled once with ``--events`` events of 20 numeric features;
then, in interleaved rounds (bare, daemon, bare, daemon, ...), each reads the whole topic
from the start under a new group id:

- the bare loop does nothing but ``consume()`` batches and read ``value()`` of every
  message: no commits, no decoding. It uses the same librdkafka settings and garbage
  collector settings as the daemon (driftmon's defaults under the config's
  ``kafka.consumer``; ``monitor.app.heap``), so that tuning helps both, and the batch size
  that was fastest for it (``--bare-batch``);
- the daemon runs as ``driftmon run`` would, with its default batch size and settings
  (only the group timeouts are set, for the test broker's fast joins).

Both are measured in steady state: the events counted between 10 % and 90 % of the topic
(the bare loop counts messages read, the daemon events accounted for), divided by the time
between the batches that crossed those marks; the group join and the tail are excluded.
Printed: each round, the median of each side and their ratio, the load average, and where
the daemon's CPU went in its steady state: per event, the loop thread (consume, payloads,
accounting), the worker (decode and statistics), the scan helper and librdkafka's threads.

Each daemon round runs in a fresh process (the group join and kernel loading are outside
the steady state). ``--tree DIR`` adds, to every round, a daemon round of another copy of
the package (``git archive REV monitor | tar -x -C DIR``), in alternating order: before and
after in the same run, against the same topic and bare loop.

``--profile DIR`` runs one more daemon round under cProfile, one profile for the loop
thread and one for the worker thread (decode and statistics), written to DIR.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from operator import methodcaller
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson

# A daemon round of another tree (--tree) imports that tree's package.
sys.path.insert(0, os.environ.get("BENCH_E2E_TREE") or str(Path(__file__).resolve().parents[1]))

from monitor.config import Config, load_config
from monitor.stats import FeatureKind, build_profile

N_FEATURES = 20
PARTITIONS = 3
#: Where the steady-state window starts and ends, as shares of the topic.
LOW, HIGH = 0.1, 0.9
_VALUE = methodcaller("value")


class Steady(NamedTuple):
    """The steady state of one round: events per second, and process CPU per event."""

    rate: float
    cpu_us: float


def steady(samples: Sequence[tuple[float, float, int]], total: int) -> Steady:
    """The rate between the first samples at or past 10 % and 90 % of ``total``.

    ``samples``: (wall time, process CPU time, events counted so far) after each batch, in
    order. The window runs from the batch that crossed the low mark to the one that
    crossed the high mark, so the events of the first of those batches (read before its
    time) are not counted. The CPU time is the whole process's (librdkafka's threads too),
    which a busy machine disturbs less than the wall clock.
    """
    low = next((s for s in samples if s[2] >= LOW * total), None)
    high = next((s for s in samples if s[2] >= HIGH * total), None)
    if low is None or high is None or high[0] <= low[0]:
        counted = samples[-1][2] if samples else 0
        raise ValueError(f"no steady state: {counted} of {total} events counted")
    events = high[2] - low[2]
    return Steady(events / (high[0] - low[0]), (high[1] - low[1]) / events * 1e6)


#: Thread groups of the daemon's CPU split, by thread name prefix (the loop is the main thread).
THREAD_GROUPS = (("worker", "driftmon-stats"), ("scan", "driftmon-scan"), ("librdkafka", "rdk:"))


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of this process's threads so far, per group of
    :data:`THREAD_GROUPS`, ``loop`` (the main thread) and ``other``."""
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    main = threading.main_thread().native_id
    tick = os.sysconf("SC_CLK_TCK")
    out = dict.fromkeys(["loop", *(g for g, _ in THREAD_GROUPS), "other"], 0.0)
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/self/task/{tid}/comm") as f:
                comm = f.read().strip()
        except OSError:  # the thread ended meanwhile
            continue
        seconds = (int(fields[11]) + int(fields[12])) / tick
        name = "loop" if int(tid) == main else names.get(int(tid), comm)
        group = next((g for g, prefix in THREAD_GROUPS if name.startswith(prefix)), None)
        out[group or ("loop" if name == "loop" else "other")] += seconds
    return out


def numeric_events(n: int, seed: int) -> list[bytes]:
    """``n`` events of one model with 20 numeric features and a numeric prediction."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 1.0, (n, N_FEATURES)).round(4).tolist()
    prediction = rng.random(n).round(5).tolist()
    names = [f"x{j}" for j in range(N_FEATURES)]
    return [
        orjson.dumps(
            {
                "model": "num",
                "ts": 1.7e9 + i * 0.001,
                "id": f"r{i}",
                "features": dict(zip(names, values[i], strict=True)),
                "prediction": prediction[i],
            }
        )
        for i in range(n)
    ]


def write_profile(path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 50_000
    data: dict[str, Any] = {f"x{j}": rng.normal(0, 1, n) for j in range(N_FEATURES)}
    data["prediction"] = rng.random(n)
    kinds = dict.fromkeys(data, FeatureKind.NUMERIC)
    build_profile("num", data, kinds, source="bench").save(path)


def write_config(directory: Path, bootstrap: str, topic: str) -> Path:
    features = "\n".join(f"      x{j}: {{type: numeric}}" for j in range(N_FEATURES))
    path = directory / "e2e.yaml"
    path.write_text(
        f"""kafka:
  bootstrap_servers: {bootstrap}
  topics: [{topic}]
  consumer: {{session.timeout.ms: 6000, heartbeat.interval.ms: 2000}}
http: {{host: 127.0.0.1, port: 0}}
models:
  num:
    reference: {directory / "num.json"}
    window: {{events: 20000, slide: 2000}}
    features:
{features}
    prediction: {{type: numeric}}
    tests: [psi, ks, js]
"""
    )
    return path


def fill_topic(bootstrap: str, topic: str, n: int) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(10)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for i, payload in enumerate(numeric_events(n, seed=2)):
        while True:
            try:
                # Round-robin over partitions: each gets a third of the topic.
                producer.produce(topic, payload, partition=i % PARTITIONS)
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(120):
        raise RuntimeError("the producer could not deliver every event")


def consumer_settings(config: Config) -> dict[str, Any]:
    """The librdkafka settings the daemon's consumer runs with (defaults, then config)."""
    from monitor.ingest.source import consumer_defaults

    assert config.kafka is not None
    return {**consumer_defaults(), **config.kafka.consumer}


def bare_round(config: Config, group: str, n: int, batch: int) -> Steady:
    """The bare loop: consume() and value() of every message, nothing else."""
    from confluent_kafka import Consumer

    from monitor.app.heap import settle_after_start

    assert config.kafka is not None
    settle_after_start()  # the daemon's collector settings, which help this loop as much
    conf = consumer_settings(config)
    conf.update(
        {
            "bootstrap.servers": config.kafka.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
        }
    )
    consumer = Consumer(conf)
    consumer.subscribe([config.kafka.topics[0].name])
    samples: list[tuple[float, float, int]] = []
    got = 0
    deadline = time.monotonic() + 120
    try:
        while got < n and time.monotonic() < deadline:
            messages = consumer.consume(batch, 0.5)
            values = list(map(_VALUE, messages))
            got += len(values)
            samples.append((time.perf_counter(), time.process_time(), got))
    finally:
        consumer.close()
    return steady(samples, n)


def daemon_round(
    config: Config, group: str, n: int, profile_dir: Path | None = None
) -> tuple[Steady, float, dict[str, float]]:
    """The daemon over the whole topic: its steady state, whole-run rate (start-up in) and
    the steady state's CPU per event of each thread group (us; see :func:`thread_cpu`)."""
    from monitor.app.daemon import Daemon

    assert config.kafka is not None
    kafka = config.kafka.model_copy(update={"group_id": group})
    daemon = Daemon(config.model_copy(update={"kafka": kafka}))
    samples: list[tuple[float, float, int]] = []
    account = daemon.accounting.account
    counted = [0]

    marks: list[tuple[int, dict[str, float]]] = []  # thread CPU at the 10 % and 90 % marks

    def timed(*args: Any, **kwargs: Any) -> Any:
        outcome = account(*args, **kwargs)
        counted[0] += sum(outcome.accepted.values())
        samples.append((time.perf_counter(), time.process_time(), counted[0]))
        if len(marks) < 2 and counted[0] >= (LOW, HIGH)[len(marks)] * n:
            marks.append((counted[0], thread_cpu()))
        return outcome

    daemon.accounting.account = timed  # type: ignore[method-assign]
    worker: cProfile.Profile | None = None
    if profile_dir is not None:
        worker = cProfile.Profile()
        daemon._update = _profiled(daemon._update, worker)  # type: ignore[method-assign]  # noqa: SLF001
    loop = cProfile.Profile() if profile_dir is not None else None
    started = time.perf_counter()
    if loop is not None:
        loop.enable()
    daemon.run(install_signals=False, max_events=n, max_seconds=180)
    if loop is not None and worker is not None and profile_dir is not None:
        loop.disable()
        loop.dump_stats(profile_dir / "loop.prof")
        worker.dump_stats(profile_dir / "worker.prof")
    whole = daemon.events_total / (time.perf_counter() - started)
    if daemon.events_total < n:
        raise RuntimeError(f"the daemon counted {daemon.events_total} of {n} events")
    split: dict[str, float] = {}
    if len(marks) == 2:
        (low_count, low_cpu), (high_count, high_cpu) = marks
        events = max(1, high_count - low_count)
        split = {k: (high_cpu[k] - low_cpu[k]) / events * 1e6 for k in high_cpu}
    return steady(samples, n), whole, split


def daemon_process(
    config_path: Path, group: str, n: int, tree: Path | None = None
) -> tuple[Steady, float, dict[str, float]]:
    """:func:`daemon_round` in a fresh process, of this tree or of ``tree``."""
    env = dict(os.environ)
    if tree is not None:
        env["BENCH_E2E_TREE"] = str(tree)
        env["PYTHONPATH"] = str(tree)
    command = [sys.executable, __file__, "--daemon-round", str(config_path), group, str(n)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    result = [json.loads(line) for line in lines if '"steady"' in line]
    if done.returncode or not result:
        raise RuntimeError(f"daemon round failed ({done.returncode}): {done.stderr[-2000:]}")
    steady_state, whole = result[-1]["steady"], result[-1]["whole"]
    return Steady(*steady_state), whole, result[-1].get("threads", {})


def _daemon_round_main(config_path: str, group: str, n: str) -> None:
    """The child side of :func:`daemon_process`: one line of JSON on stdout."""
    import logging

    logging.disable(logging.INFO)  # the daemon's log lines are not this benchmark's output
    steady_state, whole, split = daemon_round(load_config(Path(config_path)), group, int(n))
    print(json.dumps({"steady": list(steady_state), "whole": whole, "threads": split}), flush=True)


def _profiled(step: Callable[..., Any], profile: cProfile.Profile) -> Callable[..., Any]:
    def run(*args: Any) -> Any:
        profile.enable()
        try:
            return step(*args)
        finally:
            profile.disable()

    return run


def run(
    n: int, rounds: int, bare_batch: int, profile_dir: Path | None = None, tree: Path | None = None
) -> dict[str, Any]:
    """Fill a topic, then interleaved rounds; the medians, their ratios and every round."""
    from monitor.demo.broker import EmbeddedBroker

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        directory = Path(tmp)
        write_profile(directory / "num.json")
        topic = "bench-e2e"
        config_path = write_config(directory, broker.bootstrap, topic)
        config = load_config(config_path)
        fill_topic(broker.bootstrap, topic, n)
        bare: list[Steady] = []
        daemon: list[Steady] = []
        whole: list[float] = []
        splits: list[dict[str, float]] = []
        previous: list[Steady] = []
        for r in range(rounds):
            bare.append(bare_round(config, f"bare-{r}", n, bare_batch))
            if tree is not None and r % 2:  # alternate which of the two goes first
                previous.append(daemon_process(config_path, f"before-{r}", n, tree)[0])
            steady_state, total, split = daemon_process(config_path, f"daemon-{r}", n)
            daemon.append(steady_state)
            whole.append(total)
            splits.append(split)
            if tree is not None and not r % 2:
                previous.append(daemon_process(config_path, f"before-{r}", n, tree)[0])
            if tree is not None:
                print(
                    f"  round {r + 1}: {tree.name} {previous[-1].rate:,.0f}/s "
                    f"({previous[-1].cpu_us:.2f} CPU us an event)",
                    flush=True,
                )
            print(
                f"  round {r + 1}: bare {bare[-1].rate:,.0f}/s ({bare[-1].cpu_us:.2f} CPU us "
                f"an event), daemon {daemon[-1].rate:,.0f}/s ({daemon[-1].cpu_us:.2f} CPU us; "
                f"whole run {total:,.0f}/s), load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
        if profile_dir is not None:
            profile_dir.mkdir(parents=True, exist_ok=True)
            daemon_round(config, "daemon-profile", n, profile_dir)
    rate = (statistics.median(s.rate for s in bare), statistics.median(s.rate for s in daemon))
    cpu = (statistics.median(s.cpu_us for s in bare), statistics.median(s.cpu_us for s in daemon))
    out: dict[str, Any] = {}
    if previous:
        out["before"] = statistics.median(s.rate for s in previous)
        out["before_cpu_us"] = statistics.median(s.cpu_us for s in previous)
        out["before_ratios"] = [p.rate / b.rate for p, b in zip(previous, bare, strict=True)]
        out["tree"] = str(tree)
    return out | {
        "bare": rate[0],
        "daemon": rate[1],
        "ratio": rate[1] / rate[0],
        "ratios": [d.rate / b.rate for d, b in zip(daemon, bare, strict=True)],
        "bare_cpu_us": cpu[0],
        "daemon_cpu_us": cpu[1],
        "daemon_whole": statistics.median(whole),
        "threads": {k: statistics.median(split.get(k, 0.0) for split in splits) for k in splits[0]}
        if splits and splits[0]
        else {},
        "load": (load_before, os.getloadavg()),
    }


def report(result: dict[str, Any], n: int) -> None:
    before, after = result["load"]
    print(
        f"end to end, {n:,} events x {N_FEATURES} numeric features, {PARTITIONS} partitions, "
        f"steady state 10-90 %, medians: daemon {result['daemon']:,.0f} events/s, bare "
        f"consumer {result['bare']:,.0f} msgs/s, ratio {result['ratio']:.2f} (per round "
        f"{', '.join(f'{r:.2f}' for r in result['ratios'])}); process CPU per event: daemon "
        f"{result['daemon_cpu_us']:.2f} us, bare {result['bare_cpu_us']:.2f} us (bare/daemon "
        f"{result['bare_cpu_us'] / result['daemon_cpu_us']:.2f}); daemon whole run "
        f"{result['daemon_whole']:,.0f}/s; load average {before[0]:.2f} at the start, "
        f"{after[0]:.2f} at the end"
    )
    if result["threads"]:
        print(
            "daemon CPU per event by thread (us, medians): "
            + ", ".join(f"{k} {v:.2f}" for k, v in result["threads"].items())
        )
    if "before" in result:
        print(
            f"{result['tree']} (same run, medians): daemon {result['before']:,.0f} events/s, "
            f"ratio {result['before'] / result['bare']:.2f} (per round "
            f"{', '.join(f'{r:.2f}' for r in result['before_ratios'])}), "
            f"{result['before_cpu_us']:.2f} CPU us an event; this tree / that one "
            f"{result['daemon'] / result['before']:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=600_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bare-batch", type=int, default=1000)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--tree", type=Path, default=None, help="another copy of the package")
    if len(sys.argv) == 5 and sys.argv[1] == "--daemon-round":
        _daemon_round_main(*sys.argv[2:])
        return
    args = parser.parse_args()
    tree = args.tree.resolve() if args.tree is not None else None
    result = run(args.events, args.rounds, args.bare_batch, args.profile, tree)
    report(result, args.events)


if __name__ == "__main__":
    main()
