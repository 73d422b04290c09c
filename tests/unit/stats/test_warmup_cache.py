"""warmup() compiles every kernel and fills the Numba cache; a second process reuses it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

SCRIPT = "from monitor.stats import warmup; warmup()"


def run(cache_dir: str) -> float:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True, timeout=600)
    return time.perf_counter() - start


def test_warmup_populates_cache_and_second_start_is_fast(tmp_path):
    cache = str(tmp_path / "numba")
    cold = run(cache)
    files = [f for _, _, fs in os.walk(cache) for f in fs]
    assert any(f.endswith(".nbi") for f in files) and any(f.endswith(".nbc") for f in files)
    warm = run(cache)
    assert warm < cold
    assert warm < 8.0  # interpreter + numpy/scipy/numba imports + loading the cache
