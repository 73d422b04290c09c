"""A first start on an empty Numba cache: progress in the log, ready before the scanner is
compiled, every event counted while it compiles, and a cache the next start loads.

The one test of the suite that compiles every kernel cold (other first-run tests leave
only a few kernels out of a copy of the warm cache: tests/support/numba_cache.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from monitor.demo import synthetic
from tests.integration.daemon_harness import events, write_config, write_reference
from tests.support.daemon import DaemonProcess
from tests.support.kafka import produce
from tests.support.net import free_port
from tests.support.numba_cache import cached_kernels
from tests.support.wait import wait_until
from tests.support.yaml_edit import edit_yaml_file

# Its own waits bound it; at a load of 7 on two cores the nice scanner child took 282 s.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(840)]


def _ready(daemon: DaemonProcess) -> bool:
    assert daemon.alive(), daemon.log_text()[-3000:]
    try:
        return daemon.get("/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_first_start_says_it_compiles_consumes_meanwhile_and_the_next_start_loads(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic
) -> None:
    topic = kafka_topic(partitions=1)
    port = free_port()
    config = write_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        group=f"{topic}-g",
        reference=write_reference(tmp_path, rows=5_000),
    )
    edit_yaml_file(config, (("http", "port"), port))
    cache = tmp_path / "numba"
    env = {"NUMBA_CACHE_DIR": str(cache)}
    total = 3000
    produce(kafka_bootstrap, topic, events(total, seed=3), key=synthetic.MODEL)
    daemon = DaemonProcess(config, env=env, log_path=tmp_path / "first.log")
    try:
        wait_until(lambda: _ready(daemon), 240, "first start ready")
        ready_log = daemon.log_text()
        # Ready before the scanner is compiled, and every event counted meanwhile.
        wait_until(
            lambda: (daemon.metric("driftmon_events_total", model="fraud") or 0.0) >= total,
            120,
            "events counted while the scanner compiles",
        )
        wait_until(lambda: "json scanner ready" in daemon.log_text(), 400, "scanner compiled")
    finally:
        assert daemon.terminate(30) == 0, daemon.log_text()[-3000:]
    log = daemon.log_text()
    order = [
        "http listening",
        "json scanner compiling in the background",
        "compiling numba kernels (first run only",
        "numba kernels: drift statistics ready (1/1)",
        "numba kernels warm",
    ]
    positions = [ready_log.find(line) for line in order]
    assert -1 not in positions and positions == sorted(positions), ready_log[-3000:]
    assert "json scanner ready" not in ready_log, "ready waited for the scanner"
    assert "Traceback" not in log
    assert {"_evaluate_model", "_bin_numeric", "_scan"} <= cached_kernels(cache)
    # A performance section was not configured: its kernels were not compiled.
    assert "_binary_metrics" not in cached_kernels(cache)

    second = DaemonProcess(config, env=env, log_path=tmp_path / "second.log")
    try:
        wait_until(lambda: _ready(second), 60, "second start ready")
    finally:
        assert second.terminate(30) == 0
    again = second.log_text()
    assert "numba kernels warm" in again
    assert "compiling numba kernels" not in again
    assert "json scanner compiling" not in again
