"""Tampered and odd state files (hardening, item 6): the daemon as a subprocess on the
Tansu broker starts, treats every unusable checkpoint as corrupt (``on_corrupt: fresh``)
and goes on counting. Before, a parseable checkpoint with ``alert.state = 99`` stopped
it at every start (exit 1), a FIFO at the checkpoint path hung start-up before HTTP came
up, a symlink to ``/dev/zero`` read until MemoryError, and a garbage webhook outbox
refused start-up (item 7)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from monitor.demo import synthetic
from monitor.model.state import ModelState
from monitor.state.checkpoint import CheckpointStore, decode_checkpoint, encode_checkpoint
from monitor.webhooks.outbox import OUTBOX_FILE
from tests.integration.daemon_harness import events, write_config, write_reference
from tests.support.daemon import DaemonProcess
from tests.support.kafka import produce
from tests.support.net import free_port
from tests.support.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIRST = 2_000
SECOND = 1_000


def test_tampered_fifo_and_dev_zero_checkpoints_start_fresh(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic
) -> None:
    topic = kafka_topic(partitions=1)
    state = tmp_path / "state"
    config = write_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        group=f"{topic}-g",
        reference=write_reference(tmp_path),
        extra=f"state: {{dir: {state}, checkpoint_interval_seconds: 0.5}}\n",
    )
    port = free_port()
    config.write_text(config.read_text().replace("port: 0", f"port: {port}"))
    produce(kafka_bootstrap, topic, events(FIRST, seed=5), key=synthetic.MODEL)
    first = DaemonProcess(config)
    try:
        first.wait_serving()
        wait_until(lambda: first.metric("driftmon_events_total", model="fraud") == FIRST, 60, "n")
    finally:
        assert first.terminate() == 0, first.log_text()[-2000:]

    # Tamper with the checkpoint the clean stop wrote, and plant two odd files beside it.
    (path,) = (state / "checkpoints").glob("*.ckpt")
    ckpt = decode_checkpoint(path.read_bytes())
    model = ckpt.models["fraud"]
    scalars = {**model.scalars, "alert": {**model.scalars["alert"], "state": 99}}
    del scalars["events_seen"]
    bad = ModelState(model.model, model.fingerprint, model.partitions, scalars, model.arrays)
    ckpt.models["fraud"] = bad
    path.write_bytes(encode_checkpoint(ckpt))
    os.mkfifo(state / "checkpoints" / "fifo.ckpt")
    (state / "checkpoints" / "zero.ckpt").symlink_to("/dev/zero")
    outbox = state / OUTBOX_FILE  # item 7: a garbage outbox refused start-up (exit 2)
    assert outbox.exists()
    outbox.write_bytes(b"not an outbox" * 500)
    for suffix in ("-wal", "-shm"):
        Path(f"{outbox}{suffix}").unlink(missing_ok=True)

    produce(
        kafka_bootstrap,
        topic,
        events(SECOND, seed=6, start_ts=1_764_160_000.0, id_offset=FIRST),
        key=synthetic.MODEL,
    )
    second = DaemonProcess(config)
    try:
        second.wait_serving(timeout=60)
        # The offsets in the tampered file still hold; only the model state starts fresh.
        wait_until(
            lambda: second.metric("driftmon_events_total", model="fraud") == SECOND, 60, "rest"
        )
        wait_until(lambda: second.get("/readyz").status_code == 200, 30, "ready")
        assert second.alive()
    finally:
        assert second.terminate() == 0, second.log_text()[-2000:]
    log = second.log_text()
    assert "checkpointed model state not restored" in log
    assert "malformed" in log
    assert "not a regular file" in log  # the FIFO and the /dev/zero link, set aside
    names = sorted(p.name for p in (state / "checkpoints").iterdir())
    assert any(n.startswith("fifo.ckpt.corrupt-") for n in names)
    assert any(n.startswith("zero.ckpt.corrupt-") for n in names)
    assert CheckpointStore(state, "reader").load_all(), "a fresh checkpoint was written"
    assert "webhook outbox unreadable, starting a new one" in log
    assert any(p.name.startswith(f"{OUTBOX_FILE}.corrupt-") for p in state.iterdir())
