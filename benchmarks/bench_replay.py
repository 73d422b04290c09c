"""``driftmon replay`` as a user runs it: the whole process, start-up included.

    python benchmarks/bench_replay.py [--events 500000] [--rounds 5] [--tree DIR ...]
        [--sequential]

(``--tree``: another copy of the package, e.g. ``git archive REV monitor | tar -x -C DIR``,
run with this interpreter and ``PYTHONPATH=DIR``.)

Writes a JSON-lines file of 20-feature events (12 numeric, 8 categorical, a numeric
prediction; window 20,000 / slide 2,000, tests psi, ks, js, chi2) and, round by round,
interleaved, times:

* ``driftmon replay`` as a subprocess of this tree (and of every ``--tree``, for a before
  and after in the same run), from the interpreter's start to its exit;
* the baseline, whole process too: ``python -c "import orjson; [orjson.loads(l) for l in
  open(f, 'rb')]"``, parsing every line and nothing else;
* in this process, ``orjson.loads`` of the same lines (no start-up, no file reading).

The Numba cache is warmed first (``make warm``'s ``warm_all``) and Python's bytecode cache
written by one untimed run of each command (as after an install): start-up is a warm start.
Prints medians of the rounds, CPU seconds, the ratios and the load average before and after.

``--sequential`` adds a run of this tree with the sequential tests too (``tests: [psi, ks,
js, chi2, cusum, bin_cusum]``, their default thresholds): their whole-process cost.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_pipeline import wide_config, wide_events, wide_profile  # noqa: E402

WARM = "from monitor.app.kernels import warm_all; warm_all()"
BASELINE = "import orjson, sys; [orjson.loads(l) for l in open(sys.argv[1], 'rb')]"


def timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float]:
    """Wall and CPU (user + system) seconds of one run of ``command``, and the seconds
    ``driftmon replay`` reports for its own loop (NaN for other commands)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    loop = re.search(rb"replayed \d+ line\(s\) in ([\d.]+) s", done.stderr)
    return wall, cpu, float(loop.group(1)) if loop else math.nan


def in_process_orjson(lines: list[bytes]) -> float:
    started = time.perf_counter()
    for line in lines:
        orjson.loads(line)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--tree", type=Path, action="append", default=[], help="another copy of the package"
    )
    parser.add_argument("--sequential", action="store_true", help="also with cusum, bin_cusum")
    args = parser.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a normal install has its bytecode cached
    envs = {"this tree": env}
    trees = {"this tree": HERE.parent}
    for tree in args.tree:
        trees[str(tree)] = tree.resolve()
        envs[str(tree)] = {**env, "PYTHONPATH": str(tree.resolve())}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        wide_profile(directory / "wide.json")
        lines = wide_events(args.events, seed=1)
        events = directory / "events.jsonl"
        events.write_bytes(b"\n".join(lines) + b"\n")
        config = wide_config(directory, "127.0.0.1:9", "unused")
        commands = {
            name: [sys.executable, "-m", "monitor", "replay", "--config", str(config)]
            + ["--input", str(events), "--output", os.devnull]
            for name in trees
        }
        if args.sequential:
            text = config.read_text().replace(
                "tests: [psi, ks, js, chi2]", "tests: [psi, ks, js, chi2, cusum, bin_cusum]"
            )
            assert text != config.read_text(), "the wide config's tests line changed"
            sequential = config.with_name("sequential.yaml")
            sequential.write_text(text)
            name = "this tree, with cusum + bin_cusum"
            commands[name] = [
                *commands["this tree"][:5],
                str(sequential),
                *commands["this tree"][6:],
            ]
            trees[name], envs[name] = trees["this tree"], env
        commands["orjson whole process"] = [sys.executable, "-c", BASELINE, str(events)]
        trees["orjson whole process"] = HERE.parent
        envs["orjson whole process"] = env
        for name in trees:  # as `make warm`: a short replay never waits for the scanner
            if name != "orjson whole process":
                timed([sys.executable, "-c", WARM], envs[name], trees[name])
        for name, command in commands.items():  # untimed: bytecode and page caches
            timed(command, envs[name], trees[name])
        load_before = os.getloadavg()
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        loops: dict[str, list[float]] = {name: [] for name in commands}
        loads_in_process: list[float] = []
        for _ in range(args.rounds):
            for name, command in commands.items():
                wall, cpu, loop = timed(command, envs[name], trees[name])
                walls[name].append(wall)
                cpus[name].append(cpu)
                loops[name].append(loop)
            loads_in_process.append(in_process_orjson(lines))
        load_after = os.getloadavg()
    n = args.events
    rate = {name: n / statistics.median(w) for name, w in walls.items()}
    baseline = rate["orjson whole process"]
    in_process = n / statistics.median(loads_in_process)
    print(
        f"{n:,} events, {args.rounds} rounds interleaved; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min)"
    )
    for name in commands:
        print(
            f"{name:>28}: {rate[name]:>9,.0f} events/s whole process (median wall "
            f"{statistics.median(walls[name]):.2f} s, CPU {statistics.median(cpus[name]):.2f} s"
            f"; rounds {' '.join(f'{w:.2f}' for w in walls[name])}), "
            f"{rate[name] / baseline:.2f} x the orjson process"
        )
        if name in trees and name != "orjson whole process":
            print(f"{'':>30}in-process loop {n / statistics.median(loops[name]):,.0f} events/s")
    print(f"{'orjson.loads in process':>28}: {in_process:>9,.0f} events/s (lines in memory)")
    replay_rate = rate["this tree"]
    print(
        f"driftmon replay / orjson.loads in process: {replay_rate / in_process:.2f}; "
        f"target 300,000 events/s whole process: {'met' if replay_rate >= 300_000 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
