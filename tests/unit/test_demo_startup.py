"""The demo waits for a ready daemon, says why it waits, and fails with a reason."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.app.kernels import WarmupProgress
from monitor.demo.startup import DemoOutcome, verdict, wait_until_ready
from monitor.publish.health import Health


@dataclass
class FakeHealth:
    ready_after: int  # calls to is_ready() before it says yes
    calls: int = 0

    @property
    def is_ready(self) -> bool:  # a property, as on Health
        self.calls += 1
        return self.calls > self.ready_after

    def reasons_not_ready(self) -> list[str]:
        return ["kernels_warm", "consumer_assigned"]


@dataclass
class FakeKernels:
    progress: WarmupProgress = field(default_factory=WarmupProgress)


@dataclass
class FakeDaemon:
    health: FakeHealth
    kernels: FakeKernels = field(default_factory=FakeKernels)


def test_the_fake_reads_health_as_the_real_one_is_read() -> None:
    assert isinstance(FakeHealth.__dict__["is_ready"], property)
    assert isinstance(Health.__dict__["is_ready"], property)


def test_a_first_run_shows_the_compile_step_then_ready() -> None:
    daemon = FakeDaemon(FakeHealth(ready_after=3))
    daemon.kernels.progress = WarmupProgress(step="drift statistics", total=2, compiling=True)
    lines: list[str] = []
    assert wait_until_ready(daemon, lambda: True, lines.append, every=0.0) is None
    assert lines[0].startswith("compiling kernels (first run only): drift statistics (1/2), ")
    assert lines[-1].startswith("driftmon ready after ")
    assert "kernels compiled; later starts load them from the cache" in lines[-1]


def test_a_warm_start_says_what_it_waits_for() -> None:
    daemon = FakeDaemon(FakeHealth(ready_after=1))
    lines: list[str] = []
    assert wait_until_ready(daemon, lambda: True, lines.append, every=0.0) is None
    assert lines[0].startswith(
        "waiting for the daemon to be ready (kernels_warm, consumer_assigned)"
    )
    assert "compiled" not in lines[-1]


def test_a_daemon_that_stops_while_starting_is_a_reason() -> None:
    daemon = FakeDaemon(FakeHealth(ready_after=10**9))
    why = wait_until_ready(daemon, lambda: False, lambda _line: None)
    assert why == "the daemon stopped before it was ready (see the messages above)"


def test_a_daemon_never_ready_times_out_with_its_reasons() -> None:
    daemon = FakeDaemon(FakeHealth(ready_after=10**9))
    why = wait_until_ready(daemon, lambda: True, lambda _line: None, timeout=0.3)
    assert why == "the daemon was not ready after 0 s (kernels_warm, consumer_assigned)"


def test_verdict_names_every_failure() -> None:
    assert verdict(DemoOutcome(5000, 1, True, True)) == []
    assert verdict(DemoOutcome(0, 0, False, False)) == [
        "the daemon stopped before the end (see the messages above)",
        "the daemon counted no events: nothing reached it from the broker",
        "no retrain webhook arrived: the run ended before drift was injected "
        "(use --duration 30 or more)",
    ]
    assert verdict(DemoOutcome(5000, 0, True, True)) == [
        "no retrain webhook arrived although drift was injected"
    ]
