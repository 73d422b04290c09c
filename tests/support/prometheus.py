"""A real Prometheus (Debian package) for tests, with its own port, config and data dir.

Target discovery updates are throttled to 5 s, so the first sample of a target appears
about 5 s after start even with a 1 s scrape interval: poll with :meth:`wait_for`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

from tests.support.net import free_port, stop_process, wait_http_ready


def binary(name: str) -> Path:
    """Path of a required tool; missing tools are errors (``make promtool`` installs them)."""
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"{name} not found on PATH; install the Debian prometheus package (make promtool)"
        )
    return Path(found)


class PrometheusServer:
    """One Prometheus scraping ``targets`` (``host:port``, path ``/metrics``) every second.

    ``rule_files`` are loaded and evaluated every second; ``alertmanagers`` are
    ``host:port`` of Alertmanagers to send alerts to (start those first); ``scrape`` adds
    keys to the scrape config (``scheme``, ``tls_config``, ``basic_auth``).
    """

    def __init__(
        self,
        workdir: Path,
        targets: Sequence[str],
        rule_files: Sequence[Path] = (),
        alertmanagers: Sequence[str] = (),
        job: str = "driftmon",
        scrape: Mapping[str, Any] | None = None,
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / "prometheus.yml"
        self.log_path = workdir / "prometheus.log"
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": list(targets)}], **(scrape or {})}
            ],
        }
        if alertmanagers:
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]
            }
        # JSON is valid YAML, and needs no YAML library here.
        self.config_path.write_text(json.dumps(config, indent=2))
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        """Start and wait until ``/-/ready`` answers 200."""
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                str(binary("prometheus")),
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_http_ready(self.proc, f"{self.url}/-/ready", timeout, "prometheus", self.log_text)
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM (Prometheus stops in about 2 s), SIGKILL after 5 s."""
        if self.proc is not None:
            stop_process(self.proc, grace_seconds=5.0)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        """Prometheus's log so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Run an instant query; returns ``data.result`` (a vector's samples)."""
        resp = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5.0)
        resp.raise_for_status()
        body = resp.json()
        if body.get("status") != "success":
            raise RuntimeError(f"query {expr!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(self, expr: str, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Poll ``expr`` until it returns at least one sample; ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no result for {expr!r} after {timeout} s")
            time.sleep(0.25)

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts as Prometheus sees them (``/api/v1/alerts``)."""
        resp = httpx.get(f"{self.url}/api/v1/alerts", timeout=5.0)
        resp.raise_for_status()
        alerts: list[dict[str, Any]] = resp.json()["data"]["alerts"]
        return alerts
