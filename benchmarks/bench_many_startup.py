"""1,000 models x 20 features: start-up, memory per model, and the cost of a scrape.

    python benchmarks/bench_many_startup.py [--models 1000] [--features 20] [--rounds 3]

Each model has its own reference file (copies of one profile), a window of 20 events
sliding by 10 and psi, ks, js; ``limits.max_series`` is raised to fit.

1. in process, medians of ``--rounds``: ``load_config``, ``load_references``,
   ``Pipeline(...)``; memory per model from ``tracemalloc`` (the references as loaded, then
   the pipeline's models: windows, encoders, thresholds, alert state), and the windows'
   own arrays (``SlotWindow.nbytes``).
2. ``driftmon run`` (warm kernel cache) against an embedded broker, 1 model and
   ``--models``: seconds from spawn to ``/readyz`` 200 and the process's RSS then; the RSS
   difference per model.
3. that daemon fed 25 events per model (every window full, every model evaluated): the
   timed ``/metrics``, ``/status`` and ``/status?model=NAME`` (medians of 5), and the
   sizes of the answers, next to Prometheus' default 10 s scrape timeout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import many_models as mm

from monitor.config import load_config
from monitor.model.reference_file import load_references
from monitor.pipeline import Pipeline


def write_case(directory: Path, models: int, features: int, kafka: str, port: int) -> Path:
    """A config of ``models`` models, each with its own copy of one reference file."""
    directory.mkdir(parents=True, exist_ok=True)
    mm.write_profile(directory / "ref.json", features)
    text = mm.config_text(directory, models, features, window=20, slide=10, kafka=kafka)
    text = text.replace("port: 0}", f"port: {port}}}", 1)
    lines = []
    model = None
    for line in text.splitlines():
        if line.startswith("  m") and line.endswith(":"):
            model = line.strip()[:-1]
        if line.startswith("    reference:") and model is not None:
            shutil.copy(directory / "ref.json", directory / f"{model}.json")
            line = f"    reference: {directory / f'{model}.json'}"
        lines.append(line)
    path = directory / "driftmon.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def in_process(path: Path, models: int, rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {"load_config": [], "load_references": [], "Pipeline": []}
    for _ in range(rounds):
        started = time.perf_counter()
        config = load_config(path)
        loaded = time.perf_counter()
        references = load_references(config)
        referenced = time.perf_counter()
        Pipeline(config, references)
        built = time.perf_counter()
        times["load_config"].append(loaded - started)
        times["load_references"].append(referenced - loaded)
        times["Pipeline"].append(built - referenced)
    out = {k: statistics.median(v) for k, v in times.items()}
    config = load_config(path)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    references = load_references(config)
    after_refs = tracemalloc.get_traced_memory()[0]
    pipeline = Pipeline(config, references)
    after_models = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    out["reference bytes/model"] = (after_refs - base) / models
    out["model bytes/model"] = (after_models - after_refs) / models
    windows = [m.default.window for m in pipeline.models.values()]
    out["window array bytes/model"] = sum(w.nbytes for w in windows if w is not None) / models
    return out


def _get(url: str, timeout: float = 60) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - 127.0.0.1
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def daemon(
    path: Path, port: int, feed: list[bytes] | None, bootstrap: str, topic: str
) -> dict[str, float]:
    """``driftmon run`` to ready; with ``feed``, the events produced and the scrapes timed."""
    import orjson
    from bench_many_models import fill

    started = time.perf_counter()
    log = path.with_suffix(".log").open("wb")  # a pipe nobody reads would block the daemon
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    out: dict[str, float] = {}
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(path.with_suffix(".log").read_text()[-2000:])
            try:
                if _get(f"http://127.0.0.1:{port}/readyz", 1)[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        out["ready s"] = time.perf_counter() - started
        out["rss at ready MB"] = _rss_mb(proc.pid)
        if feed is None:
            return out
        fill(bootstrap, topic, feed, create=False)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            doc = orjson.loads(_get(f"http://127.0.0.1:{port}/status")[1])
            if sum(m["events"] for m in doc["models"].values()) >= len(feed):
                break
            time.sleep(2)
        out["rss fed MB"] = _rss_mb(proc.pid)
        queries = (("metrics", "/metrics"), ("status", "/status"), ("one", "/status?model=m0007"))
        for name, query in queries:
            times, size = [], 0
            for _ in range(5):
                t = time.perf_counter()
                status, body = _get(f"http://127.0.0.1:{port}{query}")
                times.append(time.perf_counter() - t)
                size = len(body)
                assert status == 200, (query, status)
            out[f"{name} s"] = statistics.median(times)
            out[f"{name} MB"] = size / 1e6
        return out
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from monitor.demo.broker import EmbeddedBroker
    from tests.support.net import free_port

    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        directory = Path(tmp)
        cases = {}
        for n in (1, args.models):
            port = free_port()
            kafka = (
                f"kafka:\n  bootstrap_servers: {broker.bootstrap}\n  topics: [many-{n}]\n"
                f"  group_id: bench-{n}\n"
                "  consumer: {session.timeout.ms: 6000, heartbeat.interval.ms: 500}\n"
            )
            cases[n] = (write_case(directory / str(n), n, args.features, kafka, port), port)
        figures = in_process(cases[args.models][0], args.models, args.rounds)
        print(f"  in process: {figures}", flush=True)
        load.append(os.getloadavg()[0])
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for topic in ("many-1", f"many-{args.models}"):
            admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(10)
        one = [daemon(*cases[1], None, broker.bootstrap, "many-1") for _ in range(args.rounds)]
        feed = mm.events(25 * args.models, args.models, args.features, seed=9)
        big = [
            daemon(*cases[args.models], None, broker.bootstrap, "") for _ in range(args.rounds - 1)
        ]
        print(f"  run to ready: 1 model {one}, {args.models} models {big}", flush=True)
        big.append(daemon(*cases[args.models], feed, broker.bootstrap, f"many-{args.models}"))
        load.append(os.getloadavg()[0])
    m = args.models
    print(f"{m} models x {args.features} features (window 20/10; psi, ks, js):")
    print(
        "  in process, medians of {r}: load_config {load_config:.2f} s, load_references "
        "{load_references:.2f} s, Pipeline {Pipeline:.2f} s".format(r=args.rounds, **figures)
    )
    print(
        f"  memory per model (tracemalloc): references "
        f"{figures['reference bytes/model'] / 1e3:.1f} kB, models (windows, encoders, "
        f"thresholds, alert state) {figures['model bytes/model'] / 1e3:.1f} kB, of which "
        f"window arrays {figures['window array bytes/model'] / 1e3:.1f} kB"
    )
    ready_one = statistics.median(r["ready s"] for r in one)
    ready_big = statistics.median(r["ready s"] for r in big)
    rss_one = statistics.median(r["rss at ready MB"] for r in one)
    rss_big = statistics.median(r["rss at ready MB"] for r in big)
    print(
        f"  driftmon run to /readyz 200, medians of {args.rounds}: 1 model {ready_one:.2f} s, "
        f"{m} models {ready_big:.2f} s; RSS at ready {rss_one:.0f} MB vs {rss_big:.0f} MB: "
        f"{(rss_big - rss_one) * 1024 / (m - 1):.0f} kB a model"
    )
    fed = big[-1]
    print(
        f"  fed 25 events a model (all evaluated), RSS {fed['rss fed MB']:.0f} MB; medians of 5: "
        f"/metrics {fed['metrics s']:.2f} s ({fed['metrics MB']:.1f} MB), /status "
        f"{fed['status s']:.2f} s ({fed['status MB']:.1f} MB), /status?model= "
        f"{fed['one s'] * 1e3:.0f} ms ({fed['one MB'] * 1e3:.0f} kB); Prometheus' default "
        "scrape timeout is 10 s"
    )
    print(f"load average (1 min) at each step: {' / '.join(f'{x:.2f}' for x in load)}")


if __name__ == "__main__":
    main()
