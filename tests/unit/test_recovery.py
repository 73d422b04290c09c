"""RecoveryCoordinator over real checkpoint files: restore, handover, split models, failures.

Two coordinators sharing one state directory play two replicas of a consumer group; the
rebalances are the (topic, partition) lists Kafka would hand them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from monitor.config import validate_config
from monitor.errors import CheckpointError
from monitor.pipeline import Pipeline
from monitor.state.checkpoint import CheckpointStore
from monitor.state.recovery import RecoveryCoordinator

CONFIG = {
    "kafka": {"bootstrap_servers": "127.0.0.1:9", "topics": ["t"]},
    "models": {
        "m": {
            "reference": {"capture_events": 100},
            "window": {"events": 200, "slide": 100},
            "features": {"x": {"type": "numeric"}},
        }
    },
}
INTERVAL = 10.0


class Clock:
    """Seconds that only move when told to: checkpoint order is the test's decision."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float = 1.0) -> None:
        self.now += seconds


def payloads(n: int) -> list[bytes]:
    xs = np.random.default_rng(n).normal(size=n)
    return [
        f'{{"model": "m", "ts": {1.7e9 + i}, "features": {{"x": {x:.6f}}}}}'.encode()
        for i, x in enumerate(xs)
    ]


def replica(state: Path, name: str, clock: Clock) -> tuple[RecoveryCoordinator, Pipeline]:
    pipeline = Pipeline(validate_config(CONFIG), {})
    store = CheckpointStore(state, name)
    return RecoveryCoordinator(store, pipeline, INTERVAL, clock=clock), pipeline


def feed(pipeline: Pipeline, n: int) -> None:
    pipeline.process(payloads(n), np.zeros(n))


def test_assignment_restores_the_model_and_seeks_to_the_checkpointed_offsets(
    tmp_path: Path,
) -> None:
    clock = Clock()
    a, a_pipeline = replica(tmp_path, "a", clock)
    feed(a_pipeline, 150)
    a.note("m", {("t", 0)})
    a.checkpoint({("t", 0): 150, ("t", 1): 7}, {"not_json": 2})

    b, b_pipeline = replica(tmp_path, "b", clock)
    seek = b.on_assign([("t", 0), ("t", 1), ("t", 2)])

    assert seek == {("t", 0): 150, ("t", 1): 7}  # t/2 was never checkpointed
    assert b_pipeline.events_seen("m") == 150
    assert b.model_partitions == {"m": {"t/0"}}
    assert b.restored_counters == {}  # replica-level counters stay with their replica
    again, _ = replica(tmp_path, "a", clock)
    assert again.restored_counters == {"not_json": 2}


def test_a_model_live_here_is_never_clobbered_by_an_older_checkpoint(tmp_path: Path) -> None:
    clock = Clock()
    a, a_pipeline = replica(tmp_path, "a", clock)
    feed(a_pipeline, 150)
    a.note("m", {("t", 0)})
    a.checkpoint({("t", 0): 150}, {})

    b, b_pipeline = replica(tmp_path, "b", clock)
    feed(b_pipeline, 120)
    b.note("m", {("t", 1)})
    b.on_assign([("t", 0)])
    assert b_pipeline.events_seen("m") == 120


def test_revocation_hands_over_and_a_newer_checkpoint_supersedes_the_copy(
    tmp_path: Path,
) -> None:
    clock = Clock()
    a, a_pipeline = replica(tmp_path, "a", clock)
    a.on_assign([("t", 0)])
    feed(a_pipeline, 150)
    a.note("m", {("t", 0)})
    a.checkpoint({("t", 0): 150}, {}, handover=True)
    a.on_revoke([("t", 0)])
    assert a.store.handover_path.exists()
    assert a_pipeline.events_seen("m") == 0 and a.model_partitions == {}

    # A's next periodic checkpoint no longer lists t/0: the copy still holds its state.
    clock.advance()
    a.checkpoint({}, {})
    assert a.store.handover_path.exists()

    clock.advance()
    b, b_pipeline = replica(tmp_path, "b", clock)
    assert b.on_assign([("t", 0)]) == {("t", 0): 150}
    assert b_pipeline.events_seen("m") == 150
    feed(b_pipeline, 50)
    b.checkpoint({("t", 0): 200}, {})

    # B's newer checkpoint lists every partition of the copy: A drops it.
    clock.advance()
    a.checkpoint({}, {})
    assert not a.store.handover_path.exists()
    assert [c.offsets for c in a.store.load_all() if c.replica == "b"] == [{"t/0": 200}]


