"""`make demo` installs only the demo extra; `make test` still installs everything."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _dry_run(target: str) -> str:
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    # -B: as on a fresh clone, whatever stamps this checkout already has
    proc = subprocess.run(
        ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_demo_installs_the_demo_extra_only() -> None:
    out = _dry_run("demo")
    assert "-e '.[demo]'" in out
    assert ".[test]" not in out
    assert "driftmon demo" in out


def test_test_still_installs_the_test_extra() -> None:
    out = _dry_run("test")
    assert "-e '.[test]'" in out
    assert "pytest" in out
