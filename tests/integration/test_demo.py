"""`driftmon demo`, the README's first command, runs the whole loop and exits 0."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_confirms_drift_receives_the_webhook_and_exits_zero() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "demo", "--duration", "25", "--plain"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "/metrics" in out
    assert "drift confirmed" in out
    assert "drift injected into: amount, country, device, prediction" in out
    assert "features flagged in the last evaluation: amount, country, device, prediction" in out
    assert "retrain webhook received: 1 call(s)" in out
    assert "Traceback" not in result.stderr
