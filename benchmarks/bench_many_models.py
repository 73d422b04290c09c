"""One driftmon, many models: the same events as 1 model and as 200, in one run.

    python benchmarks/bench_many_models.py [--events 400000] [--models 200] [--rounds 3]
        [--skip-kafka] [--e2e-events 300000] [--tree BEFORE]

1. replay: ``replay()`` in process (the figure ``driftmon replay`` prints) over the same
   ``--events`` events of 10 numeric features, once all of model ``m0000`` and once spread
   uniformly over ``--models`` models, windows larger than the stream (nothing evaluated,
   so only the per-batch work is measured); interleaved rounds, medians and their ratio,
   by the wall clock and per CPU second of the process.
2. the fixed cost per model and batch: ``Pipeline.process`` of an already decoded batch
   holding 1 and 100 rows of each of ``--models`` models, per model (CPU time of the thread);
   with ``--tree BEFORE`` the same measured in a subprocess on another checkout, interleaved.
3. end to end on the embedded broker (``bench_e2e``'s machinery): the daemon over one topic
   of ``--e2e-events`` events of one model, then over a topic of the same events spread over
   ``--models`` models; steady-state medians and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# BENCH_TREE: the checkout whose package is measured (--tree runs one in a subprocess).
sys.path.insert(0, os.environ.get("BENCH_TREE", str(Path(__file__).resolve().parents[1])))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import many_models as mm

from monitor.app.replay import replay
from monitor.config import load_config
from monitor.model.reference_file import load_references
from monitor.pipeline import Pipeline

FEATURES = 10
HUGE = 4_000_000  # window events: larger than any stream here, so nothing is evaluated


def write_case(directory: Path, models: int, events: list[bytes] | None) -> Path:
    """A config of ``models`` models (and the events file when given) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    mm.write_profile(directory / "ref.json", FEATURES)
    path = directory / "config.yaml"
    path.write_text(mm.config_text(directory, models, FEATURES, window=HUGE, slide=HUGE // 4))
    if events is not None:
        (directory / "events.jsonl").write_bytes(b"\n".join(events) + b"\n")
    return path


class _CpuClock:
    """Stands in for the ``time`` module of ``monitor.app.replay``: its two
    ``perf_counter`` calls (the start and the end of the span ``replay`` times) also read
    the process's CPU clock, so the CPU seconds cover exactly that span (not the pipeline's
    construction before it nor the summary after it)."""

    def __init__(self) -> None:
        self.marks: list[float] = []

    def perf_counter(self) -> float:
        self.marks.append(time.process_time())
        return time.perf_counter()

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)


def replay_rate(directory: Path) -> tuple[float, float]:
    """Events per second of ``replay()`` (its own figure) and per CPU second of the
    process over the same span (every thread: the decode worker and the scan helper too;
    far less sensitive than the wall clock to other work on a shared machine)."""
    import monitor.app.replay as replay_module

    config = load_config(directory / "config.yaml")
    references = load_references(config, directory)
    clock = _CpuClock()
    replay_module.time = clock  # type: ignore[assignment]
    try:
        summary = replay(config, references, directory / "events.jsonl", None)
    finally:
        replay_module.time = time
    cpu = clock.marks[-1] - clock.marks[0]
    return summary.events_per_second, summary.lines / cpu if cpu > 0 else 0.0


def fixed_cost(models: int, rounds: int = 15) -> dict[str, float]:
    """Per model and batch, µs of ``Pipeline.process`` for 1 and for 100 rows a model (CPU
    time of the calling thread, where all of it runs: load on the machine moves it little)."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        config = load_config(write_case(directory, models, None))
        pipeline = Pipeline(config, load_references(config, directory))
        out: dict[str, float] = {}
        for rows in (1, 100):
            events = mm.events(models * rows, models, FEATURES, seed=rows)
            ts = np.full(len(events), 1.7e9)
            times = []
            for _ in range(rounds + 1):
                decoded = pipeline.decode(events, ts, pipeline.schema(None))
                started = time.thread_time()
                pipeline.process(events, ts, decoded=decoded)
                times.append(time.thread_time() - started)
            out[f"{rows} row"] = statistics.median(times[1:]) / models * 1e6
    return out


def e2e(events: int, models: int, rounds: int) -> dict[str, list[float]]:
    """Daemon steady-state rates over the same events as 1 model and as ``models``."""
    import bench_e2e

    from monitor.demo.broker import EmbeddedBroker

    rates: dict[str, list[float]] = {"1": [], str(models): []}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        directory = Path(tmp)
        configs = {}
        for n in (1, models):
            topic = f"many-{n}"
            case = directory / str(n)
            kafka = (
                f"kafka:\n  bootstrap_servers: {broker.bootstrap}\n  topics: [{topic}]\n"
                "  consumer: {session.timeout.ms: 6000, heartbeat.interval.ms: 2000}\n"
            )
            case.mkdir()
            mm.write_profile(case / "ref.json", FEATURES)
            path = case / "config.yaml"
            path.write_text(
                mm.config_text(case, n, FEATURES, window=HUGE, slide=HUGE // 4, kafka=kafka)
            )
            configs[str(n)] = load_config(path)
            fill(broker.bootstrap, topic, mm.events(events, n, FEATURES, seed=3))
        for r in range(rounds):
            for key, config in configs.items():
                steady, _ = bench_e2e.daemon_round(config, f"g{key}-{r}", events)
                rates[key].append(steady.rate)
                print(f"  e2e round {r + 1}, {key} model(s): {steady.rate:,.0f}/s", flush=True)
    return rates


def fill(bootstrap: str, topic: str, payloads: list[bytes], create: bool = True) -> None:
    import bench_e2e
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    if create:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, bench_e2e.PARTITIONS, 1)])[topic].result(10)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for i, payload in enumerate(payloads):
        while True:
            try:
                producer.produce(topic, payload, partition=i % bench_e2e.PARTITIONS)
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(120):
        raise RuntimeError("the producer could not deliver every event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--e2e-events", type=int, default=300_000)
    parser.add_argument("--skip-kafka", action="store_true")
    parser.add_argument("--tree", type=Path, default=None, help="another checkout: fixed cost")
    parser.add_argument("--fixed-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--replay-in", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fixed_only:  # the subprocesses of --tree
        print(json.dumps(fixed_cost(args.models)))
        return
    if args.replay_in is not None:
        replay_rate(args.replay_in)  # untimed: kernels and caches
        print(json.dumps(replay_rate(args.replay_in)))
        return
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        one = mm.events(args.events, 1, FEATURES, seed=1)
        spread = zip(one, _names(args), strict=True)
        many = [line.replace(b'"m0000"', name) for line, name in spread]
        write_case(directory / "one", 1, one)
        write_case(directory / "many", args.models, many)
        replay_rate(directory / "one")  # untimed: kernels and caches
        rates: dict[str, list[tuple[float, float]]] = {"one": [], "many": []}
        before: dict[str, list[tuple[float, float]]] = {"one": [], "many": []}
        for _ in range(args.rounds):
            for key in rates:
                rates[key].append(replay_rate(directory / key))
                if args.tree is not None:
                    before[key].append(_replay_in(args.tree, directory / key))
    load.append(os.getloadavg()[0])
    if args.tree is not None:
        _print_replay("replay before (--tree, a subprocess each round, same rounds)", before, args)
    _print_replay(
        f"replay in process, {args.events:,} events x {FEATURES} features, windows larger than "
        f"the stream, medians of {args.rounds} interleaved rounds",
        rates,
        args,
    )
    trees = {"this tree": None} if args.tree is None else {"this tree": None, "before": args.tree}
    costs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            costs[name].append(fixed_cost(args.models) if tree is None else _fixed_in(tree, args))
    for name, runs in costs.items():
        line = ", ".join(
            f"{key}s a model {statistics.median(r[key] for r in runs):.1f} us" for key in runs[0]
        )
        print(f"Pipeline.process per model and batch ({name}, {args.models} models): {line}")
    load.append(os.getloadavg()[0])
    if not args.skip_kafka:
        e2e_rates = e2e(args.e2e_events, args.models, args.rounds)
        one_e2e, many_e2e = (statistics.median(v) for v in e2e_rates.values())
        print(
            f"end to end, {args.e2e_events:,} events, steady state 10-90 %, medians: 1 model "
            f"{one_e2e:,.0f}/s, {args.models} models {many_e2e:,.0f}/s; ratio "
            f"{many_e2e / one_e2e:.2f}"
        )
        load.append(os.getloadavg()[0])
    print(f"load average (1 min) at each step: {' / '.join(f'{x:.2f}' for x in load)}")


def _names(args: argparse.Namespace) -> list[bytes]:
    """For each event, a model drawn uniformly: the same events, spread."""
    which = np.random.default_rng(5).integers(0, args.models, args.events)
    names = [f'"{n}"'.encode() for n in mm.model_names(args.models)]
    return [names[k] for k in which.tolist()]


def _rounds(values: list[float]) -> str:
    return " / ".join(f"{v:,.0f}" for v in values)


def _print_replay(
    title: str, rates: dict[str, list[tuple[float, float]]], args: argparse.Namespace
) -> None:
    """The wall-clock rates (``replay``'s own figure; the bar) and the rates per CPU second."""
    for i, what in enumerate(("wall clock", "per CPU second (all threads)")):
        one = [r[i] for r in rates["one"]]
        many = [r[i] for r in rates["many"]]
        one_rate, many_rate = statistics.median(one), statistics.median(many)
        bar = " (bar 0.6, moonshot 0.9)" if i == 0 else ""
        print(
            f"{title}, {what}: 1 model {one_rate:,.0f}/s ({_rounds(one)}), {args.models} models "
            f"{many_rate:,.0f}/s ({_rounds(many)}); ratio {many_rate / one_rate:.2f}{bar}"
        )


def _replay_in(tree: Path, directory: Path) -> tuple[float, float]:
    env = {**os.environ, "BENCH_TREE": str(tree.resolve())}
    command = [sys.executable, __file__, "--replay-in", str(directory)]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    rate, cpu = json.loads(out.strip().splitlines()[-1])
    return float(rate), float(cpu)


def _fixed_in(tree: Path, args: argparse.Namespace) -> dict[str, float]:
    env = {**os.environ, "BENCH_TREE": str(tree.resolve())}
    command = [sys.executable, __file__, "--fixed-only", "--models", str(args.models)]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    main()
