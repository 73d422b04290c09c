"""The daemon's loop without a broker: the order of consume, account, checkpoint and commit.

A scripted fake stands in for ``KafkaSource`` (same calls, same revocation contract: the
daemon's callback runs first, then the source commits the revoked partitions
synchronously), fake messages stand behind the ``Message`` protocol, and the checkpoint
files are real. One recorder notes every step, so the tests pin the *order* of steps.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import monitor.app.daemon as daemon_module
from monitor.app.accounting import BatchAccounting, Parts
from monitor.app.daemon import Daemon
from monitor.config import validate_config
from monitor.errors import CheckpointError, ConfigError, UsageError
from monitor.ingest.dead_letter import DeadLetterSink
from monitor.pipeline import BatchOutcome
from monitor.state.checkpoint import Checkpoint, CheckpointStore

Pair = tuple[str, int]
Step = tuple[Any, ...]
TOPIC = "t"


class Recorder:
    def __init__(self) -> None:
        self.steps: list[Step] = []

    def __call__(self, *step: Any) -> None:
        self.steps.append(step)

    def names(self) -> list[str]:
        return [str(step[0]) for step in self.steps]

    def index(self, step: Step, after: int = -1) -> int:
        """Position of the first ``step`` after position ``after``."""
        for i in range(after + 1, len(self.steps)):
            if self.steps[i] == step:
                return i
        raise AssertionError(f"{step} not recorded after step {after}: {self.steps}")

    def in_order(self, *steps: Step) -> None:
        """Every step recorded, each after the one before it."""
        at = -1
        for step in steps:
            at = self.index(step, at)


class FakeMessage:
    """One Kafka message behind the ``Message`` protocol."""

    def __init__(self, value: bytes, partition: int, offset: int) -> None:
        self._value, self._partition, self._offset = value, partition, offset

    def error(self) -> None:
        return None

    def value(self) -> bytes:
        return self._value

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000 + self._offset)

    def headers(self) -> None:
        return None


def batch(first: int, n: int, partition: int = 0, invalid: int = 0) -> list[FakeMessage]:
    """``n`` events of model ``m`` from ``first`` on, the last ``invalid`` of them not JSON."""
    xs = np.random.default_rng(first).normal(size=n)
    out = []
    for i, x in enumerate(xs):
        offset = first + i
        value = f'{{"model": "m", "ts": {1.7e9 + offset}, "features": {{"x": {x:.6f}}}}}'
        out.append(
            FakeMessage(b"{not json" if i >= n - invalid else value.encode(), partition, offset)
        )
    return out


Action = tuple[str, Any] | Callable[[], None]


class FakeSource:
    """``KafkaSource`` without a broker: each ``consume()`` plays the next scripted action.

    ``("assign", pairs)`` and ``("revoke", pairs)`` run the rebalance callbacks inside
    consume(), as librdkafka does; ``("batch", messages)`` returns messages; ``("idle",
    None)`` is a poll that found nothing; a callable is called. An empty script asks the
    daemon to stop.
    """

    def __init__(self, log: Recorder, script: Iterable[Action]) -> None:
        self._log = log
        self._script = list(script)
        self._positions: dict[Pair, int] = {}
        self._assigned: set[Pair] = set()
        self.assigned = False
        self.stop: Callable[[], None] = lambda: None

    def connect(self, *_args: Any, on_assign: Any, on_revoke: Any, **_callbacks: Any) -> FakeSource:
        """Stands in for the ``KafkaSource`` constructor."""
        self._on_assign, self._on_revoke = on_assign, on_revoke
        return self

    def consume(self, max_messages: int, timeout_seconds: float) -> list[FakeMessage]:
        if not self._script:
            self.stop()
            return []
        action = self._script.pop(0)
        if callable(action):
            action()
            return []
        kind, arg = action
        if kind == "assign":
            self._assigned.update(arg)
            self.assigned = True
            seek = self._on_assign(arg) or {}
            self._positions.update(seek)
            return []
        if kind == "revoke":
            self.revoke(arg)
            return []
        if kind == "idle":
            return []
        self._log("consume", arg[-1].offset())
        return list(arg)

    def revoke(self, pairs: list[Pair]) -> None:
        self._on_revoke(pairs)
        self.commit(synchronous=True, only=pairs)
        for pair in pairs:
            self._assigned.discard(pair)
            self._positions.pop(pair, None)

    @property
    def positions(self) -> dict[Pair, int]:
        return {k: v for k, v in self._positions.items() if k in self._assigned}

    def mark_processed(self, messages: list[FakeMessage]) -> None:
        for msg in messages:
            self._positions[(TOPIC, msg.partition())] = msg.offset() + 1
        self._log("mark", messages[-1].offset())

    def commit(self, *, synchronous: bool, only: Iterable[Pair] | None = None) -> None:
        keys = set(self._positions if only is None else only) & set(self._positions)
        offsets = {f"{t}/{p}": self._positions[(t, p)] for t, p in sorted(keys)}
        self._log("commit", "sync" if synchronous else "async", offsets)

    def pause(self) -> None:
        self._log("pause")

    def resume(self) -> None:
        self._log("resume")

    def close(self) -> None:
        # Like KafkaSource.close: commit synchronously, then leaving the group revokes.
        self.commit(synchronous=True)
        self.revoke(sorted(self._assigned))
        self._log("close")


class FakeDeadLetters:
    def __init__(self, log: Recorder) -> None:
        self._log = log

    def send(self, value: bytes | None, reason: str, detail: str, source: Any) -> None:
        self._log("dead letter", source[2])

    def flush(self, timeout_seconds: float) -> int:
        self._log("flush dead letters")
        return 0


class RecordingStore(CheckpointStore):
    """Real checkpoint files; each durable write (or failed one) is recorded."""

    def __init__(self, log: Recorder, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._log = log

    def save(self, ckpt: Checkpoint, *, handover: bool = False) -> float:
        try:
            seconds = super().save(ckpt, handover=handover)
        except CheckpointError:
            self._log("checkpoint failed")
            raise
        self._log("handover checkpoint" if handover else "checkpoint", ckpt.offsets)
        return seconds


def make_config(
    tmp_path: Path, *, interval: float | None, dead_letters: bool = False
) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "kafka": {"bootstrap_servers": "127.0.0.1:9", "topics": [TOPIC]},
        "http": {"host": "127.0.0.1", "port": 0},
        "models": {
            "m": {
                "reference": {"capture_events": 100},
                "window": {"events": 200, "slide": 100},
                "features": {"x": {"type": "numeric"}},
            }
        },
    }
    if interval is not None:
        raw["state"] = {"dir": str(tmp_path / "state"), "checkpoint_interval_seconds": interval}
    if dead_letters:
        raw["kafka"]["dead_letter_topic"] = "t-dead"
    return raw


class NoKernels:
    """The daemon's kernel warm-up, skipped: these tests script the loop, not Numba."""

    def __init__(self, _config: object) -> None:
        pass

    def run(self) -> float:
        return 0.0

    def start_background(self) -> None:
        pass

    def stop(self) -> None:
        pass


