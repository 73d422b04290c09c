"""Numba's BLAS probe is answered without importing scipy.linalg, and only that probe:
a kernel that does use BLAS still compiles against scipy's and gives the right answer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor import _numba_blas

SCRIPT = """
import sys
import monitor
from monitor.ingest.decode.scanner import parse_number
assert parse_number(b"1.5") == 1.5  # first dispatch: numba loads its registries
print("linalg after a kernel:", "scipy.linalg" in sys.modules)

import numba.np.arraymath, numba.np.linalg
import numpy as np
from numba import njit
assert numba.np.arraymath._HAVE_BLAS
assert numba.np.linalg.ensure_blas.__module__ == "numba.np.linalg"  # numba's own again

@njit
def dot(a, b):
    return np.dot(a, b)

a = np.arange(6.0).reshape(2, 3)
assert np.array_equal(dot(a, a.T), a @ a.T)
print("linalg after np.dot:", "scipy.linalg" in sys.modules)
"""


def test_a_kernel_runs_without_scipy_linalg_and_np_dot_still_uses_blas() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == [
        "linalg after a kernel: False",
        "linalg after np.dot: True",
    ]


def test_blas_installed_reads_the_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert _numba_blas.blas_installed()  # scipy is a dependency
    fake = tmp_path / "scipy"
    (fake / "linalg").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "scipy", raising=False)
    for name in [m for m in sys.modules if m.startswith("scipy.")]:
        monkeypatch.delitem(sys.modules, name)
    assert not _numba_blas.blas_installed()  # a scipy without cython_blas
    (fake / "linalg" / "cython_blas.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    assert _numba_blas.blas_installed()


def test_the_probe_answers_once_and_says_no_without_scipys_blas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numba.np.linalg as linalg

    original = linalg.ensure_blas
    monkeypatch.setattr(linalg, "ensure_blas", original)  # restored after the test
    monkeypatch.delitem(sys.modules, "numba.np.arraymath", raising=False)  # before dispatch
    monkeypatch.setattr(_numba_blas, "blas_installed", lambda: False)
    _numba_blas.defer_probe()
    assert linalg.ensure_blas is not original
    with pytest.raises(ImportError, match="scipy"):
        linalg.ensure_blas()  # type: ignore[no-untyped-call]  # arraymath's probe: no BLAS
    assert linalg.ensure_blas is original


def test_the_probe_keeps_numbas_integer_width_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    import numba.np.linalg as linalg

    def mismatch() -> None:
        raise RuntimeError("built for ILP64 BLAS/LAPACK")

    original = linalg.ensure_blas
    monkeypatch.setattr(linalg, "ensure_blas", original)
    monkeypatch.setattr(linalg, "_check_lapack_int_width", mismatch)
    monkeypatch.delitem(sys.modules, "numba.np.arraymath", raising=False)
    monkeypatch.setattr(_numba_blas, "blas_installed", lambda: True)
    _numba_blas.defer_probe()
    with pytest.raises(RuntimeError, match="ILP64"):
        linalg.ensure_blas()  # type: ignore[no-untyped-call]


def test_a_numba_without_the_probe_still_imports_driftmon() -> None:
    """Should a numba release drop or rename ``ensure_blas``, ``import monitor`` goes on
    (the probe is then numba's business) instead of failing with an AttributeError."""
    script = (
        "import numba.np.linalg as linalg\n"
        "del linalg.ensure_blas\n"
        "import monitor\n"  # numba's own arraymath would now fail: not driftmon's to fix
        "print('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
