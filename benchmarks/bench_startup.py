"""Start-up cost, whole process: cold (empty Numba cache) and warm.

    python benchmarks/bench_startup.py [--rounds 3] [--tree DIR ...] [--kernels]

For each round and each source tree (default: this checkout; give ``--tree`` twice to
compare two checkouts in interleaved rounds of one session), every figure a fresh process
timed from spawn to exit (or to ``/readyz`` answering 200):

* ``imports``: ``python -c "import <the daemon's dependencies>"``, the floor a warm start
  is compared with;
* ``replay cold`` / ``replay warm``: ``driftmon replay`` of 100 synthetic events, first with
  an empty ``NUMBA_CACHE_DIR``, then with the cache that run filled;
* ``run cold`` / ``run warm``: ``driftmon run`` against an embedded broker until
  ``/readyz`` says 200, likewise;
* each with ``cpu``: the CPU seconds of that process and its children (for ``run``, its
  whole life: it is stopped once ready), which a busy machine inflates less than wall time.

Python's bytecode cache is on (``PYTHONDONTWRITEBYTECODE`` is dropped), as in a normal
install. Prints the median of each and the load average. ``--kernels`` instead compiles
every kernel once in this process with an empty cache and lists each top-level
compilation with its seconds (callees inlined into it are included in its figure).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEPENDENCIES = (
    "numpy, numba, scipy.special, confluent_kafka, pydantic, prometheus_client, "
    "httpx, orjson, msgspec, yaml"
)


def _env(cache: Path, tree: Path) -> dict[str, str]:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(tree))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


# Every process runs in the cache's parent, a directory with no ``monitor`` in it: ``-m``
# and ``-c`` put the working directory before PYTHONPATH, so run from a checkout every
# ``--tree`` would have measured that checkout.
def _cwd(env: dict[str, str]) -> str:
    return str(Path(env["NUMBA_CACHE_DIR"]).parent)


def _setup(workdir: Path, bootstrap: str, topic: str, port: int) -> tuple[Path, Path]:
    from monitor.demo import synthetic

    reference = workdir / "fraud.json"
    synthetic.reference_profile(rows=5_000).save(reference)
    config = workdir / "driftmon.yaml"
    config.write_text(
        "kafka:\n"
        f"  bootstrap_servers: {bootstrap}\n"
        "  group_id: bench-startup\n"
        f"  topics: [{topic}]\n"
        "  consumer: {session.timeout.ms: 6000, heartbeat.interval.ms: 500}\n"
        f"http: {{host: 127.0.0.1, port: {port}}}\n"
        "models:\n" + synthetic.model_config_yaml(str(reference), events=40, slide=20)
    )
    events = workdir / "events.jsonl"
    import numpy as np

    cols = synthetic.generate(np.random.default_rng(1), 100)
    lines = synthetic.to_events(cols, start_ts=1.7e9, step_seconds=0.1)
    events.write_bytes(b"\n".join(lines) + b"\n")
    return config, events


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (children included) of one process."""
    cpu, started = _cpu(), time.perf_counter()
    subprocess.run(args, env=env, cwd=_cwd(env), check=True, capture_output=True, timeout=600)
    return time.perf_counter() - started, _cpu() - cpu


