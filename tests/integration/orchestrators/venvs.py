"""Virtual environments for the orchestrators the tests start (Prefect 3, Airflow 3).

Each orchestrator gets its own venv (they pin clashing FastAPI/SQLAlchemy stacks, and
driftmon only talks HTTP to them), installed from a fully pinned requirements file in
``requirements/`` with ``uv``, which installs either in seconds; without ``uv`` the
standard ``venv`` + ``pip`` path is used (about a minute each on a fresh machine).

The venvs live in a cache directory and are reused while their requirements file and
the Python version are unchanged (the directory name carries a hash of both):

* ``$DRIFTMON_TEST_CACHE`` if set, else ``$XDG_CACHE_HOME/driftmon``, else
  ``~/.cache/driftmon``; venvs go in its ``orchestrators/`` subdirectory.

A venv is only used once its ``.complete`` marker exists, so an interrupted install is
redone; a file lock keeps parallel test runs from building the same venv twice.

Pre-build (or time) them from the repository root::

    .venv/bin/python -m tests.integration.orchestrators.venvs prefect airflow
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REQUIREMENTS = Path(__file__).parent / "requirements"
ORCHESTRATORS = ("prefect", "airflow")
_MARKER = ".complete"


@dataclass(frozen=True)
class Venv:
    """A ready orchestrator venv and what it cost to get it."""

    name: str
    path: Path
    seconds: float
    reused: bool
    installer: str  # "uv", "pip" or "cached"

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def describe(self) -> str:
        how = "reused" if self.reused else f"built with {self.installer}"
        return f"{self.name} venv {how} in {self.seconds:.1f}s ({self.path})"


def cache_dir() -> Path:
    """The directory holding the orchestrator venvs."""
    explicit = os.environ.get("DRIFTMON_TEST_CACHE")
    if explicit:
        return Path(explicit) / "orchestrators"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "driftmon" / "orchestrators"


def _fingerprint(requirements: Path) -> str:
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()[:12]


def _uv() -> str | None:
    """``uv`` next to this interpreter (installed by the test extras), else on PATH."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uv")


def _run(cmd: list[str], log: Path) -> None:
    with log.open("ab") as out:
        out.write(f"$ {' '.join(cmd)}\n".encode())
        out.flush()
        result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{cmd[0]} failed with exit code {result.returncode}:\n{tail}")


def _build(path: Path, requirements: Path) -> str:
    log = path.with_suffix(".install.log")
    log.write_bytes(b"")
    uv = _uv()
    if uv is not None:
        env_python = ["--python", sys.executable]
        _run([uv, "venv", "--quiet", "--no-project", *env_python, str(path)], log)
        python = str(path / "bin" / "python")
        # No --compile-bytecode: it compiles every module (measured 40 s for Prefect on
        # 2 cores), whereas a server start compiles only what it imports.
        install = [uv, "pip", "install", "--quiet", "--python", python]
        _run([*install, "-r", str(requirements)], log)
        return "uv"
    _run([sys.executable, "-m", "venv", str(path)], log)
    pip = [str(path / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    _run([*pip, "--disable-pip-version-check", "-r", str(requirements)], log)
    return "pip"


def ensure_venv(name: str) -> Venv:
    """The venv for orchestrator ``name`` (``prefect`` or ``airflow``), built if needed."""
    if name not in ORCHESTRATORS:
        raise ValueError(f"unknown orchestrator {name!r}; known: {', '.join(ORCHESTRATORS)}")
    requirements = REQUIREMENTS / f"{name}.txt"
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    python = f"py{sys.version_info[0]}{sys.version_info[1]}"
    path = root / f"{name}-{python}-{_fingerprint(requirements)}"
    started = time.monotonic()
    with (root / f"{path.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run building the same venv: wait for it
        if (path / _MARKER).is_file():
            return Venv(name, path, time.monotonic() - started, True, "cached")
        if path.exists():
            shutil.rmtree(path)  # an interrupted build
        installer = _build(path, requirements)
        (path / _MARKER).write_text(requirements.read_text())
    return Venv(name, path, time.monotonic() - started, False, installer)


def main(argv: list[str]) -> int:
    """Build (or reuse) the named venvs and print what each took."""
    for name in argv or ORCHESTRATORS:
        print(ensure_venv(name).describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
