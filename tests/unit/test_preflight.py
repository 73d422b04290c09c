"""What each command checks before it starts (monitor.app.preflight): every problem at once,
missing profiles as a step still to take, kafka only for `run`, paths resolved once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.app.preflight import Command, preflight
from monitor.demo import synthetic
from monitor.errors import ConfigError, ConfigProblem

KAFKA = {"bootstrap_servers": "127.0.0.1:9", "topics": ["ml.inference"]}


def document(reference: Any = "baselines/fraud.json", **extra: Any) -> dict[str, Any]:
    return {
        "kafka": KAFKA,
        "models": {
            "fraud": {
                "reference": reference,
                "window": {"events": 2000, "slide": 500},
                "features": {"amount": {"type": "numeric"}, "country": {"type": "categorical"}},
                "prediction": {"type": "numeric"},
            }
        },
        **extra,
    }


def write(directory: Path, data: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "driftmon.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def write_profile(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    synthetic.reference_profile(1, 2000, source="test").save(path)
    return path


def problems(
    path: Path, command: Command, env: dict[str, str] | None = None
) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        preflight(path, command, env={} if env is None else env)
    return list(info.value.problems)


def by_path(found: list[ConfigProblem]) -> dict[str, ConfigProblem]:
    return {p.path: p for p in found}


def test_baseline_does_not_need_the_profile_it_writes(tmp_path: Path) -> None:
    checked = preflight(write(tmp_path, document()), Command.BASELINE, env={})
    assert checked.references is None and checked.pending == ()
    assert checked.config.models["fraud"].reference == str(tmp_path / "baselines" / "fraud.json")


@pytest.mark.parametrize("command", [Command.RUN, Command.REPLAY])
def test_run_and_replay_name_the_missing_profile_and_the_command_that_builds_it(
    tmp_path: Path, command: Command
) -> None:
    (problem,) = problems(write(tmp_path, document()), command)
    assert problem.path == "models.fraud.reference"
    assert "not built yet" in problem.message and "fraud.json" in problem.message
    assert "driftmon baseline --config" in problem.hint and "--model fraud" in problem.hint
    assert "baselines/fraud.json" in problem.hint and "capture_events" in problem.hint


def test_check_config_reports_a_missing_profile_as_a_step_still_to_take(tmp_path: Path) -> None:
    checked = preflight(write(tmp_path, document()), Command.CHECK, env={})
    (pending,) = checked.pending
    assert pending.path == "models.fraud.reference" and "not built yet" in pending.message
    assert "driftmon baseline" in pending.hint
    write_profile(tmp_path / "baselines" / "fraud.json")
    checked = preflight(tmp_path / "driftmon.yaml", Command.CHECK, env={})
    assert checked.pending == () and checked.references is not None


def test_missing_version_profiles_are_listed_by_key(tmp_path: Path) -> None:
    write_profile(tmp_path / "fraud.json")
    data = document("fraud.json")
    data["models"]["fraud"]["versions"] = {"references": {"v1": "fraud.json", "v2": "v2.json"}}
    (problem,) = problems(write(tmp_path, data), Command.RUN)
    assert problem.path == "models.fraud.versions.references.v2"
    assert "not built yet" in problem.message and "that version" in problem.hint


def test_kafka_is_required_only_by_run(tmp_path: Path) -> None:
    write_profile(tmp_path / "baselines" / "fraud.json")
    data = document()
    del data["kafka"]
    path = write(tmp_path, data)
    (problem,) = problems(path, Command.RUN)
    assert problem.path == "kafka" and "driftmon run" in problem.message
    assert "bootstrap_servers" in problem.hint
    for command in (Command.BASELINE, Command.REPLAY):
        assert preflight(path, command, env={}).config.kafka is None
    (note,) = preflight(path, Command.CHECK, env={}).pending
    assert note.path == "kafka" and "fine for baseline and replay" in note.message


def test_check_config_finds_an_unset_secret_env_variable(tmp_path: Path) -> None:
    write_profile(tmp_path / "baselines" / "fraud.json")
    hook = {"name": "retrain", "url": "http://127.0.0.1:9/x", "secret_env": "NOT_SET_HERE"}
    path = write(tmp_path, document(webhooks=[hook]))
    (problem,) = problems(path, Command.CHECK)
    assert problem.path == "webhooks[0].secret_env" and "NOT_SET_HERE" in problem.message
    assert preflight(path, Command.CHECK, env={"NOT_SET_HERE": "whsec_abcdefgh"}).pending == ()


@pytest.mark.parametrize(
    ("content", "message"),
    [('{"version": 1, "feat', "not valid JSON"), ("[1, 2]", "not a driftmon profile")],
)
def test_a_truncated_or_foreign_profile_is_a_problem_of_its_key(
    tmp_path: Path, content: str, message: str
) -> None:
    profile = tmp_path / "baselines" / "fraud.json"
    profile.parent.mkdir()
    profile.write_text(content)
    for command in (Command.CHECK, Command.RUN, Command.REPLAY):
        (problem,) = problems(write(tmp_path, document()), command)
        assert problem.path == "models.fraud.reference" and message in problem.message
        assert "driftmon baseline" in problem.hint


def test_an_unreadable_profile_is_a_problem_of_its_key(tmp_path: Path) -> None:
    (tmp_path / "baselines" / "fraud.json").mkdir(parents=True)  # unreadable even as root
    (problem,) = problems(write(tmp_path, document()), Command.RUN)
    assert problem.path == "models.fraud.reference" and "cannot read profile" in problem.message


@pytest.mark.parametrize("kafka", [True, False])
def test_a_profile_without_a_configured_feature_is_found_by_check_config(
    tmp_path: Path, kafka: bool
) -> None:
    write_profile(tmp_path / "baselines" / "fraud.json")
    data = document()
    data["models"]["fraud"]["features"]["absent"] = {"type": "numeric"}
    if not kafka:
        del data["kafka"]
    (problem,) = problems(write(tmp_path, data), Command.CHECK)
    assert "absent" in problem.message and "driftmon baseline" in problem.message


def test_every_problem_is_listed_together(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    data = document(
        webhooks=[{"name": "retrain", "url": "http://127.0.0.1:9/x", "secret_env": "UNSET_X"}],
        state={"dir": str(blocker / "state")},
    )
    data["models"]["fraud"]["window"]["slide"] = 300  # does not divide 2000
    data["models"]["fraud"]["tests"] = ["psi", "kss"]
    found = by_path(problems(write(tmp_path, data), Command.CHECK))
    assert set(found) == {
        "models.fraud.window.slide",
        "models.fraud.tests",
        "models.fraud.reference",
        "webhooks[0].secret_env",
        "state.dir",
    }
    assert "not built yet" in found["models.fraud.reference"].message
    assert "not a directory" in found["state.dir"].message
    assert found == by_path(problems(tmp_path / "driftmon.yaml", Command.RUN))


def test_run_creates_the_state_dir_and_check_config_only_probes_it(tmp_path: Path) -> None:
    write_profile(tmp_path / "baselines" / "fraud.json")
    state = tmp_path / "state" / "nested"
    path = write(tmp_path, document(state={"dir": str(state)}))
    assert preflight(path, Command.CHECK, env={}).pending == ()
    assert not state.exists()
    preflight(path, Command.RUN, env={})
    assert state.is_dir() and list(state.iterdir()) == []


def test_relative_paths_resolve_once_against_the_config_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_profile(tmp_path / "sub" / "baselines" / "fraud.json")
    write(tmp_path / "sub", document())
    monkeypatch.chdir(tmp_path)
    for command in Command:
        checked = preflight(Path("sub/driftmon.yaml"), command, env={})
        reference = checked.config.models["fraud"].reference
        assert reference == str(tmp_path / "sub" / "baselines" / "fraud.json"), command
        assert os.path.isabs(str(reference))
    assert preflight(Path("sub/driftmon.yaml"), Command.REPLAY, env={}).references
