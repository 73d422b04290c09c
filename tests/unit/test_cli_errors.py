"""User errors through the real command line, as a process: exit 2, a message naming the
key or option, never a traceback. None of these reach a broker (they fail before)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from monitor.cli import EXIT_CONFIG
from monitor.demo import synthetic

pytestmark = pytest.mark.slow


def driftmon(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def config(directory: Path, **sections: object) -> Path:
    data = {
        "kafka": {"bootstrap_servers": "127.0.0.1:9", "topics": ["ml.inference"]},
        "http": {"host": "127.0.0.1", "port": 0},
        "models": {
            synthetic.MODEL: {
                "reference": "fraud.json",
                "window": {"events": 2000, "slide": 500},
                "features": {"amount": {"type": "numeric"}},
            }
        },
        **sections,
    }
    path = directory / "driftmon.yaml"
    path.write_text(yaml.safe_dump(data))
    synthetic.reference_profile(1, 2000, source="test").save(directory / "fraud.json")
    return path


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def assert_user_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in result.stderr


def test_a_port_in_use_is_one_line_naming_http_port(tmp_path: Path, busy_port: int) -> None:
    path = config(tmp_path, http={"host": "127.0.0.1", "port": busy_port})
    result = driftmon("run", "--config", str(path), "--max-seconds", "5")
    assert_user_error(result, "http.port", f"127.0.0.1:{busy_port}", "DRIFTMON_HTTP__PORT")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_unwritable_state_dir_names_state_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a directory under a regular file cannot be created, even as root
    path = config(tmp_path, state={"dir": str(blocker / "state")})
    result = driftmon("run", "--config", str(path), "--max-seconds", "5")
    assert_user_error(result, "state.dir", "not a directory")


@pytest.mark.parametrize("command", ["run", "replay", "check-config"])
def test_an_unreadable_profile_names_its_key(tmp_path: Path, command: str) -> None:
    path = config(tmp_path)
    (tmp_path / "fraud.json").unlink()
    (tmp_path / "fraud.json").mkdir()  # unreadable as a file, even as root
    events = tmp_path / "events.jsonl"
    events.write_text("")
    args = {
        "run": ["run", "--config", str(path), "--max-seconds", "5"],
        "replay": ["replay", "--config", str(path), "--input", str(events)],
        "check-config": ["check-config", str(path)],
    }[command]
    assert_user_error(driftmon(*args), "models.fraud.reference", "cannot read profile")


def test_a_truncated_profile_names_its_key(tmp_path: Path) -> None:
    path = config(tmp_path)
    profile = tmp_path / "fraud.json"
    profile.write_text(profile.read_text()[:200])
    assert_user_error(driftmon("check-config", str(path)), "models.fraud.reference", "not valid")
    result = driftmon("run", "--config", str(path), "--max-seconds", "5")
    assert_user_error(result, "models.fraud.reference", "not valid")


def test_an_unset_secret_env_stops_check_config_and_run_alike(tmp_path: Path) -> None:
    hook = {"name": "retrain", "url": "http://127.0.0.1:9/x", "secret_env": "DRIFTMON_T_UNSET"}
    path = config(tmp_path, webhooks=[hook])
    for args in (["check-config", str(path)], ["run", "--config", str(path)]):
        assert_user_error(driftmon(*args), "webhooks[0].secret_env", "DRIFTMON_T_UNSET")
