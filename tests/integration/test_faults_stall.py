"""A stalled consumer loses its partitions and gets them back: nothing counted twice.

When the loop stalls longer than ``max.poll.interval.ms`` (a long GC pause, a stuck
disk, a slow webhook hook in tests) librdkafka leaves the group and reports the
partitions *lost*, then rejoins and gets them assigned again. Events processed after the
last checkpoint are then both in the live windows and after the group's committed
offset. The daemon must not replay them into the windows that already hold them.

The stall is injected with the ``on_evaluation`` hook, which runs on the loop thread:
it sleeps ``STALL_SECONDS`` once, in the middle of the second part of the stream, while
the last checkpoint (interval ``10 s``) still covers only the first part.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from monitor.app.daemon import Daemon
from monitor.config import load_config
from monitor.demo import synthetic
from monitor.model.reference_file import load_references
from monitor.pipeline import Evaluation, Pipeline
from monitor.state.checkpoint import CheckpointStore
from tests.integration.daemon_harness import events, write_config, write_reference
from tests.support.kafka import produce
from tests.support.wait import wait_until
from tests.support.yaml_edit import edit_yaml_file

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIRST, SECOND = 6_000, 3_000
STALL_SECONDS = 7.0


def test_partitions_lost_after_a_stall_are_resumed_without_double_counting(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic
) -> None:
    topic = kafka_topic(partitions=1)
    state = tmp_path / "state"
    config_path = write_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        group=f"{topic}-g",
        reference=write_reference(tmp_path),
        extra_kafka="  batch_max_messages: 500\n",
        extra=f"state: {{dir: {state}, checkpoint_interval_seconds: 10}}\n",
    )
    edit_yaml_file(
        config_path,
        (("kafka", "consumer", "session.timeout.ms"), 2000),
        (("kafka", "consumer", "heartbeat.interval.ms"), 500),
        (("kafka", "consumer", "max.poll.interval.ms"), 3000),
    )
    first = events(FIRST, seed=51)
    second = events(SECOND, seed=52, start_ts=1_764_160_000.0, id_offset=FIRST)
    produce(kafka_bootstrap, topic, first, key=synthetic.MODEL)

    stalled = threading.Event()

    def stall_once(evaluation: Evaluation) -> None:
        if evaluation.last_event > FIRST and not stalled.is_set():
            stalled.set()
            time.sleep(STALL_SECONDS)

    config = load_config(config_path)
    daemon = Daemon(config, config_dir=tmp_path, on_evaluation=stall_once, replica_id="r")
    thread = threading.Thread(target=daemon.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    store = CheckpointStore(state, "reader")

    def checkpointed() -> int:
        return max((c.offsets.get(f"{topic}/0", -1) for c in store.load_all()), default=-1)

    monitor = daemon.pipeline

    try:
        wait_until(lambda: checkpointed() == FIRST, 60, "first part checkpointed")
        produce(kafka_bootstrap, topic, second, key=synthetic.MODEL)
        wait_until(stalled.is_set, 30, "stall injected")
        wait_until(
            lambda: monitor.monitors["fraud"].events_seen >= FIRST + SECOND, 60, "all consumed"
        )
        time.sleep(2.0)  # a replay would show up as more events than produced
        assert monitor.monitors["fraud"].events_seen == FIRST + SECOND

        expected = Pipeline(config, load_references(config, tmp_path))
        payloads = first + second
        expected.process(payloads, np.zeros(len(payloads)), topic)
        want = expected.monitors["fraud"].state([])
        got = monitor.monitors["fraud"].state([])
        for key in ("events_seen", "evaluations", "retrain_triggers", "alert"):
            assert got.scalars[key] == want.scalars[key], key
        for key, value in want.arrays.items():
            np.testing.assert_array_equal(got.arrays[key], value, err_msg=key)
    finally:
        daemon.request_stop()
        thread.join(30)
