"""warmup() compiles every kernel and fills the Numba cache; a second process reuses it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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
    cache = str(tmp_path / "numba")
    first = run(cache)
    files = [f for _, _, fs in os.walk(cache) for f in fs]
    assert any(f.endswith(".nbi") for f in files) and any(f.endswith(".nbc") for f in files)
    assert any(line.startswith("[cache] data saved") for line in first)
    # The second process compiles nothing: every kernel comes from the cache.
    second = run(cache)
    assert any(line.startswith("[cache] data loaded") for line in second)
    assert not [line for line in second if "saved" in line]
