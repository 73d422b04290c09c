"""Which kernels a start compiles, in what order, what it says, and the scanner gate."""

from __future__ import annotations

import copy
import functools
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.app.kernels import SCANNER_NICE, KernelWarmup
from monitor.config import validate_config
from monitor.ingest.decode import decode_batch, scanner_gate
from monitor.ingest.decode.columnar import ColumnarScanner
from tests.support.numba_cache import cache_without, cached_kernels
from tests.unit.test_config_performance import MODEL as PERFORMANCE_MODEL
from tests.unit.test_jsonscan import CLEAN, SCHEMA

BASE: dict[str, Any] = {
    "kafka": {"bootstrap_servers": "127.0.0.1:9", "topics": ["t"]},
    "models": {
        "m": {
            "reference": {"capture_events": 100},
            "window": {"events": 200, "slide": 100},
            "features": {"x": {"type": "numeric"}},
        }
    },
}


def _run(code: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), NUMBA_DISABLE_JIT="0")
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_drift_statistics_only_without_a_performance_section() -> None:
    steps = KernelWarmup(validate_config(BASE)).steps
    assert [name for name, _ in steps] == ["drift statistics"]


def test_performance_kernels_with_a_performance_section() -> None:
    raw = copy.deepcopy(BASE)
    raw["models"]["p"] = copy.deepcopy(PERFORMANCE_MODEL)
    steps = KernelWarmup(validate_config(raw)).steps
    assert [name for name, _ in steps] == ["drift statistics", "performance metrics"]


def test_stage_2_kernels_only_with_scale_out() -> None:
    raw = copy.deepcopy(BASE)
    raw["kafka"]["scale_out"] = {"enabled": True}
    raw["models"]["m"]["reference"] = "m.profile.json"
    steps = KernelWarmup(validate_config(raw)).steps
    assert [name for name, _ in steps] == ["drift statistics", "scale-out stage 2"]
    steps[1][1]()  # runs (compiles or loads) without error


def test_calibration_kernels_only_with_a_budget() -> None:
    raw = copy.deepcopy(BASE)
    raw["models"]["b"] = copy.deepcopy(BASE["models"]["m"])
    raw["models"]["b"]["alert"] = {"false_alarms_per_month": 1, "events_per_second": 10}
    steps = KernelWarmup(validate_config(raw)).steps
    # a budget turns the sequential tests on by default: their kernels are compiled too
    expected = ["drift statistics", "budget calibration", "sequential detectors"]
    assert [name for name, _ in steps] == expected


def test_sequential_kernels_when_a_model_names_them() -> None:
    raw = copy.deepcopy(BASE)
    raw["models"]["m"]["features"] = {"x": {"type": "numeric", "tests": ["psi", "cusum"]}}
    steps = KernelWarmup(validate_config(raw)).steps
    assert [name for name, _ in steps] == ["drift statistics", "sequential detectors"]
    with_budget = copy.deepcopy(BASE)
    with_budget["models"]["m"]["tests"] = ["psi"]  # named: no sequential test
    with_budget["models"]["m"]["alert"] = {"false_alarms_per_month": 1, "events_per_second": 9}
    steps = KernelWarmup(validate_config(with_budget)).steps
    assert [name for name, _ in steps] == ["drift statistics", "budget calibration"]


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ({"name": "t", "model": "m", "format": "oip"}, ["drift statistics", "OIP JSON scanner"]),
        ({"name": "t", "format": "oip"}, ["drift statistics"]),  # unbound: message by message
        ({"name": "t", "model": "m", "format": "kserve"}, ["drift statistics"]),
        ({"name": "t", "model": "m"}, ["drift statistics"]),
    ],
)
def test_the_oip_scanner_only_for_a_bound_oip_topic(
    topic: dict[str, Any], expected: list[str]
) -> None:
    raw = copy.deepcopy(BASE)
    raw["kafka"]["topics"] = [topic]
    steps = KernelWarmup(validate_config(raw)).steps
    assert [name for name, _ in steps] == expected


def test_binning_is_warmed_for_the_configured_bins() -> None:
    raw = copy.deepcopy(BASE)
    raw["models"]["wide"] = copy.deepcopy(BASE["models"]["m"])
    raw["models"]["wide"]["bins"] = 300
    (_, drift), *_ = KernelWarmup(validate_config(raw)).steps
    assert isinstance(drift, functools.partial)
    assert drift.args == ([128, 512],) and drift.keywords == {"calibration": False}


