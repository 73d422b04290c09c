"""Fault 7 of issue 6: a consumer that starts behind a large backlog.

``BACKLOG`` events (300,000, about 100 MB of JSON; the issue's "millions" scaled down to
keep CI short: the daemon's memory does not depend on the backlog's length, which is
what the RSS bound checks) are produced before the daemon, a subprocess, starts. While it
catches up the test samples ``/metrics`` and the daemon's RSS every half second.

Checks: ``driftmon_consumer_lag_messages`` is exported for every partition while there is
a backlog, the total lag only goes down and ends at 0, every event is counted once, the
catch-up rate is at least ``MIN_RATE`` (a floor for a busy 2-core CI machine; the figure
itself is printed), and the RSS grows by less than ``RSS_GROWTH_LIMIT`` over the idle
daemon (librdkafka's prefetch queue is bounded by ``queued.max.messages.kbytes``; the
Python side holds one batch at a time).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.daemon_harness import events, write_config, write_reference
from tests.support.daemon import DaemonProcess
from tests.support.kafka import produce
from tests.support.metrics import sample_value
from tests.support.net import free_port
from tests.support.wait import wait_until
from tests.support.yaml_edit import edit_yaml_file

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BACKLOG = 300_000
PARTITIONS = 2
MIN_RATE = 5_000.0  # events/s
RSS_GROWTH_LIMIT = 300 * 1024 * 1024


def test_backlog_catch_up_full_speed_bounded_memory_lag_exported(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = kafka_topic(partitions=PARTITIONS)
    http_port = free_port()
    config = write_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        group=f"{topic}-g",
        reference=write_reference(tmp_path),
        events_per_window=20_000,
        slide=5_000,
    )
    # The catch-up takes a few seconds: lag statistics every 100 ms, so it is seen moving.
    edit_yaml_file(
        config,
        (("http", "port"), http_port),
        (("kafka", "consumer", "statistics.interval.ms"), 100),
    )
    chunk = 50_000
    for i in range(0, BACKLOG, chunk):
        batch = events(chunk, seed=60 + i // chunk, start_ts=1_764_150_000.0 + i / 100)
        for p in range(PARTITIONS):
            produce(kafka_bootstrap, topic, batch[p::PARTITIONS], partition=p)

    daemon = DaemonProcess(config, http_port)
    try:
        wait_until(lambda: daemon.metric("driftmon_ready") is not None, 60, "daemon serving")
        idle_rss = daemon.rss()
        samples: list[tuple[float, float, dict[str, float], int]] = []  # t, events, lag, rss
        started = time.monotonic()
        while time.monotonic() - started < 180:
            metrics = daemon.metrics()
            seen = sample_value(metrics, "driftmon_events_total", model="fraud") or 0.0
            lag = {
                s.labels["partition"]: s.value
                for s in metrics
                if s.name == "driftmon_consumer_lag_messages"
            }
            samples.append((time.monotonic(), seen, lag, daemon.rss()))
            if seen >= BACKLOG and lag and sum(lag.values()) == 0:
                break
            time.sleep(0.1)
        assert daemon.alive(), daemon.log_text()[-3000:]
        final_events = samples[-1][1]
        assert final_events == BACKLOG, f"{final_events} of {BACKLOG} events counted"

        # Lag: exported per partition during the catch-up, only decreasing, down to 0.
        during = [(t, seen, lag) for t, seen, lag, _ in samples if lag and seen < BACKLOG]
        assert during, "no lag sample while catching up"
        exported = {partition for _, _, lag in during for partition in lag}
        assert exported == {str(p) for p in range(PARTITIONS)}
        # Partitions report their first lag one by one; from then on the sum only falls.
        totals = [sum(lag.values()) for _, _, lag, _ in samples if len(lag) == PARTITIONS]
        assert totals[0] > 0
        assert totals == sorted(totals, reverse=True), totals
        assert totals[-1] == 0

        # Full speed: from the first counted event to the last.
        first = next(t for t, seen, _, _ in samples if seen > 0)
        last = next(t for t, seen, _, _ in samples if seen >= BACKLOG)
        rate = BACKLOG / max(last - first, 0.5)
        growth = max(rss for *_, rss in samples) - idle_rss
        with capsys.disabled():
            print(
                f"\nbacklog {BACKLOG}: caught up at {rate:,.0f} events/s; "
                f"RSS idle {idle_rss / 2**20:.0f} MiB, peak +{growth / 2**20:.0f} MiB; "
                f"lag samples {totals[:3]}...{totals[-3:]}"
            )
        assert rate >= MIN_RATE
        assert growth < RSS_GROWTH_LIMIT, f"RSS grew {growth / 2**20:.0f} MiB"
        assert daemon.terminate() == 0
    finally:
        daemon.kill()