@pytest.fixture
def log() -> Recorder:
    return Recorder()


@pytest.fixture
def run_daemon(
    tmp_path: Path, log: Recorder, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Daemon]:
    """Run a daemon over a scripted source to its end; returns the stopped daemon."""
    monkeypatch.setattr(daemon_module, "KernelWarmup", NoKernels)
    monkeypatch.setattr(
        daemon_module, "CheckpointStore", lambda *a, **k: RecordingStore(log, *a, **k)
    )
    monkeypatch.setattr(daemon_module, "DeadLetterSink", lambda *a, **k: FakeDeadLetters(log))
    # Recorded instead of freezing the test process's heap (tests/unit/test_heap.py).
    monkeypatch.setattr(daemon_module, "settle_after_start", lambda: log("settle heap"))
    account = BatchAccounting.account

    def recorded_account(
        self: BatchAccounting, parts: Parts, dead_letter: DeadLetterSink | None
    ) -> BatchOutcome:
        log("account", parts[-1][1][-1].offset())
        return account(self, parts, dead_letter)

    monkeypatch.setattr(BatchAccounting, "account", recorded_account)

    def run(
        script: list[Action],
        *,
        interval: float | None = 3600.0,
        dead_letters: bool = False,
    ) -> Daemon:
        config = validate_config(
            make_config(tmp_path, interval=interval, dead_letters=dead_letters)
        )
        source = FakeSource(log, script)
        monkeypatch.setattr(daemon_module, "KafkaSource", source.connect)
        daemon = Daemon(config, replica_id="r1")
        submit = daemon._worker.submit

        def recorded_submit(
            step: Callable[..., Parts], messages: list[FakeMessage], *rest: Any
        ) -> Any:
            log("submit", messages[-1].offset())
            log("payloads", type(rest[0]).__name__ if rest else None)
            return submit(step, messages, *rest)

        monkeypatch.setattr(daemon._worker, "submit", recorded_submit)
        source.stop = daemon.request_stop
        monkeypatch.setattr(daemon.dispatcher, "flush", lambda _timeout: log("flush webhooks"))
        assert daemon.run(install_signals=False, max_seconds=60) == 0
        return daemon

    return run


ASSIGN: Action = ("assign", [(TOPIC, 0)])
EVERY_BATCH = 1e-6  # a checkpoint is due after every batch


