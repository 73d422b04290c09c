"""Helpers of the fault-injection tests: a daemon subprocess you can measure, a receiver on
a fixed port you can take down and bring back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.webhook import WebhookReceiver, _Handler, _Server


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class DaemonProcess:
    """``python -m monitor run --config CONFIG`` with its log in ``<config dir>/daemon.log``."""

    def __init__(self, config: Path, http_port: int, env: Mapping[str, str] | None = None) -> None:
        self.port = http_port
        self.log_path = config.parent / "daemon.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss(self) -> int:
        return rss_bytes(self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=5.0)

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample of ``/metrics``; empty while the server is not up."""
        try:
            text = self.get("/metrics").text
        except httpx.HTTPError:
            return {}
        return {
            (s.name, frozenset(s.labels.items())): float(s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def metric(self, name: str, **labels: str) -> float | None:
        want = set(labels.items())
        for (sample, sample_labels), value in self.metrics().items():
            if sample == name and want <= sample_labels:
                return value
        return None

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


class FixedPortReceiver(WebhookReceiver):
    """A :class:`WebhookReceiver` on a given port, so it can go down and come back there."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.fixed_port = port

    def start(self) -> FixedPortReceiver:
        import threading

        httpd = _Server(("127.0.0.1", self.fixed_port), _Handler)
        httpd.receiver = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self
