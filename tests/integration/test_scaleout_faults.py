"""Scale-out under faults: the final scores are those of a run without any.

Replica processes over six source partitions and two models, while the events arrive in
three parts: replica ``b`` is SIGKILLed mid-stream, replica ``c`` exits between producing a
batch's rows and committing its offsets (a crash injected through ``sitecustomize``), ``d``
joins, ``a`` leaves with SIGTERM, and ``b`` comes back on an empty state directory (all
state is on the broker). At the end every model's owner reports the evaluations, the
window's events and the last evaluation's scores and p-values of ``driftmon replay`` of the
same events sorted by event time.

The test broker needs its group to settle between faults (a member leaving while another
rebalance runs stalls its coordinator for a minute with the eager assignor; both groups use
cooperative-sticky, and the test still waits for stable groups before each fault).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.daemon_harness import SECRET, SECRET_ENV
from tests.integration.scaleout_harness import (
    MODELS,
    PER_MODEL,
    all_events,
    produce_spread,
    replayed,
    scaled_out,
)
from tests.support.daemon import DaemonProcess
from tests.support.net import free_port
from tests.support.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Exits the process (no commit, no LeaveGroup) right after the Nth batch's rows and
# markers were acknowledged, before its source offsets are committed.
CRASH_HOOK = """
import os
n = int(os.environ.get("DRIFTMON_TEST_EXIT_BEFORE_COMMIT", "0"))
if n:
    from monitor.app.scaleout import stage1
    calls = [0]
    commit = stage1.Stage1.commit
    def crashing(self, messages):
        calls[0] += 1
        if calls[0] >= n:
            os._exit(17)
        commit(self, messages)
    stage1.Stage1.commit = crashing
"""


class Replicas:
    def __init__(self, tmp: Path, config: Path) -> None:
        self.tmp = tmp
        self.config = config
        self.hook = tmp / "hook"
        self.hook.mkdir()
        (self.hook / "sitecustomize.py").write_text(CRASH_HOOK)
        self.running: dict[str, DaemonProcess] = {}

    def start(self, name: str, **env: str) -> DaemonProcess:
        home = self.tmp / name
        home.mkdir(exist_ok=True)
        doc = yaml.safe_load(self.config.read_text())
        doc["http"]["port"] = free_port()
        path = home / "driftmon.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        env = {"DRIFTMON_REPLICA_ID": name, "PYTHONPATH": str(self.hook), **env}
        proc = DaemonProcess(path, env=env, log_path=home / f"{name}.log")
        self.running[name] = proc
        return proc

    def status(self, name: str) -> dict[str, object] | None:
        try:
            return self.running[name].get("/status").json()  # type: ignore[no-any-return]
        except (httpx.HTTPError, ValueError):  # not serving (yet, or any more)
            return None

    def stable(self) -> bool:
        """Every live replica has source partitions and the internal ones are all owned."""
        docs = [self.status(n) for n, p in self.running.items() if p.alive()]
        if not docs or any(d is None or "scale_out" not in d for d in docs):
            return False
        so = [d["scale_out"] for d in docs]  # type: ignore[index]
        sources = [len(s["source_partitions"]) for s in so]
        owned = sorted(p for s in so for p in s["owned_partitions"])
        return sum(sources) == 6 and all(sources) and owned == [0, 1, 2, 3]

    def owner(self, model: str) -> tuple[DaemonProcess, dict[str, object]] | None:
        """The live replica that owns ``model`` and its ``/status`` entry of it."""
        for name, proc in self.running.items():
            doc = self.status(name) if proc.alive() else None
            if doc is not None and model in doc.get("models", {}):  # type: ignore[operator]
                return proc, doc["models"][model]  # type: ignore[index]
        return None

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{p.log_text()[-2500:]}" for n, p in self.running.items())

    def stop_all(self) -> None:
        for proc in self.running.values():
            if proc.alive():
                proc.kill()


def scores(last: dict[str, object]) -> dict[str, object]:
    return {
        name: (f["scores"], f["p_values"])  # type: ignore[index]
        for name, f in last["features"].items()  # type: ignore[attr-defined]
    }


def test_kill_crash_join_leave_and_an_empty_restart_end_with_the_same_scores(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic, webhook_receiver, env
) -> None:
    env.set(SECRET_ENV, SECRET)
    topic, group, _, config = scaled_out(
        tmp_path, kafka_bootstrap, kafka_topic, webhook_receiver.url
    )
    messages = all_events()
    expected = replayed(config, messages)
    third = len(messages) // 3
    parts = [messages[:third], messages[third : 2 * third], messages[2 * third :]]
    replicas = Replicas(tmp_path, config)
    try:
        started = [replicas.start("a"), replicas.start("b")]
        started.append(replicas.start("c", DRIFTMON_TEST_EXIT_BEFORE_COMMIT="3"))
        for proc in started:
            proc.wait_serving()
        wait_until(replicas.stable, 60, "stable groups before the first part")
        produce_spread(kafka_bootstrap, topic, parts[0], seed=1)
        # c crashes after its third batch, between producing its rows and committing.
        wait_until(lambda: not replicas.running["c"].alive(), 60, "c's injected crash")
        assert replicas.running["c"].proc.returncode == 17
        replicas.running["b"].kill()  # mid-stream: b's partitions are half read
        wait_until(replicas.stable, 60, "a alone holds both groups")
        produce_spread(kafka_bootstrap, topic, parts[1], seed=2)
        replicas.start("d").wait_serving()  # a replica joins
        wait_until(replicas.stable, 60, "stable groups after d joined")
        replicas.running["a"].terminate()  # leaves cleanly: final checkpoint, LeaveGroup
        wait_until(replicas.stable, 60, "d alone after a left")
        replicas.start("b").wait_serving()  # back on an empty state directory
        wait_until(replicas.stable, 60, "stable groups after b came back")
        produce_spread(kafka_bootstrap, topic, parts[2], seed=3)

        def finished() -> bool:
            for model in MODELS:
                found = replicas.owner(model)
                if found is None or found[1]["evaluations"] != len(expected[model]):
                    return False
            return True

        wait_until(finished, 90, "every model's final evaluation")
        duplicates: list[float | None] = []
        for model in MODELS:
            found = replicas.owner(model)
            assert found is not None
            owner, doc = found
            last = expected[model][-1]
            assert doc["window"]["events"] == last["window"]["events"]  # type: ignore[index]
            assert scores(doc["last_evaluation"]) == scores(last)  # type: ignore[arg-type]
            # Every event fed exactly once, whatever was sent twice.
            assert owner.metric("driftmon_events_total", model=model) == PER_MODEL
            applied = owner.metric("driftmon_partial_rows_total", model=model, outcome="applied")
            assert applied == PER_MODEL
            duplicates.append(
                owner.metric("driftmon_partial_rows_total", model=model, outcome="duplicate")
            )
        # c's rows were acknowledged but its offsets never committed: sent again, dropped.
        assert sum(d or 0 for d in duplicates) > 0
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{replicas.logs()}") from None
    finally:
        replicas.stop_all()
