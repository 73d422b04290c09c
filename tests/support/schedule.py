"""The order tests are handed to pytest-xdist workers in, so the longest files start first,
each on its own worker.

``--dist worksteal`` first hands every worker a contiguous block of the collection
(``len(pending) // workers_left`` tests each, in worker order), then lets an idle worker take
the back half of the longest queue. Tests at the front of a block therefore always run on
that block's worker, one after another: with the slow files simply sorted first, every
integration test sat in worker 0's block and the longest of them ran back to back (CI's
critical path). Here the files are spread over the blocks longest first (each file goes to
the block with the least expected time that has room for it), and each block starts with
its longest file, so what a thief takes from its back is cheap.

Expected seconds per file come from ``tests/durations.json`` (``make durations`` rewrites
it from a run's JUnit report). The figures only order the tests: a stale or missing one
costs CI time, never a result. A file it does not list counts ``DEFAULT_SLOW`` seconds if
a test in it is marked ``slow``, else ``DEFAULT_PER_TEST`` per test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

__all__ = ["DURATIONS", "block_sizes", "load_durations", "schedule"]

DURATIONS = Path(__file__).resolve().parents[1] / "durations.json"
DEFAULT_SLOW = 20.0
DEFAULT_PER_TEST = 0.2

T = TypeVar("T")


def load_durations(path: Path = DURATIONS) -> dict[str, float]:
    """File -> expected seconds; empty when the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}


def block_sizes(count: int, workers: int) -> list[int]:
    """How many tests each worker's first block holds (xdist's worksteal split)."""
    sizes = []
    left = count
    for i in range(workers):
        size = left // (workers - i)
        sizes.append(size)
        left -= size
    return sizes


def schedule(
    items: Sequence[T],
    file_of: Callable[[T], str],
    seconds: Mapping[str, float],
    workers: int,
) -> list[T]:
    """``items`` reordered for ``workers`` worksteal workers (see the module docstring);
    a file's tests keep their order, and stay together unless no block has room."""
    files: dict[str, list[T]] = {}
    for item in items:
        files.setdefault(file_of(item), []).append(item)
    order = sorted(files, key=lambda f: (-seconds[f], f))
    if workers <= 1:
        return [item for f in order for item in files[f]]
    room = block_sizes(len(items), workers)
    load = [0.0] * workers
    blocks: list[list[tuple[float, str, list[T]]]] = [[] for _ in range(workers)]
    for name in order:
        tests = files[name]
        per_test = seconds[name] / len(tests)
        while tests:
            fits = [b for b in range(workers) if room[b] >= len(tests)]
            open_ = fits or [b for b in range(workers) if room[b] > 0]
            block = min(open_, key=lambda b: (load[b], b))
            part, tests = tests[: room[block]], tests[room[block] :]
            blocks[block].append((per_test * len(part), name, part))
            room[block] -= len(part)
            load[block] += per_test * len(part)
    return [
        item
        for block in blocks
        for _, _, part in sorted(block, key=lambda e: (-e[0], e[1]))
        for item in part
    ]
