"""Configs built to hurt: alias bombs, huge values, env values that YAML would rewrite,
and librdkafka options that load code. Each gets a fast, specific refusal or is taken
literally; none costs more than a moment or a few megabytes."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import load_config
from monitor.errors import ConfigError

BASE: dict[str, Any] = {
    "kafka": {"bootstrap_servers": "127.0.0.1:9092", "topics": ["ml.inference"]},
    "models": {
        "fraud": {
            "reference": {"capture_events": 1000},
            "window": {"events": 2000, "slide": 200},
            "features": {"amount": {"type": "numeric"}},
        }
    },
}

# Nine levels of ten aliases each: about 10^9 values once expanded, 1.5 KB as written.
ALIAS_BOMB = "".join(
    [f"l0: &l0 [{', '.join(['x'] * 10)}]\n"]
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 9)]
)


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "driftmon.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def bounded(seconds: float, megabytes: float) -> Any:
    """Context that fails the test when its body takes longer or allocates more."""

    class _Bound:
        def __enter__(self) -> None:
            tracemalloc.start()
            self.start = time.perf_counter()

        def __exit__(self, *exc: object) -> None:
            took = time.perf_counter() - self.start
            peak = tracemalloc.get_traced_memory()[1] / 1e6
            tracemalloc.stop()
            # Generous bounds: the failure being guarded against took 7.9 s and 895 MB.
            assert took < seconds, f"took {took:.1f} s"
            assert peak < megabytes, f"peak {peak:.0f} MB"

    return _Bound()


def test_alias_bomb_in_the_file_is_refused_quickly(tmp_path: Path) -> None:
    text = yaml.safe_dump(BASE) + ALIAS_BOMB + "extra: *l8\n"
    assert len(text) < 2000
    with bounded(seconds=2, megabytes=50), pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    (problem,) = info.value.problems
    assert problem.path == "(yaml)"
    assert "aliases expand the document" in problem.message
    assert "aliases" in problem.hint


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, yaml.safe_dump(BASE) + "loop: &a [*a]\n"), env={})
    assert "contains it" in info.value.problems[0].message


def test_modest_anchors_still_work(tmp_path: Path) -> None:
    text = """
kafka: {bootstrap_servers: "127.0.0.1:9092", topics: [ml.inference]}
models:
  fraud: &model
    reference: {capture_events: 1000}
    window: {events: 2000, slide: 200}
    features: {amount: {type: numeric}}
  churn: *model
"""
    config = load_config(write(tmp_path, text), env={})
    assert set(config.models) == {"fraud", "churn"}


def test_a_huge_bad_value_is_shown_short(tmp_path: Path) -> None:
    data = {**BASE, "http": {"port": [{"x": "y" * 1000}] * 3000}}
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, data), env={})
    (problem,) = info.value.problems
    assert problem.path == "http.port"
    assert len(problem.message) < 200


def test_problem_values_render_in_bounded_time() -> None:
    from monitor.config.problems import _short

    shared: Any = ["x"] * 10
    for _ in range(9):  # 10^10 leaves when walked, a few hundred objects in memory
        shared = [shared] * 10
    value = {"value": shared, "blob": "z" * 10_000_000}
    with bounded(seconds=1, megabytes=5):
        text = _short(value)
    assert len(text) <= 40 and text.endswith("...")


def test_alias_bomb_in_an_env_value_is_refused(tmp_path: Path) -> None:
    flow = "{" + ", ".join(
        f"k{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)
    )
    value = "{a: &a0 [x, x, x, x, x, x, x, x, x], b: " + flow + "}}"
    env = {"DRIFTMON_MODELS__FRAUD__WINDOW": value}
    with bounded(seconds=2, megabytes=50), pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, BASE), env=env)
    (problem,) = info.value.problems
    assert problem.path == "models.fraud.window"
    assert "DRIFTMON_MODELS__FRAUD__WINDOW" in problem.message


def test_a_long_env_value_for_a_text_key_is_not_parsed(tmp_path: Path) -> None:
    value = "[" + ", ".join(["&a [x, x, x, x, x, x, x, x]"] + ["*a"] * 60) + "]"
    env = {"DRIFTMON_LOG__LEVEL": value}
    with bounded(seconds=2, megabytes=50), pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, BASE), env=env)
    assert info.value.problems[0].path == "log.level"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0123", "0123"), ("yes", "yes"), ("abc #def", "abc #def"), ("12:30:00", "12:30:00")],
)
def test_env_values_of_text_keys_are_taken_literally(
    tmp_path: Path, text: str, expected: str
) -> None:
    env = {
        "DRIFTMON_KAFKA__CONSUMER__SASL_PASSWORD": text,
        "DRIFTMON_KAFKA__GROUP_ID": text,
    }
    config = load_config(write(tmp_path, BASE), env=env)
    assert config.kafka is not None
    assert config.kafka.consumer["sasl.password"] == expected
    assert config.kafka.group_id == expected


def test_env_values_of_other_keys_are_still_parsed(tmp_path: Path) -> None:
    env = {
        "DRIFTMON_MODELS__FRAUD__WINDOW__EVENTS": "4000",
        "DRIFTMON_MODELS__FRAUD__REFERENCE": "{capture_events: 500}",
        "DRIFTMON_KAFKA__TOPICS": "[a, b]",
    }
    config = load_config(write(tmp_path, BASE), env=env)
    fraud = config.models["fraud"]
    assert fraud.window.events == 4000  # type: ignore[union-attr]
    assert fraud.reference.capture_events == 500  # type: ignore[union-attr]
    assert config.kafka is not None and [t.name for t in config.kafka.topics] == ["a", "b"]


@pytest.mark.parametrize(
    "key",
    [
        "plugin.library.paths",
        "ssl.engine.location",
        "ssl_engine_location",
        "ssl.providers",
        "sasl.kerberos.kinit.cmd",
    ],
)
def test_librdkafka_options_that_load_code_are_refused(tmp_path: Path, key: str) -> None:
    data = {**BASE, "kafka": {**BASE["kafka"], "consumer": {key: "/tmp/evil.so"}}}
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, data), env={})
    (problem,) = info.value.problems
    assert problem.path.startswith("kafka.consumer")
    assert "load code or run a command" in problem.message and problem.hint


def test_librdkafka_code_options_are_refused_from_env_too(tmp_path: Path) -> None:
    env = {"DRIFTMON_KAFKA__PRODUCER__PLUGIN_LIBRARY_PATHS": "/tmp/evil.so"}
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, BASE), env=env)
    assert "plugin.library.paths" in info.value.problems[0].message
