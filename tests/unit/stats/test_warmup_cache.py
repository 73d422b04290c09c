"""warmup() fills the Numba cache with what it compiles; a second process reuses it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.numba_cache import cache_without

SCRIPT = "from monitor.stats import warmup; warmup()"


def run(cache_dir: str) -> list[str]:
    """Run warmup in a fresh process; return Numba's cache log lines."""
    # JIT on even when the suite runs with NUMBA_DISABLE_JIT=1: this tests the cache itself
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, NUMBA_DEBUG_CACHE="1", NUMBA_DISABLE_JIT="0")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        check=True,
        timeout=600,
        capture_output=True,
        text=True,
    )
    return [line for line in proc.stdout.splitlines() if line.startswith("[cache]")]


@pytest.mark.slow
def test_warmup_populates_cache_and_a_second_start_reuses_it(tmp_path):
    # The warm cache without one kernel: the first process compiles and saves only that
    # (test_cold_start.py fills an empty cache), the second loads every kernel.
    cache = str(cache_without(tmp_path / "numba", ["_count_codes"]))
    first = run(cache)
    saved = [line for line in first if line.startswith("[cache] data saved")]
    assert saved and all("_count_codes" in line for line in saved), saved
    files = [f for _, _, fs in os.walk(cache) for f in fs if "_count_codes" in f]
    assert any(f.endswith(".nbi") for f in files) and any(f.endswith(".nbc") for f in files)
    # The second process compiles nothing: every kernel comes from the cache.
    second = run(cache)
    assert any("_count_codes" in line for line in second if line.startswith("[cache] data loaded"))
    assert not [line for line in second if "saved" in line]
