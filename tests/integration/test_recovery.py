"""Crash recovery against the real broker: SIGKILL at random points changes nothing."""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from monitor.demo import synthetic
from monitor.state.checkpoint import CheckpointStore
from tests.integration.daemon_harness import events, write_config, write_reference
from tests.support.daemon import DaemonProcess
from tests.support.kafka import produce
from tests.support.net import free_port
from tests.support.wait import wait_until
from tests.support.yaml_edit import edit_yaml_file

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOTAL = 24_000


def stateful_config(tmp: Path, bootstrap: str, topic: str, group: str, reference: Path) -> Path:
    path = write_config(
        tmp,
        bootstrap=bootstrap,
        topic=topic,
        group=group,
        reference=reference,
        # Small batches and a short checkpoint interval make kills land between
        # checkpoints, mid-batch and mid-slide; Tansu accepts the short session.
        extra_kafka="  batch_max_messages: 300\n",
        extra=f"state: {{dir: {tmp / 'state'}, checkpoint_interval_seconds: 0.3}}\n",
    )
    return edit_yaml_file(
        path,
        (("kafka", "consumer", "session.timeout.ms"), 2000),
        (("kafka", "consumer", "heartbeat.interval.ms"), 500),
        (("http", "port"), free_port()),
        # the sequential detectors' state goes through the kills too
        (("models", "fraud", "tests"), ["psi", "ks", "js", "chi2", "cusum", "bin_cusum"]),
    )


def events_counted(proc: DaemonProcess) -> float:
    """Events the model's state holds, restored ones included (``/status``; the
    ``driftmon_events_total`` counter counts only what this process consumed); -1 while
    the daemon is not serving."""
    try:
        return float(proc.get("/status").json()["models"]["fraud"]["events"])
    except (httpx.HTTPError, KeyError, ValueError):
        return -1.0


def run_to_end(config: Path) -> None:
    proc = DaemonProcess(config)
    try:
        wait_until(lambda: events_counted(proc) == TOTAL, 120, "all events accounted for")
        assert proc.terminate() == 0
    finally:
        proc.kill()


def final_state(state_dir: Path) -> dict[str, object]:
    (ckpt,) = CheckpointStore(state_dir, "x").load_all()
    state = ckpt.models["fraud"]
    return {"offsets": ckpt.offsets, "scalars": state.scalars, "arrays": state.arrays}


def test_sigkill_at_random_points_leaves_exactly_the_uninterrupted_state(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic
) -> None:
    topic = kafka_topic(partitions=1)
    reference = write_reference(tmp_path)
    stream = events(TOTAL // 2, seed=31) + events(
        TOTAL // 2, seed=32, drift=True, start_ts=1_764_170_000.0
    )
    produce(kafka_bootstrap, topic, stream, key=synthetic.MODEL)

    straight_dir = tmp_path / "straight"
    straight_dir.mkdir()
    run_to_end(stateful_config(straight_dir, kafka_bootstrap, topic, f"{topic}-a", reference))
    expected = final_state(straight_dir / "state")

    crash_dir = tmp_path / "crash"
    crash_dir.mkdir()
    crash_topic = kafka_topic(partitions=1)
    config = stateful_config(crash_dir, kafka_bootstrap, crash_topic, f"{topic}-b", reference)

    # The same stream again, a fifth produced in chunks during each of four runs that are
    # killed, so the kills land mid-stream (between checkpoints, mid-batch, mid-slide)
    # however slowly the machine runs: a run can only have seen the fifths produced so far.
    fifth = TOTAL // 5
    parts = [stream[i : i + fifth] for i in range(0, TOTAL, fifth)]

    def trickle(part: list[bytes]) -> None:
        for i in range(0, len(part), 1000):
            produce(kafka_bootstrap, crash_topic, part[i : i + 1000], key=synthetic.MODEL)
            time.sleep(0.2)

    rng = random.Random(7)
    exit_codes: list[int] = []
    at_kill: list[float] = []
    for attempt in range(4):
        proc = DaemonProcess(config)
        feeder = threading.Thread(target=trickle, args=(parts[attempt],), daemon=True)
        try:
            proc.wait_serving(60)
            feeder.start()
            wait_until(lambda p=proc: events_counted(p) > 0, 60, "consuming")
            time.sleep(rng.uniform(0.1, 1.2))
            at_kill.append(events_counted(proc))
        finally:
            exit_codes.append(proc.kill())
            if feeder.is_alive():
                feeder.join(60)
    trickle(parts[4])
    # Every run was still going when killed: none had crashed or exited by itself.
    assert exit_codes == [-signal.SIGKILL] * 4, exit_codes
    assert all(0 < n < TOTAL for n in at_kill), at_kill  # killed mid-stream
    run_to_end(config)
    got = final_state(crash_dir / "state")

    assert list(got["offsets"].values()) == list(expected["offsets"].values()) == [TOTAL]
    scalars_got, scalars_expected = got["scalars"], expected["scalars"]
    assert isinstance(scalars_got, dict) and isinstance(scalars_expected, dict)
    for key in ("events_seen", "evaluations", "retrain_triggers", "alert", "sequential.alarms"):
        assert scalars_got[key] == scalars_expected[key], key
    assert scalars_expected["sequential.alarms"]  # the drift half was caught sequentially
    arrays_got, arrays_expected = got["arrays"], expected["arrays"]
    assert isinstance(arrays_got, dict) and isinstance(arrays_expected, dict)
    assert arrays_got.keys() == arrays_expected.keys()
    assert {"sequential.stats", "sequential.recent"} <= arrays_expected.keys()
    for key, value in arrays_expected.items():
        np.testing.assert_array_equal(arrays_got[key], value, err_msg=key)
