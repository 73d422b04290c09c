"""The command line: exit codes and messages, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from monitor import __version__
from monitor.cli import EXIT_CONFIG, EXIT_NOT_READY, EXIT_OK, main
from tests.support.yaml_edit import edit_yaml

GOOD = """\
kafka: {bootstrap_servers: 127.0.0.1:9092, topics: [ml.inference]}
models:
  fraud:
    reference: {capture_events: 1000}
    window: {events: 2000, slide: 500}
    features: {amount: {type: numeric}, country: {type: categorical}}
    prediction: {type: numeric}
"""

BAD = """\
kafka: {bootstrap_servers: 127.0.0.1:9092, topics: [ml.inference], bogus: 1}
models:
  fraud:
    reference: {capture_events: 1000}
    window: {events: 2000, slide: 300}
    features: {amount: {type: numeric}}
    tests: [psi, kss]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "driftmon.yaml"
    path.write_text(text)
    return path


def test_check_config_accepts_a_valid_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", str(write(tmp_path, GOOD))]) == EXIT_OK
    assert "OK (1 model(s): fraud" in capsys.readouterr().out


def test_check_config_lists_every_problem_with_key_path_and_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", str(write(tmp_path, BAD))]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "kafka.bogus: unknown key 'bogus'" in err
    assert "models.fraud.window.slide" in err and "hint:" in err
    assert "models.fraud.tests: unknown test 'kss'" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_run_refuses_an_invalid_config_with_exit_code_2_and_no_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(write(tmp_path, BAD))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == EXIT_CONFIG
    assert "models.fraud.window.slide" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_missing_config_file_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", str(tmp_path / "nope.yaml")]) == EXIT_CONFIG
    assert "nope.yaml" in capsys.readouterr().err


def test_missing_reference_profile_is_reported_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(
        tmp_path, edit_yaml(GOOD, (("models", "fraud", "reference"), "baselines/absent.json"))
    )
    code = main(["replay", "--config", str(config), "--input", str(tmp_path / "x.jsonl")])
    assert code == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "absent.json" in err
    assert "Traceback" not in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_webhook_test_names_the_configured_webhooks_when_the_name_is_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(
        tmp_path,
        GOOD + "webhooks:\n  - {name: retrain, format: generic, url: 'http://127.0.0.1:9/x'}\n",
    )
    assert main(["webhook", "test", "--config", str(config), "nope"]) == EXIT_CONFIG
    assert "configured: retrain" in capsys.readouterr().err


WITH_PROFILE = edit_yaml(GOOD, (("models", "fraud", "reference"), "baselines/fraud.json"))


def training_file(path: Path, rows: int = 600) -> Path:
    lines = [
        f'{{"model": "fraud", "ts": {1_764_150_000 + i}, "prediction": {i % 10 / 10}, '
        f'"features": {{"amount": {50 + i % 37}, "country": "{"DE" if i % 3 else "FR"}"}}}}'
        for i in range(rows)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_check_config_exits_3_until_the_profile_is_built_then_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, WITH_PROFILE)
    assert main(["check-config", str(config)]) == EXIT_NOT_READY
    out = capsys.readouterr().out
    assert "valid" in out and "`driftmon run` cannot start yet" in out
    assert "models.fraud.reference" in out and "not built yet" in out
    assert f"driftmon baseline --config {config}" in out
    profile = tmp_path / "baselines" / "fraud.json"
    training = training_file(tmp_path / "training.jsonl")
    args = ["--config", str(config), "--model", "fraud", "--input", str(training)]
    assert main(["baseline", *args, "--output", str(profile)]) == EXIT_OK
    capsys.readouterr()
    assert main(["check-config", str(config)]) == EXIT_OK
    assert "OK (1 model(s): fraud" in capsys.readouterr().out


def test_baseline_and_replay_work_without_a_kafka_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = yaml.safe_load(WITH_PROFILE)
    del data["kafka"]
    text = yaml.safe_dump(data)
    config = write(tmp_path, text)
    training = training_file(tmp_path / "training.jsonl")
    profile = tmp_path / "baselines" / "fraud.json"
    args = ["--config", str(config), "--model", "fraud", "--input", str(training)]
    assert main(["baseline", *args, "--output", str(profile)]) == EXIT_OK
    report = tmp_path / "report.jsonl"
    replay = ["replay", "--config", str(config), "--input", str(training)]
    assert main([*replay, "--output", str(report)]) == EXIT_OK
    assert "600 accepted" in capsys.readouterr().err
    assert main(["check-config", str(config)]) == EXIT_NOT_READY
    assert "fine for baseline and replay" in capsys.readouterr().out
    assert main(["run", "--config", str(config)]) == EXIT_CONFIG
    assert "kafka: required key is missing" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--input", "--output"])
@pytest.mark.parametrize("command", ["baseline", "replay"])
def test_an_unusable_input_or_output_is_one_line_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, option: str
) -> None:
    config = write(tmp_path, GOOD)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    paths = {"--input": training_file(tmp_path / "t.jsonl"), "--output": tmp_path / "out.json"}
    paths[option] = blocker / "x.jsonl"  # under a regular file: neither readable nor writable
    args = [command, "--config", str(config), "--input", str(paths["--input"])]
    args += ["--output", str(paths["--output"])]
    if command == "baseline":
        args += ["--model", "fraud"]
    assert main(args) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{option}: cannot" in err and "x.jsonl" in err


def test_baseline_of_an_unknown_model_names_the_option_and_the_nearest_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, GOOD)
    training = training_file(tmp_path / "training.jsonl")
    args = ["baseline", "--config", str(config), "--model", "fraudd", "--input", str(training)]
    assert main([*args, "--output", str(tmp_path / "out.json")]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err == (
        "error: --model: no model named 'fraudd' in the config "
        "(hint: did you mean 'fraud'? configured models: fraud)\n"
    )
    assert not (tmp_path / "out.json").exists()


def test_a_csv_with_another_separator_shows_the_header_it_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, GOOD)
    training = tmp_path / "training.csv"
    training.write_text("amount;country\n1;DE\n")
    args = ["baseline", "--config", str(config), "--model", "fraud", "--input", str(training)]
    assert main([*args, "--output", str(tmp_path / "out.json")]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CSV has no column(s) amount" in err
    assert "(comma-separated, the header first; its header reads 'amount;country')" in err
