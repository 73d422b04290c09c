"""Compiled kernels go to a per-user cache directory unless the user chose one, never into
the package directory; ``make warm``, the tests and CI all resolve the same one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRINT_DIR = "import monitor, numba; print(numba.config.CACHE_DIR)"


def _python(code: str, cwd: Path | None = None, **env: str | None) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in env}
    environ.update({k: v for k, v in env.items() if v is not None})
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
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


def test_the_digest_follows_kernel_modules_only(tmp_path: Path) -> None:
    from monitor._numba_cache import kernel_sources_digest

    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    kernel, helper, plain = package / "k.py", package / "sub" / "h.py", package / "p.py"
    kernel.write_text("from jsonlex import no_nrt\n")
    helper.write_text("from numba import njit  # inlined by k\n")
    plain.write_text("import numba  # no kernel here\n")
    first = kernel_sources_digest.__wrapped__(package)
    plain.write_text("import numba  # still none\n")
    assert kernel_sources_digest.__wrapped__(package) == first
    helper.write_text("from numba import njit  # inlined by k, changed\n")
    second = kernel_sources_digest.__wrapped__(package)
    assert second != first
    kernel.write_text("from jsonlex import no_nrt  # changed\n")
    assert kernel_sources_digest.__wrapped__(package) != second


def test_package_kernels_are_stamped_with_every_kernel_module() -> None:
    import monitor
    from monitor._numba_cache import kernel_sources_digest
    from monitor.stats.binning import _count_codes

    assert monitor.__file__
    cache = _count_codes._cache
    assert getattr(cache._impl.locator, "_driftmon", False)
    stamp = cache._cache_file._source_stamp
    assert isinstance(stamp, tuple) and stamp[1] == kernel_sources_digest()


BIN = (
    "import monitor, numpy as np; from monitor.stats.binning import bin_numeric; "
    "print('package', monitor.__file__); e = np.full((1, 128), np.inf); e[0, :3] = [0, 1, 2]; "
    "bin_numeric(np.zeros((4, 1)), e, np.array([3]), np.zeros((1, 5), np.int64), "
    "np.zeros(1), np.zeros(1))"
)


@pytest.mark.slow
def test_a_change_to_an_inlined_helper_alone_recompiles_its_caller(tmp_path: Path) -> None:
    """binning's kernel inlines bin_grid's ``grid_column``: numba alone would load the old
    compiled kernel after a change to bin_grid.py only."""
    copy = tmp_path / "src"
    shutil.copytree(
        ROOT / "monitor", copy / "monitor", ignore=shutil.ignore_patterns("__pycache__")
    )
    # Run from the copy: the script's directory comes first on sys.path, before the
    # editable install's finder, which PYTHONPATH does not precede.
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    env |= {"NUMBA_DEBUG_CACHE": "1", "NUMBA_DISABLE_JIT": "0"}

    def saved() -> list[str]:
        out = _python(BIN, cwd=copy, **env).splitlines()
        assert f"package {copy / 'monitor' / '__init__.py'}" in out
        return [
            line for line in out if line.startswith("[cache] data saved") and "_bin_numeric" in line
        ]

    assert saved()  # compiled
    assert not saved()  # loaded
    helper = copy / "monitor" / "stats" / "bin_grid.py"
    helper.write_text(helper.read_text() + "\n# changed\n")
    assert saved()  # compiled again
