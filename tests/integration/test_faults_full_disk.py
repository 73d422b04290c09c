"""A full disk at a drift trigger (hardening, item 4), on a real 16 MB tmpfs.

Before, the daemon exited with code 2 ("invalid configuration") and the message
``cannot rollback - no transaction is active``, and a restart on the full disk failed
the same way. Now the trigger is kept, the next checkpoint fails (consumption pauses,
``/readyz`` says why, nothing is committed past the trigger), and once space is back
the trigger is stored, delivered once, and the daemon is ready again.

Mounting needs root (CI runs as root); elsewhere the test is skipped with that reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.demo import synthetic
from tests.integration.daemon_harness import (
    SECRET,
    SECRET_ENV,
    checkpointed,
    events,
    write_config,
    write_reference,
)
from tests.support.daemon import DaemonProcess
from tests.support.kafka import produce
from tests.support.net import free_port
from tests.support.wait import wait_until
from tests.support.webhook import WebhookReceiver
from tests.support.yaml_edit import edit_yaml_file

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "16m") -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path, name: str = "filler") -> Path:
    """Write until the filesystem is full; returns the filler file."""
    filler = directory / name
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_at_a_trigger_pauses_then_delivers_once(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic, env
) -> None:
    env.set(SECRET_ENV, SECRET)
    topic = kafka_topic(partitions=1)
    with tmpfs(tmp_path / "state") as state, WebhookReceiver() as receiver:
        http_port = free_port()
        config = write_config(
            tmp_path,
            bootstrap=kafka_bootstrap,
            topic=topic,
            group=f"{topic}-g",
            reference=write_reference(tmp_path),
            webhook_url=receiver.url + "/retrain",
            extra=f"state: {{dir: {state}, checkpoint_interval_seconds: 0.5}}\n",
        )
        edit_yaml_file(config, (("http", "port"), http_port))
        produce(kafka_bootstrap, topic, events(4_000, seed=31), key=synthetic.MODEL)
        daemon = DaemonProcess(config, http_port)
        try:
            daemon.wait_serving()
            wait_until(
                lambda: daemon.metric("driftmon_events_total", model="fraud") == 4_000, 60, "first"
            )
            wait_until(lambda: daemon.get("/readyz").status_code == 200, 30, "ready")
            # The restart below resumes from this checkpoint: let it cover the first events.
            wait_until(lambda: checkpointed(state, topic) == 4_000, 30, "checkpoint covers them")

            filler = fill(state)
            drifted = events(4_000, seed=32, drift=True, start_ts=1_764_160_000.0, id_offset=4_000)
            produce(kafka_bootstrap, topic, drifted, key=synthetic.MODEL)
            wait_until(
                lambda: (daemon.metric("driftmon_retrain_triggers_total", model="fraud") or 0) >= 1,
                60,
                "drift confirmed",
            )
            wait_until(lambda: daemon.get("/readyz").status_code == 503, 30, "not ready")
            reasons = daemon.get("/readyz").json()["reasons"]
            assert any("state_dir_writable" in r and "full" in r for r in reasons), reasons
            time.sleep(2.0)
            assert daemon.alive(), daemon.log_text()[-3000:]
            assert receiver.requests == []  # not stored, so not sent
            assert (daemon.metric("driftmon_checkpoint_failures_total") or 0) >= 1

            # A crash and a restart on the still-full disk: the daemon starts, replays
            # from its last checkpoint, meets the same trigger and pauses again.
            daemon.kill()
            second_filler = fill(state, "filler-2")  # whatever the crash freed is taken again
            daemon = DaemonProcess(config, http_port)
            daemon.wait_serving()
            wait_until(
                lambda: (daemon.metric("driftmon_checkpoint_failures_total") or 0) >= 1,
                60,
                "paused again",
            )
            assert daemon.get("/readyz").status_code == 503
            assert daemon.alive(), daemon.log_text()[-3000:]
            assert receiver.requests == []

            filler.unlink()  # space again
            second_filler.unlink()
            wait_until(lambda: len(receiver.requests) == 1, 60, "trigger delivered")
            wait_until(lambda: daemon.get("/readyz").status_code == 200, 30, "ready again")
            # This process counted the drifted events only: the first 4,000 came with
            # the checkpoint it restored (counters are per process).
            wait_until(
                lambda: daemon.metric("driftmon_events_total", model="fraud") == 4_000, 60, "rest"
            )
            time.sleep(2.0)
            assert len(receiver.requests) == 1
            assert daemon.terminate() == 0
        finally:
            daemon.kill()
        log = daemon.log_text()
        assert "webhook trigger not stored" in log
        assert "no transaction is active" not in log
        assert "Traceback" not in log