def _until_ready(args: list[str], env: dict[str, str], port: int) -> tuple[float, float]:
    """Wall seconds until ``/readyz`` is 200; CPU seconds of the whole process (stopped then)."""
    cpu, started = _cpu(), time.perf_counter()
    proc = subprocess.Popen(
        args, env=env, cwd=_cwd(env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    ready = None
    try:
        while ready is None:
            if proc.poll() is not None:
                raise RuntimeError(f"driftmon run exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        ready = time.perf_counter() - started
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return ready, _cpu() - cpu


def measure(rounds: int, trees: list[Path]) -> dict[Path, dict[str, list[float]]]:
    from monitor.demo.broker import EmbeddedBroker, free_port
    from monitor.demo.runner import _create_topic

    figures: dict[Path, dict[str, list[float]]] = {tree: {} for tree in trees}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp, EmbeddedBroker() as broker:
        workdir = Path(tmp)
        _create_topic(broker.bootstrap, "bench.startup", partitions=1)
        port = free_port()
        config, events = _setup(workdir, broker.bootstrap, "bench.startup", port)
        py = sys.executable
        replay = [py, "-m", "monitor", "replay", "--config", str(config), "--input", str(events)]
        run = [py, "-m", "monitor", "run", "--config", str(config)]
        for tree in trees:  # write the bytecode caches first: no round pays for them
            _timed([py, "-m", "monitor", "--help"], _env(workdir / "numba-prime", tree))
            _timed([py, "-c", "import monitor.app.daemon, scipy.optimize"], _env(workdir, tree))
        for r in range(rounds):
            for tree in trees:
                cache = workdir / f"numba-{r}"
                env = _env(cache, tree)
                steps: list[tuple[str, Callable[[], tuple[float, float]]]] = [
                    ("imports", partial(_timed, [py, "-c", f"import {DEPENDENCIES}"], env)),
                    ("replay cold", partial(_timed, replay, env)),
                    ("replay warm", partial(_timed, replay, env)),
                    ("run cold", partial(_until_ready, run, env, port)),
                    ("run warm", partial(_until_ready, run, env, port)),
                ]
                for name, step in steps:
                    if name == "run cold":
                        shutil.rmtree(cache, ignore_errors=True)
                    wall, cpu = step()
                    figures[tree].setdefault(name, []).append(wall)
                    figures[tree].setdefault(f"{name} cpu", []).append(cpu)
                shutil.rmtree(cache, ignore_errors=True)
                last = ", ".join(f"{k} {v[-1]:.2f} s" for k, v in figures[tree].items())
                print(f"round {r + 1} {tree}: {last}", flush=True)
    return figures


def kernels() -> None:
    """Every top-level compilation of a full warm-up, with an empty cache, slowest first."""
    cache = tempfile.mkdtemp(prefix="bench-kernels-")
    os.environ["NUMBA_CACHE_DIR"] = cache
    from numba.core import event

    class Timer(event.Listener):  # type: ignore[misc]
        def __init__(self) -> None:
            self.depth = 0
            self.started: list[float] = []
            self.rows: list[tuple[float, str]] = []

        def on_start(self, ev: event.Event) -> None:
            self.depth += 1
            self.started.append(time.perf_counter())

        def on_end(self, ev: event.Event) -> None:
            self.depth -= 1
            seconds = time.perf_counter() - self.started.pop()
            if self.depth == 0:
                d = ev.data["dispatcher"]
                name = f"{d.py_func.__module__.rsplit('.', 1)[-1]}.{d.py_func.__name__}"
                self.rows.append((seconds, f"{name}{ev.data['args']}"))

    timer = Timer()
    event.register("numba:compile", timer)
    from monitor.app.kernels import warm_all

    total = warm_all()
    for seconds, name in sorted(timer.rows, reverse=True):
        print(f"{seconds:7.2f} s  {name[:140]}")
    print(f"{sum(s for s, _ in timer.rows):7.2f} s  in {len(timer.rows)} compilations")
    print(f"{total:7.2f} s  warm_all() in all")
    shutil.rmtree(cache, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kernels", action="store_true", help="per-kernel compile times")
    parser.add_argument("--tree", type=Path, action="append", help="source tree (repeatable)")
    args = parser.parse_args()
    if args.kernels:
        kernels()
        return
    trees = [t.resolve() for t in args.tree or [ROOT]]
    figures = measure(args.rounds, trees)
    for tree, values in figures.items():
        print(f"\n{tree}: medians of {args.rounds} rounds (whole process, seconds)")
        for name, series in values.items():
            print(f"  {name:<16} {statistics.median(series):6.2f}")
        floor = statistics.median(values["imports"])
        print(f"  replay warm - imports: {statistics.median(values['replay warm']) - floor:.2f}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
