"""Runs the real daemon against the real test broker, in a thread of the test process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from monitor.app.daemon import Daemon
from monitor.config import load_config
from monitor.demo import synthetic
from monitor.pipeline import Evaluation

SECRET_ENV = "E2E_WEBHOOK_SECRET"
SECRET = "whsec_dGVzdC1zZWNyZXQtZm9yLWRyaWZ0bW9uLWUyZS10ZXN0cw=="


def write_reference(directory: Path, seed: int = 7, rows: int = 50_000) -> Path:
    """The synthetic fraud model's reference profile, saved as JSON."""
    path = directory / "fraud.profile.json"
    synthetic.reference_profile(seed, rows, source="test reference").save(path)
    return path


def events(
    n: int, *, seed: int, drift: bool = False, start_ts: float = 1_764_150_000.0, id_offset: int = 0
) -> list[bytes]:
    """``n`` synthetic event messages (deterministic for a seed)."""
    cols = synthetic.generate(np.random.default_rng(seed), n, drift=drift)
    return list(
        synthetic.to_events(cols, start_ts=start_ts, step_seconds=0.01, id_offset=id_offset)
    )


def write_config(
    directory: Path,
    *,
    bootstrap: str,
    topic: str,
    group: str,
    reference: Path,
    webhook_url: str | None = None,
    events_per_window: int = 4000,
    slide: int = 1000,
    extra_kafka: str = "",
    extra: str = "",
) -> Path:
    """A config monitoring the synthetic model on ``topic``; p-value thresholds are strict."""
    text = (
        "kafka:\n"
        f"  bootstrap_servers: {bootstrap}\n"
        f"  group_id: {group}\n"
        f"  topics: [{topic}]\n"
        "  consumer: {session.timeout.ms: 6000, heartbeat.interval.ms: 2000, "
        "statistics.interval.ms: 1000}\n"
        "  poll_timeout_seconds: 0.2\n"
        f"{extra_kafka}"
        "http: {host: 127.0.0.1, port: 0}\n"
        "models:\n"
        + synthetic.model_config_yaml(str(reference), events=events_per_window, slide=slide)
        .replace("ks_p_value: 0.001", "ks_p_value: 0.000001")
        .replace("chi2_p_value: 0.001", "chi2_p_value: 0.000001")
    )
    if webhook_url is not None:
        text += (
            "webhooks:\n"
            "  - name: retrain\n"
            "    format: generic\n"
            f"    url: {webhook_url}\n"
            f"    secret_env: {SECRET_ENV}\n"
            "    timeout_seconds: 5\n"
            "    retry: {max_attempts: 3, initial_backoff_seconds: 0.2, max_backoff_seconds: 1}\n"
        )
    text += extra
    path = directory / "driftmon.yaml"
    path.write_text(text)
    return path


def wait_until(predicate: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for: {message}")


class RunningDaemon:
    """``Daemon.run`` in a background thread; collects every evaluation."""

    def __init__(self, config_path: Path, **run_kwargs: Any) -> None:
        self.config = load_config(config_path)
        self.evaluations: list[Evaluation] = []
        self.daemon = Daemon(
            self.config, config_dir=config_path.parent, on_evaluation=self.evaluations.append
        )
        self.exit_code: int | None = None
        self._thread = threading.Thread(target=self._run, kwargs=run_kwargs, daemon=True)

    def _run(self, **kwargs: Any) -> None:
        self.exit_code = self.daemon.run(install_signals=False, **kwargs)

    def __enter__(self) -> RunningDaemon:
        self._thread.start()
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
        from prometheus_client.parser import text_string_to_metric_families

        for family in text_string_to_metric_families(self.get("/metrics").text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return None

    @property
    def events_total(self) -> int:
        return self.daemon.events_total