def test_a_batch_is_consumed_accounted_checkpointed_then_committed(
    run_daemon: Callable[..., Daemon], log: Recorder
) -> None:
    daemon = run_daemon(
        [ASSIGN, ("batch", batch(0, 100)), ("batch", batch(100, 100)), ("idle", None)],
        interval=EVERY_BATCH,
    )
    # The first batch is accounted for only once the second is consumed (pipelined loop);
    # the checkpoint due after it drains the second too, so it covers both, whole.
    log.in_order(
        ("consume", 99),
        ("consume", 199),
        ("account", 99),
        ("mark", 99),
        ("account", 199),
        ("mark", 199),
        ("checkpoint", {"t/0": 200}),
        ("commit", "async", {"t/0": 200}),
    )
    assert ("checkpoint", {"t/0": 100}) not in log.steps
    assert daemon.events_total == 200


def test_the_next_batch_is_queued_for_the_worker_before_the_last_is_accounted_for(
    run_daemon: Callable[..., Daemon], log: Recorder
) -> None:
    # The worker moves from one batch to the next without waiting for the loop thread.
    run_daemon([ASSIGN, ("batch", batch(0, 100)), ("batch", batch(100, 100))])
    log.in_order(("submit", 99), ("consume", 199), ("submit", 199), ("account", 99))


def test_the_loop_thread_joins_the_payloads_the_worker_scans_in_place(
    run_daemon: Callable[..., Daemon], log: Recorder
) -> None:
    daemon = run_daemon([ASSIGN, ("batch", batch(0, 100, invalid=3))])
    assert ("payloads", "MessageBlock") in log.steps
    assert daemon.events_total == 97  # the invalid ones still reach the object paths
    assert daemon.accounting.invalid_counts == {"not_json": 3}


def test_the_heap_is_settled_once_after_start_up_before_the_first_consume(
    run_daemon: Callable[..., Daemon], log: Recorder
) -> None:
    run_daemon([ASSIGN, ("batch", batch(0, 100))])
    assert log.names().count("settle heap") == 1
    log.in_order(("settle heap",), ("consume", 99))


def test_without_a_due_checkpoint_nothing_is_committed(
    run_daemon: Callable[..., Daemon], log: Recorder
) -> None:
    run_daemon([ASSIGN, ("batch", batch(0, 100)), ("batch", batch(100, 100))])
    loop = log.steps[: log.names().index("close")]
    assert [s for s in loop if s[0] == "commit" and s[1] == "async"] == []


def test_stateless_commits_every_batch_right_after_accounting(
    run_daemon: Callable[..., Daemon], log: Recorder
) -> None:
    run_daemon([ASSIGN, ("batch", batch(0, 100)), ("batch", batch(100, 50))], interval=None)
    log.in_order(
        ("account", 99),
        ("mark", 99),
        ("commit", "async", {"t/0": 100}),
        ("account", 149),
        ("mark", 149),
        ("commit", "async", {"t/0": 150}),
    )
    assert "checkpoint" not in log.names()


def test_a_failing_checkpoint_pauses_and_commits_nothing_until_one_succeeds(
    run_daemon: Callable[..., Daemon], log: Recorder, tmp_path: Path
) -> None:
    blocked = tmp_path / "state" / "checkpoints"
    aside = tmp_path / "state" / "aside"

    def block() -> None:
        blocked.rename(aside)  # the idle poll after the assignment checkpointed already
        blocked.write_text("a file where the directory should be")

    def unblock() -> None:
        log("unblocked")
        blocked.unlink()
        aside.rename(blocked)

    idle: list[Action] = [("idle", None)] * 3
    daemon = run_daemon(
        [ASSIGN, block, ("batch", batch(0, 100)), *idle, unblock, *idle],
        interval=EVERY_BATCH,
    )
    failed = log.index(("checkpoint failed",))
    unblocked = log.index(("unblocked",))
    log.in_order(("account", 99), ("checkpoint failed",), ("pause",))
    between = log.steps[failed:unblocked]
    assert [s for s in between if s[0] == "commit"] == []
    assert ("checkpoint failed",) in between[1:], "retried while failing"
    # Writable again: the retry is durable, consumption resumes, then the offsets commit.
    log.in_order(
        ("unblocked",),
        ("checkpoint", {"t/0": 100}),
        ("resume",),
        ("commit", "async", {"t/0": 100}),
    )
    assert daemon.registry.get_sample_value("driftmon_checkpoint_failures_total") >= 2
    assert daemon.health.conditions()["state_dir_writable"] is True


