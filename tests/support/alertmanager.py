"""A real Alertmanager (Debian's prometheus-alertmanager) for tests, on its own port.

Every alert is its own group (``group_by: ['...']``) and is sent at once (``group_wait``
1 s) to one webhook receiver, resolved ones too. Start it before Prometheus: a Prometheus
whose first send is refused resends firing alerts only a minute later. Gossip is off
(``--cluster.listen-address=``), so nothing listens beyond the one port.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import IO, Any

import pytest

from tests.support.net import free_port, stop_process, wait_http_ready

BINARY = "prometheus-alertmanager"


def alertmanager_binary() -> Path:
    """The binary; missing is a failure under CI (``make promtool`` installs it), else a skip."""
    found = shutil.which(BINARY)
    if found is None:
        message = f"{BINARY} not found on PATH; install the Debian package (make promtool)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(found)


class AlertmanagerServer:
    """One Alertmanager routing every alert to ``receiver_url`` (Alertmanager's webhook JSON)."""

    def __init__(self, workdir: Path, receiver_url: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        self.log_path = workdir / "alertmanager.log"
        config: dict[str, Any] = {
            "route": {
                "receiver": "sink",
                "group_by": ["..."],
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "sink",
                    "webhook_configs": [{"url": receiver_url, "send_resolved": True}],
                }
            ],
        }
        self.config_path = workdir / "alertmanager.yml"
        self.config_path.write_text(json.dumps(config, indent=2))  # JSON is valid YAML
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        """Start and wait until ``/-/ready`` answers 200."""
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                str(alertmanager_binary()),
                f"--config.file={self.config_path}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address={self.address}",
                "--cluster.listen-address=",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_http_ready(
                self.proc, f"{self.url}/-/ready", timeout, "alertmanager", self.log_text
            )
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM (it stops in about 2 s), SIGKILL after 5 s."""
        if self.proc is not None:
            stop_process(self.proc, grace_seconds=5.0)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
