"""Compiled kernels go to a per-user cache directory unless the user chose one, never into
the package directory; ``make warm``, the tests and CI all resolve the same one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRINT_DIR = "import monitor, numba; print(numba.config.CACHE_DIR)"


def _python(code: str, **env: str | None) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in env}
    environ.update({k: v for k, v in env.items() if v is not None})
    proc = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_default_is_under_xdg_cache_home(tmp_path: Path) -> None:
    out = _python(PRINT_DIR, NUMBA_CACHE_DIR=None, XDG_CACHE_HOME=str(tmp_path))
    assert out == str(tmp_path / "driftmon" / "numba")


def test_without_xdg_cache_home_it_is_under_home(tmp_path: Path) -> None:
    out = _python(PRINT_DIR, NUMBA_CACHE_DIR=None, XDG_CACHE_HOME=None, HOME=str(tmp_path))
    assert out == str(tmp_path / ".cache" / "driftmon" / "numba")


def test_the_users_numba_cache_dir_wins(tmp_path: Path) -> None:
    out = _python(PRINT_DIR, NUMBA_CACHE_DIR=str(tmp_path / "mine"), XDG_CACHE_HOME="/nowhere")
    assert out == str(tmp_path / "mine")


def test_numba_imported_before_monitor_still_gets_the_default(tmp_path: Path) -> None:
    code = "import numba; import monitor; print(numba.config.CACHE_DIR)"
    out = _python(code, NUMBA_CACHE_DIR=None, XDG_CACHE_HOME=str(tmp_path))
    assert out == str(tmp_path / "driftmon" / "numba")


@pytest.mark.slow
def test_kernels_are_cached_in_the_default_dir_and_nothing_in_the_package(
    tmp_path: Path,
) -> None:
    started = time.time()
    code = (
        "import numpy as np; from monitor.stats.window import _count_codes; "
        "_count_codes(np.zeros((2, 1), np.int64), np.zeros((1, 3), np.int64))"
    )
    _python(code, NUMBA_CACHE_DIR=None, XDG_CACHE_HOME=str(tmp_path))
    cached = [p.name for p in (tmp_path / "driftmon" / "numba").rglob("*.nbi")]
    assert any("._count_codes-" in name for name in cached), cached
    in_package = [p for p in (ROOT / "monitor").rglob("*.nb[ic]") if p.stat().st_mtime >= started]
    assert not in_package


def test_make_sets_no_cache_dir_of_its_own() -> None:
    """``make warm`` fills the cache the tests read only if neither overrides the default."""
    makefile = (ROOT / "Makefile").read_text()
    assert "NUMBA_CACHE_DIR=" not in makefile
    assert not re.search(r"^\s*export\s+NUMBA_CACHE_DIR", makefile, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "NUMBA_CACHE_DIR" not in ci and "make test" in ci
