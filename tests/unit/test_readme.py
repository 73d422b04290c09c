"""The README stays true: its Python examples run and its CLI commands exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_python_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})  # noqa: S102 - our own documentation


COMMANDS = sorted(set(re.findall(r"`driftmon ([a-z-]+)", README)))


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_documented_commands_exist(command: str) -> None:
    args = [sys.executable, "-m", "monitor", command, "--help"]
    if command == "webhook":
        args = [sys.executable, "-m", "monitor", "webhook", "test", "--help"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_linked_files_exist() -> None:
    root = Path(__file__).resolve().parents[2]
    for target in re.findall(r"\]\(((?!http)[^)#]+)", README):
        assert (root / target).exists(), target