def test_revocation_writes_a_handover_checkpoint_before_the_synchronous_commit(
    run_daemon: Callable[..., Daemon], log: Recorder
) -> None:
    daemon = run_daemon([ASSIGN, ("batch", batch(0, 100)), ("revoke", [(TOPIC, 0)])])
    log.in_order(
        ("consume", 99),
        ("account", 99),  # the batch in flight is drained inside the callback
        ("mark", 99),
        ("checkpoint", {"t/0": 100}),
        ("handover checkpoint", {"t/0": 100}),
        ("commit", "sync", {"t/0": 100}),
    )
    revoked = log.index(("commit", "sync", {"t/0": 100}))
    assert [s for s in log.steps[:revoked] if s[0] == "commit"] == []
    assert daemon.recovery is not None and daemon.recovery.model_partitions == {}


def test_shutdown_flushes_dead_letters_checkpoints_then_commits_and_leaves(
    run_daemon: Callable[..., Daemon], log: Recorder
) -> None:
    run_daemon([ASSIGN, ("batch", batch(0, 100, invalid=3))], dead_letters=True)
    log.in_order(
        ("account", 99),
        ("dead letter", 97),
        ("dead letter", 99),
        ("mark", 99),
        ("flush dead letters",),
        ("checkpoint", {"t/0": 100}),
        ("commit", "sync", {"t/0": 100}),
        ("checkpoint", {"t/0": 100}),  # the revocation of leaving: no handover copy
        ("close",),
        ("flush webhooks",),
    )
    assert "handover checkpoint" not in log.names()


def test_shutdown_before_any_assignment_writes_no_checkpoint(
    run_daemon: Callable[..., Daemon], log: Recorder
) -> None:
    # Nothing is restored before the first assignment: an empty checkpoint written now
    # would replace the last good one.
    run_daemon([])
    assert "checkpoint" not in log.names() and "close" in log.names()


def test_invalid_counts_resume_from_the_replicas_checkpoint(
    run_daemon: Callable[..., Daemon], log: Recorder
) -> None:
    first = run_daemon([ASSIGN, ("batch", batch(0, 100, invalid=4))])
    assert first.accounting.invalid_counts == {"not_json": 4}
    second = run_daemon([])
    assert second.accounting.invalid_counts == {"not_json": 4}
    value = second.registry.get_sample_value(
        "driftmon_invalid_events_total", {"reason": "not_json"}
    )
    assert value == 4


def test_the_daemon_refuses_a_config_without_kafka(tmp_path: Path) -> None:
    raw = make_config(tmp_path, interval=None)
    del raw["kafka"]
    with pytest.raises(ConfigError) as info:
        Daemon(validate_config(raw))
    assert [p.path for p in info.value.problems] == ["kafka"]


def test_a_port_in_use_is_a_usage_error_naming_http_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        raw = make_config(tmp_path, interval=None)
        raw["http"]["port"] = busy.getsockname()[1]
        daemon = Daemon(validate_config(raw))
        with pytest.raises(UsageError) as info:
            daemon.start()
    assert info.value.problem.path == "http.port"
    assert "already in use" in info.value.problem.message.lower()


def test_an_unusable_state_dir_is_a_usage_error_naming_state_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    raw = make_config(tmp_path, interval=10.0)
    raw["state"]["dir"] = str(blocker / "state")
    with pytest.raises(UsageError) as info:
        Daemon(validate_config(raw))
    assert info.value.problem.path == "state.dir"


class RecordedKernels(NoKernels):
    """A warm-up that notes when it runs, and fails when asked to."""

    log: Recorder
    fail = False

    def run(self) -> float:
        self.log("kernels compile")
        if self.fail:
            raise RuntimeError("compile failed")
        return 0.0


class ClosableConsumer:
    def __init__(self, log: Recorder) -> None:
        self._log = log

    def close(self) -> None:
        self._log("consumer closed")


@pytest.mark.parametrize("fail", [False, True])
def test_the_consumer_joins_while_the_kernels_compile(
    tmp_path: Path, log: Recorder, monkeypatch: pytest.MonkeyPatch, fail: bool
) -> None:
    """Subscribed first, so the group join overlaps a first start's compile; a failed
    compile leaves the group instead of lingering in it."""
    kernels = type("Kernels", (RecordedKernels,), {"log": log, "fail": fail})
    monkeypatch.setattr(daemon_module, "KernelWarmup", kernels)

    def subscribe(*_args: Any, **_kwargs: Any) -> Any:
        log("consumer subscribed")
        source = FakeSource(log, [])
        source.consumer = ClosableConsumer(log)  # type: ignore[attr-defined]
        return source

    monkeypatch.setattr(daemon_module, "KafkaSource", subscribe)
    daemon = Daemon(validate_config(make_config(tmp_path, interval=None)))
    try:
        if fail:
            with pytest.raises(RuntimeError):
                daemon.start()
            assert log.names() == ["consumer subscribed", "kernels compile", "consumer closed"]
            assert daemon.source is None
        else:
            daemon.start()
            assert log.names() == ["consumer subscribed", "kernels compile"]
    finally:
        daemon.server.stop()