def test_a_model_on_partitions_of_two_live_replicas_is_reported_split(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    a, a_pipeline = replica(tmp_path, "a", clock)
    b, b_pipeline = replica(tmp_path, "b", clock)
    feed(a_pipeline, 120)
    feed(b_pipeline, 120)
    a.note("m", {("t", 0)})
    b.note("m", {("t", 1)})

    a.checkpoint({("t", 0): 120}, {})
    assert a.split_models == set()  # B has not written yet
    clock.advance()
    with caplog.at_level(logging.WARNING, logger="monitor.state.recovery"):
        b.checkpoint({("t", 1): 120}, {})
    assert b.split_models == {"m"}
    assert any("key events by model" in r.getMessage() for r in caplog.records)

    # A checkpoint older than three intervals is a replica that is gone, not a split.
    clock.advance(3 * INTERVAL + 1)
    b.checkpoint({("t", 1): 120}, {})
    assert b.split_models == set()


def test_a_failed_checkpoint_is_due_again_at_once_until_one_succeeds(tmp_path: Path) -> None:
    clock = Clock()
    state = tmp_path / "state"
    state.mkdir()
    coordinator, _ = replica(state, "a", clock)
    assert not coordinator.due() and not coordinator.failing

    (state / "checkpoints").write_text("a file where the directory should be")
    clock.advance(INTERVAL)
    with pytest.raises(CheckpointError, match="cannot write checkpoint"):
        coordinator.checkpoint({("t", 0): 5}, {})
    assert coordinator.failing and coordinator.due()
    assert coordinator.last_checkpoint == clock.now

    (state / "checkpoints").unlink()
    clock.advance()
    coordinator.checkpoint({("t", 0): 5}, {})
    assert not coordinator.failing and not coordinator.due()
    assert coordinator.last_checkpoint == clock.now


def test_a_checkpoint_with_nothing_new_is_not_rewritten(tmp_path: Path) -> None:
    clock = Clock()
    coordinator, pipeline = replica(tmp_path, "a", clock)
    coordinator.on_assign([("t", 0)])
    feed(pipeline, 150)
    coordinator.note("m", {("t", 0)})
    assert coordinator.checkpoint({("t", 0): 150}, {"invalid": 1}) is not None
    written = [c.written_at for c in coordinator.store.load_all()]

    # Same offsets, counters and topics: the state only changes with events.
    clock.advance(INTERVAL)
    assert coordinator.checkpoint({("t", 0): 150}, {"invalid": 1}, skip_unchanged=True) is None
    assert [c.written_at for c in coordinator.store.load_all()] == written
    assert coordinator.last_checkpoint == clock.now and not coordinator.due()

    # Anything that moved is written: an offset, a counter, and after a rebalance.
    for positions, counters in (
        ({("t", 0): 151}, {"invalid": 1}),
        ({("t", 0): 151}, {"invalid": 2}),
    ):
        clock.advance(INTERVAL)
        assert coordinator.checkpoint(positions, counters, skip_unchanged=True) is not None
    clock.advance(INTERVAL)
    coordinator.on_assign([("t", 0)])
    assert coordinator.checkpoint({("t", 0): 151}, {"invalid": 2}, skip_unchanged=True) is not None
    assert [c.written_at for c in coordinator.store.load_all()] == [clock.now]
    # Shutdown's and revocation's checkpoints are always written.
    clock.advance(INTERVAL)
    assert coordinator.checkpoint({("t", 0): 151}, {"invalid": 2}) is not None


def test_beside_another_replica_an_unchanged_checkpoint_is_still_written(
    tmp_path: Path,
) -> None:
    """Other replicas read ``written_at`` as a sign of life (split detection)."""
    clock = Clock()
    a, _ = replica(tmp_path, "a", clock)
    b, _ = replica(tmp_path, "b", clock)
    b.checkpoint({("t", 1): 10}, {})
    a.checkpoint({("t", 0): 10}, {})
    clock.advance(INTERVAL)
    assert a.checkpoint({("t", 0): 10}, {}, skip_unchanged=True) is not None
    assert [c.written_at for c in a.store.load_all() if c.replica == "a"] == [clock.now]
