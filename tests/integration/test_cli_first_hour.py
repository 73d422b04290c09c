"""A new user's first commands, as processes against a real broker: the README's steps in
the order written, and every command with a config in another directory."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.demo import synthetic
from tests.integration.daemon_harness import events
from tests.support.kafka import produce
from tests.support.net import free_port

pytestmark = pytest.mark.integration

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.index("\n## ", start + 1)
    return README[start:end]


def driftmon(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def write_events(path: Path, n: int, seed: int) -> Path:
    path.write_bytes(b"\n".join(events(n, seed=seed)) + b"\n")
    return path


def test_the_readme_steps_work_in_the_order_written(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic
) -> None:
    config = re.search(r"```yaml\n(.*?)```", section("Configuration"), re.S)
    steps = re.search(r"```bash\n(.*?)```", section("Install and run"), re.S)
    assert config is not None and steps is not None
    commands = [
        shlex.split(line.split("#")[0])[1:]
        for line in steps.group(1).splitlines()
        if line.startswith("driftmon ")
    ]
    assert [c[0] for c in commands] == ["baseline", "check-config", "run"]
    (tmp_path / "driftmon.yaml").write_text(config.group(1))
    write_events(tmp_path / "training.jsonl", 5000, seed=3)
    topic = kafka_topic(partitions=1)
    produce(kafka_bootstrap, topic, events(3000, seed=4), key=synthetic.MODEL)
    # The documented overrides point the README's config at this test's broker and port.
    env = {
        "DRIFTMON_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DRIFTMON_KAFKA__TOPICS": f"[{topic}]",
        "DRIFTMON_KAFKA__GROUP_ID": f"{topic}-g",
        "DRIFTMON_HTTP__PORT": str(free_port()),
    }
    for command in commands:
        if command[0] == "run":
            command += ["--max-events", "3000", "--max-seconds", "90"]
        result = driftmon(command, tmp_path, env)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        if command[0] == "check-config":
            assert "OK (1 model(s): fraud" in result.stdout
    assert (tmp_path / "baselines" / "fraud.json").is_file()
    assert "stopped events=3000" in result.stderr, result.stderr


def test_every_command_reads_a_config_in_another_directory(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic
) -> None:
    topic = kafka_topic(partitions=1)
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "driftmon.yaml").write_text(
        f"kafka: {{bootstrap_servers: '{kafka_bootstrap}', topics: [{topic}], "
        f"group_id: {topic}-g}}\n"
        f"http: {{host: 127.0.0.1, port: {free_port()}}}\n"
        "models:\n" + synthetic.model_config_yaml("baselines/fraud.json", events=2000, slide=500)
    )
    training = write_events(tmp_path / "training.jsonl", 5000, seed=5)
    config = "sub/driftmon.yaml"
    doubled = "sub/sub"

    before = driftmon(["check-config", config], tmp_path)
    assert before.returncode == 3, before.stderr
    assert str(sub / "baselines" / "fraud.json") in before.stdout
    assert doubled not in before.stdout

    args = ["--config", config, "--model", "fraud", "--input", training.name]
    built = driftmon(["baseline", *args, "--output", "sub/baselines/fraud.json"], tmp_path)
    assert built.returncode == 0, built.stderr

    for cwd, path in (
        (tmp_path, config),
        (sub, "driftmon.yaml"),
        (Path("/"), str(sub) + "/driftmon.yaml"),
    ):
        checked = driftmon(["check-config", path], cwd)
        assert checked.returncode == 0, (cwd, checked.stdout, checked.stderr)

    replayed = driftmon(["replay", "--config", config, "--input", training.name], tmp_path)
    assert replayed.returncode == 0 and doubled not in replayed.stderr, replayed.stderr
    assert "5000 accepted" in replayed.stderr

    produce(kafka_bootstrap, topic, events(2500, seed=6), key=synthetic.MODEL)
    ran = driftmon(
        ["run", "--config", config, "--max-events", "2500", "--max-seconds", "90"], tmp_path
    )
    assert ran.returncode == 0, ran.stderr
    assert "stopped events=2500" in ran.stderr and doubled not in ran.stderr
