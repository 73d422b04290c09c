"""The end-to-end benchmark's steady-state window (benchmarks/bench_e2e.py)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_e2e


def test_steady_state_runs_between_the_batches_crossing_10_and_90_percent() -> None:
    # A slow start (the group join) and a slow tail must not count: 1,000 events, the
    # first batch after 10 s, then 100 events every 0.1 s, then a 10 s tail.
    samples = [(10.0, 1.0, 50)]
    samples += [(10.0 + 0.1 * k, 1.0 + 0.01 * k, 50 + 100 * k) for k in range(1, 10)]
    samples += [(21.0, 2.0, 1000)]
    result = bench_e2e.steady(samples, 1000)
    # From (10.1 s, 150 events) to (10.9 s, 950 events): 800 events in 0.8 s, 0.08 CPU s.
    assert result.rate == pytest.approx(1000.0)
    assert result.cpu_us == pytest.approx(100.0)


def test_no_steady_state_without_reaching_90_percent() -> None:
    with pytest.raises(ValueError, match="no steady state: 800 of 1000"):
        bench_e2e.steady([(1.0, 0.0, 200), (2.0, 0.1, 800)], 1000)


def test_thread_cpu_groups_threads_by_name() -> None:
    def spin(seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    done = threading.Event()
    spun = [threading.Event(), threading.Event()]

    def work(index: int) -> None:
        spin(0.3)
        spun[index].set()
        done.wait(10)  # alive when measured: an ended thread is gone from /proc

    before = bench_e2e.thread_cpu()
    threads = [
        threading.Thread(target=work, args=(0,), name="driftmon-stats_0"),
        threading.Thread(target=work, args=(1,), name="driftmon-scan_0"),
    ]
    for thread in threads:
        thread.start()
    try:
        assert all(event.wait(10) for event in spun)
        after = bench_e2e.thread_cpu()
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert set(after) == {"loop", "worker", "scan", "librdkafka", "other"}
    assert after["worker"] - before["worker"] >= 0.2  # clock ticks: 10 ms steps
    assert after["scan"] - before["scan"] >= 0.2