def test_a_closed_gate_decodes_the_same_without_the_scanner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kafka_ts = np.arange(len(CLEAN), dtype=np.float64)
    open_batch = decode_batch(list(CLEAN), kafka_ts, SCHEMA)

    def no_scan(*_args: object) -> None:
        raise AssertionError("the scanner ran with the gate closed")

    monkeypatch.setattr(ColumnarScanner, "scan", no_scan)
    scanner_gate.close()
    try:
        closed = decode_batch(list(CLEAN), kafka_ts, SCHEMA)
    finally:
        scanner_gate.open_()
    assert closed.models.keys() == open_batch.models.keys()
    for name, a in open_batch.models.items():
        b = closed.models[name]
        assert np.array_equal(a.numeric, b.numeric, equal_nan=True)
        assert a.codes is not None and b.codes is not None
        assert np.array_equal(a.codes, b.codes)
        assert np.array_equal(a.ts, b.ts)


PROGRESS = """
    import logging, sys
    from monitor.app.kernels import KernelWarmup
    from monitor.config import validate_config
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    raw = {"kafka": {"bootstrap_servers": "127.0.0.1:9", "topics": ["t"]},
           "models": {"m": {"reference": {"capture_events": 100},
                            "window": {"events": 200, "slide": 100},
                            "features": {"x": {"type": "numeric"}}}}}
    warm = KernelWarmup(validate_config(raw))
    warm.run()
    print("compiling" if warm.progress.compiling else "loaded", warm.progress.done,
          warm.progress.total, warm.progress.finished)
"""


@pytest.mark.slow
def test_a_first_run_says_it_compiles_and_the_second_loads(tmp_path: Path) -> None:
    # A cache miss on one kernel takes the same path as an empty cache (see tests.support.
    # numba_cache); the one cold compile of them all is tests/integration/test_cold_start.py.
    cache = cache_without(tmp_path / "numba", ["_count_codes"])
    first = _run(PROGRESS, cache)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith("compiling numba kernels (first run only")
    assert lines[1] == "numba kernels: drift statistics ready (1/1)"
    assert lines[-1] == "compiling 1 1 True"
    assert "_count_codes" in cached_kernels(cache)
    second = _run(PROGRESS, cache)
    assert second.returncode == 0, second.stderr
    assert "compiling numba kernels" not in second.stdout
    assert second.stdout.splitlines()[-1] == "loaded 1 1 True"


BACKGROUND = """
    import os, time
    from monitor.app.kernels import KernelWarmup
    from monitor.config import validate_config
    from monitor.ingest.decode import scanner_gate
    raw = {"kafka": {"bootstrap_servers": "127.0.0.1:9", "topics": ["t"]},
           "models": {"m": {"reference": {"capture_events": 100},
                            "window": {"events": 200, "slide": 100},
                            "features": {"x": {"type": "numeric"}}}}}
    warm = KernelWarmup(validate_config(raw))
    warm.start_background()
    print("closed" if not scanner_gate.is_open() else "open")
    while warm.scanner._child is None:
        time.sleep(0.01)
    child = warm.scanner._child
    # the child lowers its own priority first thing
    deadline = time.monotonic() + 60
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    while os.getpriority(os.PRIO_PROCESS, child.pid) == ours and time.monotonic() < deadline:
        time.sleep(0.01)
    print("nicer by", os.getpriority(os.PRIO_PROCESS, child.pid) - ours)
    warm.stop()
    print("child", child.poll() is not None, "gate", scanner_gate.is_open())
"""


def test_an_uncached_scanner_compiles_in_a_nicer_child_that_stop_ends(tmp_path: Path) -> None:
    result = _run(BACKGROUND, tmp_path)
    assert result.returncode == 0, result.stderr
    nicer = min(SCANNER_NICE, 19 - os.getpriority(os.PRIO_PROCESS, 0))
    assert result.stdout.splitlines() == ["closed", f"nicer by {nicer}", "child True gate True"]


NO_SCIPY = """
    import sys
    from monitor.cli import main
    try:
        main(["replay", "--config", sys.argv[1], "--input", sys.argv[2]])
    except SystemExit:
        pass
    # numba itself imports the top-level scipy package (a version check); nothing more
    print(sorted(m for m in sys.modules if m.startswith(("scipy.optimize", "scipy.special"))))
"""


