"""Fault 8 of issue 6: two replicas in one consumer group, one killed.

Replica ``a`` runs as a subprocess (so it can be SIGKILLed: no shutdown, no last
checkpoint, no LeaveGroup), replica ``b`` in this process (so its windows can be read).
Both share one state directory. The topic has four partitions and four models, each
model's events keyed by model and pinned to its own partition (the deployment rule of
:mod:`monitor.state.recovery`), plus a fifth model, ``spread``, whose events go to every
partition, breaking that rule on purpose.

Checks:

* after ``a`` dies, ``b`` takes over its partitions and resumes each taken-over model from
  ``a``'s last checkpoint: its final window equals, array for array, that of one monitor
  fed the model's whole stream (what ``a`` had checkpointed plus every event after it,
  including those ``a`` processed after its last checkpoint, which are replayed);
* ``spread`` is reported split: ``driftmon_model_split{model="spread"} = 1`` and a
  warning naming it, while the well-keyed models are not.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path

import numpy as np
import orjson
import pytest
import yaml

from monitor.config import load_config
from monitor.demo.synthetic import MODEL, model_config_yaml
from monitor.model.reference_file import load_references
from monitor.pipeline import Pipeline
from monitor.state.checkpoint import CheckpointStore
from tests.integration.daemon_harness import events, write_reference
from tests.support.daemon import DaemonProcess, RunningDaemon
from tests.support.kafka import produce
from tests.support.net import free_port
from tests.support.wait import wait_until
from tests.support.yaml_edit import edit_yaml_file

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODELS = ("m0", "m1", "m2", "m3")  # model i lives on partition i
FIRST, SECOND, SPREAD = 5_000, 3_000, 400


def for_model(messages: list[bytes], model: str) -> list[bytes]:
    return [orjson.dumps({**orjson.loads(m), "model": model}) for m in messages]


def stream(model: str, phase: int) -> list[bytes]:
    n = FIRST if phase == 1 else SECOND
    seed = 1000 * (MODELS.index(model) + 1) + phase
    start = 1_764_150_000.0 + (0.0 if phase == 1 else 100.0)
    return for_model(events(n, seed=seed, start_ts=start, id_offset=phase * 10**6), model)


def write_replica_config(
    directory: Path, bootstrap: str, topic: str, reference: Path, http_port: int, state: Path
) -> Path:
    text = (
        "kafka:\n"
        f"  bootstrap_servers: {bootstrap}\n"
        f"  group_id: {topic}-g\n"
        f"  topics: [{topic}]\n"
        # Tansu accepts short sessions: a dead member expires in ~2 s, joins take ~1 s.
        "  consumer: {session.timeout.ms: 2000, heartbeat.interval.ms: 500, "
        "statistics.interval.ms: 1000}\n"
        "  poll_timeout_seconds: 0.2\n"
        "  batch_max_messages: 500\n"
        f"http: {{host: 127.0.0.1, port: {http_port}}}\n"
        f"state: {{dir: {state}, checkpoint_interval_seconds: 0.5}}\n"
        "models:\n" + model_config_yaml(str(reference), events=4000, slide=1000)
    )
    # The synthetic model's config under each model's name.
    model = yaml.safe_load(text)["models"].pop(MODEL)
    path = directory / "driftmon.yaml"
    path.write_text(text)
    return edit_yaml_file(
        path,
        (("models",), {name: copy.deepcopy(model) for name in (*MODELS, "spread")}),
    )


def b_share(b: RunningDaemon) -> int:
    source = b.daemon.source
    return len(source.assigned_partitions) if source is not None else 0


def expected_state(config: Path, model: str) -> dict[str, object]:
    """The state of one monitor fed the model's whole stream in one go."""
    conf = load_config(config)
    pipeline = Pipeline(conf, load_references(conf, config.parent))
    payloads = stream(model, 1) + stream(model, 2)
    pipeline.process(payloads, np.zeros(len(payloads)), conf.kafka.topics[0].name)
    state = pipeline.monitors[model].state([])
    return {"scalars": state.scalars, "arrays": state.arrays}


