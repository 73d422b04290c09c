"""Bounded soak: the daemon under a fixed high rate with garbage and one broker restart.

Starts its own Tansu broker and the daemon as a subprocess (``python -m monitor run``),
then produces ``--rate`` events/s for ``--minutes`` (default 3, at most 10): valid
synthetic events with one garbage message in every ``--garbage-every`` (cycling through
the invalid kinds: not JSON, bad UTF-8, wrong type, unknown model, NaN, missing model, no
payload). Halfway through, the producer pauses, waits until the daemon has consumed
everything produced so far (Tansu's memory engine loses unconsumed records on restart),
stops the broker for ``--outage-seconds``, restarts it, recreates the topic and resumes.

Every ``--sample-seconds`` it records the daemon's RSS, events and invalid counted, lag
and readiness. At the end it checks that nothing was lost or counted twice (events and
invalid counts per reason equal what was produced), that the daemon never exited, that
it was ready again after the restart, and that RSS did not keep growing: the slope of a
least-squares line through the samples of the second half (after warm-up and the
restart) must stay under ``--max-rss-slope`` MiB/min. Prints a table and a JSON summary;
exit code 1 when a check fails.

    python benchmarks/soak.py                  # 3 minutes at 15,000 events/s
    python benchmarks/soak.py --minutes 10 --rate 5000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import KafkaError, Producer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.daemon_harness import events, write_config, write_reference
from tests.support.daemon import DaemonProcess
from tests.support.kafka import create_topic, tansu_broker
from tests.support.net import free_port
from tests.support.yaml_edit import edit_yaml_file

TOPIC = "soak"
GARBAGE: list[tuple[str, bytes | None]] = [
    ("not_json", b"{not json"),
    ("not_utf8", b'{"model": "fraud", "features": {"country": "\xff\xfe"}}'),
    ("wrong_type", b'{"model": "fraud", "features": {"amount": "lots"}}'),
    ("unknown_model", b'{"model": "nope", "features": {"amount": 1.0}}'),
    ("non_finite", b'{"model": "fraud", "features": {"amount": NaN}}'),
    ("missing_model", b'{"features": {"amount": 1.0}}'),
    ("no_payload", None),
]


class Load:
    """Produces at a fixed rate from a thread; counts what it produced by kind."""

    def __init__(self, bootstrap: str, rate: int, garbage_every: int) -> None:
        self.bootstrap = bootstrap
        self.rate = rate
        self.garbage_every = garbage_every
        self.valid = 0
        self.invalid: Counter[str] = Counter()
        self.errors: list[str] = []
        self.running = threading.Event()
        self.running.set()
        self.stopped = threading.Event()
        self._sent = 0
        self._producer = self._make_producer()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _make_producer(self) -> Producer:
        return Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5})

    def _delivered(self, err: KafkaError | None, _msg: Any) -> None:
        if err is not None:
            self.errors.append(str(err))

    def _send(self, value: bytes | None) -> None:
        while True:
            try:
                self._producer.produce(TOPIC, value, on_delivery=self._delivered)
                return
            except BufferError:
                self._producer.poll(0.05)

    def _run(self) -> None:
        second = 0
        base_ts = 1_764_150_000.0
        while not self.stopped.is_set():
            if not self.running.is_set():
                time.sleep(0.05)
                continue
            started = time.monotonic()
            batch = events(self.rate, seed=second, start_ts=base_ts + second, id_offset=self._sent)
            for tick in range(10):  # spread the second over ten slices
                for value in batch[tick::10]:
                    self._sent += 1
                    if self._sent % self.garbage_every == 0:
                        reason, garbage = GARBAGE[(self._sent // self.garbage_every) % len(GARBAGE)]
                        self._send(garbage)
                        self.invalid[reason] += 1
                    self._send(value)
                    self.valid += 1
                self._producer.poll(0)
                pause = started + (tick + 1) / 10 - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            second += 1

    def pause_and_flush(self) -> None:
        self.running.clear()
        time.sleep(0.2)
        self._producer.flush(30)

    def resume(self, bootstrap: str) -> None:
        self._producer.flush(5)
        self._producer = self._make_producer()
        self.bootstrap = bootstrap
        self.running.set()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(30)
        self._producer.flush(30)


def wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def sample(daemon: DaemonProcess, t0: float) -> dict[str, Any]:
    metrics = daemon.metrics()

    def total(name: str) -> float:
        return sum(s.value for s in metrics if s.name == name)

    return {
        "t": round(time.monotonic() - t0, 1),
        "rss_mib": round(daemon.rss() / 2**20, 1),
        "events": int(total("driftmon_events_total")),
        "invalid": int(total("driftmon_invalid_events_total")),
        "lag": int(total("driftmon_consumer_lag_messages")),
        "ready": int(total("driftmon_ready")),
        "connected": int(total("driftmon_kafka_connected")),
    }


def slope_mib_per_min(rows: list[dict[str, Any]]) -> float:
    if len(rows) < 3:
        return 0.0
    t = np.array([r["t"] for r in rows]) / 60.0
    rss = np.array([r["rss_mib"] for r in rows])
    return float(np.polyfit(t, rss, 1)[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--rate", type=int, default=15_000, help="valid events per second")
    parser.add_argument("--garbage-every", type=int, default=100)
    parser.add_argument("--outage-seconds", type=float, default=5.0)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--max-rss-slope", type=float, default=2.0, help="MiB per minute")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()
    if not 0 < args.minutes <= 10:
        parser.error("--minutes must be in (0, 10]")

    tmp = Path(tempfile.mkdtemp(prefix="driftmon-soak-"))
    broker = tansu_broker(tmp / "tansu.log")
    broker.start()
    create_topic(broker.bootstrap, TOPIC, 3)
    http_port = free_port()
    config = write_config(
        tmp,
        bootstrap=broker.bootstrap,
        topic=TOPIC,
        group="soak-g",
        reference=write_reference(tmp),
        events_per_window=20_000,
        slide=5_000,
    )
    edit_yaml_file(config, (("http", "port"), http_port))
    daemon = DaemonProcess(config, http_port)
    rows: list[dict[str, Any]] = []
    checks: dict[str, bool] = {}
    load = Load(broker.bootstrap, args.rate, args.garbage_every)
    restart: dict[str, float] = {}
    try:
        if not wait(lambda: daemon.metrics() != [], 60):
            raise RuntimeError("daemon did not come up:\n" + daemon.log_text()[-3000:])
        t0 = time.monotonic()
        duration = args.minutes * 60.0
        load.thread.start()
        next_sample = t0
        restarted = False
        while time.monotonic() - t0 < duration:
            if not restarted and time.monotonic() - t0 >= duration / 2:
                load.pause_and_flush()
                produced = load.valid
                wait(lambda p=produced: sample(daemon, t0)["events"] >= p, 60)
                restart["at"] = round(time.monotonic() - t0, 1)
                broker.stop()
                down = time.monotonic()
                checks["not ready during outage"] = wait(
                    lambda: sample(daemon, t0)["ready"] == 0, args.outage_seconds + 10
                )
                time.sleep(max(0.0, args.outage_seconds - (time.monotonic() - down)))
                broker.start()
                create_topic(broker.bootstrap, TOPIC, 3)
                load.resume(broker.bootstrap)
                checks["ready again after restart"] = wait(
                    lambda: sample(daemon, t0)["ready"] == 1, 60
                )
                restart["ready_after"] = round(time.monotonic() - down, 1)
                restarted = True
            if time.monotonic() >= next_sample:
                rows.append(sample(daemon, t0))
                print(json.dumps(rows[-1]), flush=True)
                next_sample += args.sample_seconds
            time.sleep(0.2)
        load.stop()
        wait(lambda: sample(daemon, t0)["events"] >= load.valid, 120)
        time.sleep(3.0)  # room for duplicates to show up
        final = sample(daemon, t0)
        rows.append(final)
        invalid_by_reason = {
            s.labels["reason"]: int(s.value)
            for s in daemon.metrics()
            if s.name == "driftmon_invalid_events_total" and s.value
        }
        checks["daemon never exited"] = daemon.alive()
        checks["every valid event counted once"] = final["events"] == load.valid
        checks["every garbage message counted by reason"] = invalid_by_reason == dict(load.invalid)
        checks["no producer errors"] = not load.errors
        steady = [r for r in rows if r["t"] >= restart.get("at", 0) + 20]
        slope = slope_mib_per_min(steady)
        checks[f"RSS slope after restart < {args.max_rss_slope} MiB/min"] = (
            slope < args.max_rss_slope
        )
        summary = {
            "minutes": args.minutes,
            "rate": args.rate,
            "garbage_every": args.garbage_every,
            "produced_valid": load.valid,
            "produced_invalid": dict(load.invalid),
            "counted_events": final["events"],
            "counted_invalid": invalid_by_reason,
            "broker_restart": restart,
            "rss_mib": {
                "first": rows[0]["rss_mib"],
                "max": max(r["rss_mib"] for r in rows),
                "last": final["rss_mib"],
                "slope_after_restart_mib_per_min": round(slope, 2),
            },
            "checks": checks,
            "samples": rows,
        }
        print(json.dumps({k: v for k, v in summary.items() if k != "samples"}, indent=2))
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2))
        daemon.terminate()
    finally:
        load.stopped.set()
        daemon.kill()
        broker.stop()
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