def test_replay_without_a_budget_imports_no_scipy(tmp_path: Path) -> None:
    from monitor.demo import synthetic

    reference = tmp_path / "fraud.json"
    synthetic.reference_profile(rows=2000).save(reference)
    config = tmp_path / "c.yaml"
    config.write_text(
        "kafka: {bootstrap_servers: '127.0.0.1:9', topics: [t]}\nmodels:\n"
        + synthetic.model_config_yaml(str(reference), events=40, slide=20)
    )
    cols = synthetic.generate(np.random.default_rng(0), 100)
    events = tmp_path / "e.jsonl"
    events.write_bytes(b"\n".join(synthetic.to_events(cols, start_ts=1e9, step_seconds=1)))
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(NO_SCIPY), str(config), str(events)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "evaluation" in proc.stderr  # the replay ran
    assert proc.stdout.splitlines()[-1] == "[]"


REPLAY = """
    import sys
    from monitor.cli import main
    main(["replay", "--config", sys.argv[1], "--input", sys.argv[2]])
"""


@pytest.mark.slow
def test_a_cold_replay_decodes_without_waiting_for_the_scanner(tmp_path: Path) -> None:
    from monitor.demo import synthetic

    reference = tmp_path / "fraud.json"
    synthetic.reference_profile(rows=2000).save(reference)
    config = tmp_path / "c.yaml"
    config.write_text(
        "kafka: {bootstrap_servers: '127.0.0.1:9', topics: [t]}\nmodels:\n"
        + synthetic.model_config_yaml(str(reference), events=40, slide=20)
    )
    cols = synthetic.generate(np.random.default_rng(0), 100)
    events = tmp_path / "e.jsonl"
    events.write_bytes(b"\n".join(synthetic.to_events(cols, start_ts=1e9, step_seconds=1)))

    def replay(cache: Path | None) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        if cache is not None:
            env["NUMBA_CACHE_DIR"] = str(cache)
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(REPLAY), str(config), str(events)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    # every kernel cached but the scanner's: its child starts, the replay does not wait
    cold = replay(cache_without(tmp_path / "numba", ["_scan"]))
    assert cold.returncode == 0, cold.stderr
    assert "json scanner compiling in the background" in cold.stderr
    warm = replay(None)  # the suite's warm cache: the scanner decodes
    assert warm.returncode == 0, warm.stderr
    assert "json scanner compiling" not in warm.stderr
    # the object paths gave the same evaluations as the scanner
    assert cold.stdout == warm.stdout and cold.stdout.count("\n") == 4
    # the child was ended with the replay: it left no scanner in the cache
    assert not list((tmp_path / "numba").rglob("scanner._scan-*.nbi"))


def test_warm_all_compiles_an_uncached_scanner_in_a_child_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from monitor.app import kernels

    calls: list[object] = []

    class Child:
        def __init__(self, args: list[str]) -> None:
            calls.append(("child", args[-1]))

        def wait(self) -> None:
            calls.append("child done")

    monkeypatch.setattr(kernels, "_scanner_cached", lambda: False)
    monkeypatch.setattr(kernels.subprocess, "Popen", Child)
    for name in ("stats_warmup", "performance_warmup", "scanner_warmup"):
        monkeypatch.setattr(kernels, name, lambda name=name: calls.append(name))
    kernels.warm_all()
    assert calls == [
        ("child", kernels._SCANNER_CHILD),
        "stats_warmup",
        "performance_warmup",
        "child done",
        "scanner_warmup",  # loads what the child cached
    ]


def test_a_file_command_says_once_that_it_compiles_and_nothing_when_all_is_cached(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    import numba

    from monitor.app.kernels import compile_notice

    def twice(x: float) -> float:
        return 2.0 * x

    def thrice(x: float) -> float:
        return 3.0 * x

    fresh = [numba.njit(cache=False)(f) for f in (twice, thrice)]  # never cached: compile
    with caplog.at_level(logging.INFO, logger="monitor.app.kernels"), compile_notice():
        assert [kernel(1.0) for kernel in fresh] == [2.0, 3.0]
        assert fresh[0](2.0) == 4.0  # compiled already: no event
    said = [r.getMessage() for r in caplog.records]
    assert said == ["compiling numba kernels (first run only; cached for the next start)"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="monitor.app.kernels"), compile_notice():
        assert fresh[1](5.0) == 15.0
    assert caplog.records == []