def assert_split_reported(
    a: DaemonProcess, b: RunningDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    """``spread`` (and only it) is flagged by both replicas, with a warning naming it."""
    wait_until(lambda: b.metric("driftmon_model_split", model="spread") == 1.0, 15, "split b")
    wait_until(lambda: a.metric("driftmon_model_split", model="spread") == 1.0, 15, "split a")
    for model in MODELS:
        assert b.metric("driftmon_model_split", model=model) == 0.0
        assert a.metric("driftmon_model_split", model=model) == 0.0
    split_logs = [r for r in caplog.records if "different replicas" in r.getMessage()]
    assert split_logs and getattr(split_logs[0], "model", None) == "spread"
    assert split_logs[0].levelno == logging.WARNING


def test_survivor_takes_over_partitions_and_resumes_state_and_split_is_reported(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="monitor")
    topic = kafka_topic(partitions=4)
    reference = write_reference(tmp_path)
    dir_a, dir_b = tmp_path / "a", tmp_path / "b"
    dir_a.mkdir()
    dir_b.mkdir()
    port_a = free_port()
    state = tmp_path / "state"
    write_replica_config(dir_a, kafka_bootstrap, topic, reference, port_a, state)
    write_replica_config(dir_b, kafka_bootstrap, topic, reference, 0, state)
    for d in (dir_a, dir_b):
        (d / "fraud.profile.json").write_bytes(reference.read_bytes())

    # b joins first and owns all four partitions; a joins and takes half of them.
    b = RunningDaemon(dir_b / "driftmon.yaml", daemon_kwargs={"replica_id": "b"}).start()
    a: DaemonProcess | None = None
    try:
        wait_until(lambda: b.daemon.source is not None and b_share(b) == 4, 60, "b owns all")
        a = DaemonProcess(dir_a / "driftmon.yaml", port_a, env={"DRIFTMON_REPLICA_ID": "a"})
        store = CheckpointStore(tmp_path / "state", "reader")

        def owners() -> dict[str, set[int]]:
            out: dict[str, set[int]] = {}
            for ckpt in store.load_all():
                parts = {int(k.rsplit("/", 1)[1]) for k in ckpt.offsets}
                out.setdefault(ckpt.replica, set()).update(parts)
            return out

        # Wait for the group to settle with both members owning partitions.
        wait_until(lambda: 0 < b_share(b) < 4, 60, "both replicas own partitions")
        for i, model in enumerate(MODELS):
            produce(kafka_bootstrap, topic, stream(model, 1), key=model, partition=i)
        spread = for_model(events(4 * SPREAD, seed=77), "spread")
        for i in range(4):
            produce(kafka_bootstrap, topic, spread[i::4], key="spread", partition=i)

        def checkpointed() -> dict[int, int]:
            got: dict[int, int] = {}
            for ckpt in store.load_all():
                for key, offset in ckpt.offsets.items():
                    part = int(key.rsplit("/", 1)[1])
                    got[part] = max(offset, got.get(part, 0))
            return got

        wait_until(
            lambda: checkpointed() == dict.fromkeys(range(4), FIRST + SPREAD),
            60,
            "first phase checkpointed by both replicas",
        )
        owned_by_a = owners()["a"]
        assert owned_by_a and owned_by_a != set(range(4)), owners()
        taken_over = [MODELS[p] for p in sorted(owned_by_a)]

        assert_split_reported(a, b, caplog)

        # Kill a: no shutdown, no final checkpoint, no LeaveGroup.
        a.kill()
        killed_at = time.monotonic()
        for i, model in enumerate(MODELS):
            produce(kafka_bootstrap, topic, stream(model, 2), key=model, partition=i)
        total = FIRST + SECOND
        wait_until(
            lambda: all(b.daemon.pipeline.monitors[m].events_seen == total for m in MODELS),
            90,
            "b holds every model's whole stream",
        )
        takeover_seconds = time.monotonic() - killed_at
        restored = [
            r
            for r in caplog.records
            if r.getMessage() == "model state restored from checkpoint"
            and getattr(r, "replica", None) == "a"
        ]
        # (``spread`` may be restored from either replica's checkpoint: it spans both.)
        assert {getattr(r, "model", "") for r in restored} - {"spread"} == set(taken_over)
        time.sleep(1.0)  # a duplicate would show up as more events than produced

        for model in MODELS:
            got = b.daemon.pipeline.monitors[model].state([])
            want = expected_state(dir_b / "driftmon.yaml", model)
            scalars = want["scalars"]
            arrays = want["arrays"]
            assert isinstance(scalars, dict) and isinstance(arrays, dict)
            for key in ("events_seen", "evaluations", "retrain_triggers", "alert"):
                assert got.scalars[key] == scalars[key], (model, key)
            assert got.arrays.keys() == arrays.keys()
            for key, value in arrays.items():
                np.testing.assert_array_equal(got.arrays[key], value, err_msg=f"{model} {key}")
        assert takeover_seconds < 60
    finally:
        if a is not None:
            a.kill()
        b.stop()
