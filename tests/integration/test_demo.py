"""`driftmon demo`, the README's first command: the whole loop, warm and on a first run
(empty Numba cache), and a non-zero exit with the reason when the loop did not close."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.numba_cache import cache_without, cached_kernels

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _demo(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "monitor", "demo", "--plain", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


def _closed_the_loop(result: subprocess.CompletedProcess[str]) -> None:
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "/metrics" in out
    assert "driftmon ready after" in out
    assert "drift confirmed" in out
    assert "drift injected into: amount, country, device, prediction" in out
    assert "features flagged in the last evaluation: amount, country, device, prediction" in out
    assert "retrain webhook received: 1 call(s)" in out
    assert "demo failed" not in out
    assert "Traceback" not in result.stderr


def test_demo_confirms_drift_receives_the_webhook_and_exits_zero() -> None:
    _closed_the_loop(_demo("--duration", "25"))


def test_a_first_run_says_it_compiles_and_its_clock_starts_when_ready(tmp_path: Path) -> None:
    # The drift statistics' kernel missing from the cache: a first run's compile before
    # ready, without compiling everything again (test_cold_start.py does that once).
    cache = cache_without(tmp_path / "numba", ["_evaluate_model"])
    result = _demo("--duration", "25", env={"NUMBA_CACHE_DIR": str(cache)}, timeout=600)
    out = result.stdout
    assert "compiling kernels (first run only): drift statistics (1/1)" in out, out
    assert "kernels compiled; later starts load them from the cache" in out
    # the 25 s ran after the compile: drift was still injected, confirmed and delivered
    _closed_the_loop(result)
    assert "_evaluate_model" in cached_kernels(cache)


def test_a_run_too_short_for_drift_exits_one_with_the_reason() -> None:
    result = _demo("--duration", "3")
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "=== driftmon demo summary ===" in out
    assert "demo failed: no retrain webhook arrived: the run ended before drift was injected" in out
    assert "Traceback" not in result.stderr
