"""Running the real daemon in tests: as a subprocess, or in a thread of the test process.

Fault, recovery and CLI tests need what only a real process has: a pid to SIGKILL, an RSS
to measure, an exit code and its own log. :class:`DaemonProcess` starts
``driftmon run --config CONFIG`` (the log goes to ``daemon.log`` next to the config unless
told otherwise), waits until it serves ``/metrics``, reads its metrics, stops it and
returns the log for assertion messages. :class:`RunningDaemon` runs ``Daemon.run`` in a
thread instead, for tests that look inside the daemon or capture its log records.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from monitor.app.daemon import Daemon
from monitor.config import load_config
from monitor.pipeline import Evaluation
from tests.support.metrics import Sample, parse_samples, sample_value
from tests.support.wait import wait_until


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def configured_http_port(config: Path) -> int:
    """The fixed ``http.port`` of a config; a subprocess's port 0 could not be found."""
    port = int(yaml.safe_load(config.read_text())["http"]["port"])
    if port == 0:
        raise ValueError(f"{config} lets the daemon pick its port; give it a fixed one")
    return port


class DaemonProcess:
    """``python -m monitor run --config CONFIG`` (the ``driftmon`` entry point) in a subprocess.

    ``http_port`` defaults to the config's ``http.port``; ``env`` is added to this
    process's environment.
    """

    def __init__(
        self,
        config: Path,
        http_port: int | None = None,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.port = http_port if http_port is not None else configured_http_port(config)
        self.log_path = log_path or config.parent / "daemon.log"
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

    def get(self, path: str, timeout: float = 5.0) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=timeout)

    def metrics(self) -> list[Sample]:
        """Every sample of ``/metrics``; empty while the server is not up."""
        try:
            text = self.get("/metrics").text
        except httpx.HTTPError:
            return []
        return parse_samples(text)

    def metric(self, name: str, **labels: str) -> float | None:
        """The first sample named ``name`` with ``labels``; ``None`` if absent or not serving."""
        return sample_value(self.metrics(), name, **labels)

    def wait_serving(self, timeout: float = 60.0) -> None:
        """Wait until ``/metrics`` answers with the daemon's own metrics.

        Fails at once, with the log, if the process exits while starting.
        """

        def serving() -> bool:
            if not self.alive():
                raise AssertionError(
                    f"daemon exited with code {self.proc.returncode} while starting:\n"
                    + self.log_text()[-3000:]
                )
            return self.metric("driftmon_ready") is not None

        wait_until(serving, timeout, "daemon serving /metrics")

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM (a clean shutdown) and the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> int:
        """SIGKILL (a crash: no final checkpoint, no LeaveGroup) and the exit code.

        The code is ``-SIGKILL`` only if the process was still running when killed.
        """
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait(10)

    def log_text(self) -> str:
        """Everything the daemon logged so far."""
        return self.log_path.read_text(errors="replace")


class RunningDaemon:
    """``Daemon.run`` in a background thread of the test process; collects every evaluation.

    In-process, a test can look inside (``.daemon.pipeline``, ``.daemon.source``) and
    capture log records; use :class:`DaemonProcess` where a real process is needed.
    ``daemon_kwargs`` go to :class:`~monitor.app.daemon.Daemon` (``replica_id=...``).
    """

    def __init__(
        self, config_path: Path, daemon_kwargs: Mapping[str, Any] | None = None, **run_kwargs: Any
    ) -> None:
        self.config = load_config(config_path)
        self.evaluations: list[Evaluation] = []
        self.daemon = Daemon(
            self.config,
            config_dir=config_path.parent,
            on_evaluation=self.evaluations.append,
            **(daemon_kwargs or {}),
        )
        self.exit_code: int | None = None
        self._thread = threading.Thread(target=self._run, kwargs=run_kwargs, daemon=True)

    def _run(self, **kwargs: Any) -> None:
        self.exit_code = self.daemon.run(install_signals=False, **kwargs)

    def start(self) -> RunningDaemon:
        """Start the thread without waiting for the HTTP server."""
        self._thread.start()
        return self

    def __enter__(self) -> RunningDaemon:
        self.start()
        wait_until(lambda: self.daemon.http_port != 0, 30, "HTTP server up")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 30.0) -> None:
        self.daemon.request_stop()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "daemon did not stop"

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.daemon.http_port}"

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=5.0)

    def metric(self, name: str, **labels: str) -> float | None:
        """The first sample of ``/metrics`` named ``name`` with ``labels``; ``None`` if absent."""
        return sample_value(self.get("/metrics").text, name, **labels)

    @property
    def events_total(self) -> int:
        return self.daemon.events_total
