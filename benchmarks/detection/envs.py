"""Virtual environments for the comparison tools, one per tool, created on demand.

The tools conflict with each other and with driftmon's own numpy 2 / numba, so each gets
its own environment under the benchmark's work directory. Nothing here is a driftmon
dependency. The install time, the installed versions and any failure are recorded in
``envs.json`` next to the environments, so the results table can quote them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: tool -> (pip requirements, distributions whose versions are recorded, import probe)
TOOLS: dict[str, tuple[list[str], list[str], str]] = {
    "evidently": (
        ["evidently==0.7.23", "pandas<3"],
        ["evidently", "pandas", "numpy", "scipy"],
        "from evidently import Report; from evidently.presets import DataDriftPreset",
    ),
    "nannyml": (
        # 0.13.1 imports statsmodels without declaring it, and needs pandas < 3
        ["nannyml==0.13.1", "statsmodels", "pandas<3"],
        ["nannyml", "pandas", "numpy", "scipy"],
        "import nannyml; nannyml.UnivariateDriftCalculator",
    ),
    "river": (
        ["river==0.26.1"],
        ["river", "numpy", "scipy"],
        "from river.drift import ADWIN, KSWIN",
    ),
    "alibi-detect": (
        ["alibi-detect==0.13.0"],
        ["alibi-detect", "numpy", "numba", "scipy"],
        "from alibi_detect.cd import CVMDriftOnline",
    ),
}


@dataclass
class EnvRecord:
    tool: str
    ok: bool
    python: str = ""
    install_seconds: float = 0.0
    installer: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    error: str = ""


def _python_for_envs() -> str:
    """A CPython 3.11 for the tool environments (the tools' wheels target it)."""
    return os.environ.get("DETECTION_ENV_PYTHON", sys.executable)


def _uv() -> str | None:
    """uv next to the running interpreter (the repository venv has it) or on PATH.

    uv resolves and downloads in parallel and caches what it built: pip took 2.5 to 9
    minutes per environment here, uv with a warm cache seconds. Without uv, pip does it.
    """
    beside = Path(sys.executable).with_name("uv")
    return str(beside) if beside.is_file() else shutil.which("uv")


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def ensure_env(root: Path, tool: str) -> EnvRecord:
    """Create (or reuse) the environment of ``tool`` and record what happened."""
    reqs, dists, probe = TOOLS[tool]
    env = root / tool
    py = env / "bin" / "python"
    record_file = env / "record.json"
    if record_file.is_file():
        return EnvRecord(**json.loads(record_file.read_text()))
    record = EnvRecord(tool=tool, ok=False)
    started = time.perf_counter()
    uv = _uv()
    record.installer = "uv" if uv else "pip"
    try:
        subprocess.run(
            [_python_for_envs(), "-m", "venv", "--clear", *(["--without-pip"] if uv else []),
             str(env)],
            check=True, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        install = ([uv, "pip", "install", "-q", "-p", str(py)] if uv
                   else [str(py), "-m", "pip", "install", "-q", "--no-input"])  # fmt: skip
        done = subprocess.run(
            [*install, *reqs], capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        record.install_seconds = round(time.perf_counter() - started, 1)
        if done.returncode != 0:
            record.error = "pip install failed: " + _tail(done.stderr or done.stdout)
        else:
            check = subprocess.run(
                [str(py), "-c", probe], capture_output=True, text=True, timeout=600
            )
            if check.returncode != 0:
                record.error = "import failed: " + _tail(check.stderr)
            else:
                record.ok = True
        code = (
            "import importlib.metadata as m, json, sys\n"
            f"out = {{'python': sys.version.split()[0]}}\n"
            f"for d in {dists!r}:\n"
            "    try: out[d] = m.version(d)\n"
            "    except m.PackageNotFoundError: out[d] = 'not installed'\n"
            "print(json.dumps(out))\n"
        )
        got = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=120)
        if got.returncode == 0:
            versions = json.loads(got.stdout)
            record.python = versions.pop("python")
            record.versions = versions
    except (subprocess.SubprocessError, OSError) as exc:
        record.error = f"{type(exc).__name__}: {exc}"
        record.install_seconds = round(time.perf_counter() - started, 1)
    env.mkdir(parents=True, exist_ok=True)
    record_file.write_text(json.dumps(asdict(record), indent=1))
    return record


def python_of(root: Path, tool: str) -> Path:
    return root / tool / "bin" / "python"


def main() -> None:
    root = Path(sys.argv[1])
    root.mkdir(parents=True, exist_ok=True)
    for tool in sys.argv[2:] or list(TOOLS):
        rec = ensure_env(root, tool)
        print(json.dumps(asdict(rec)))


if __name__ == "__main__":
    main()
