"""``driftmon webhook abandoned | retry | ack`` on the state directory's outbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli import EXIT_CONFIG, EXIT_OK, main
from monitor.webhooks.event import DriftEvent
from monitor.webhooks.outbox import OUTBOX_FILE, SQLiteOutbox
from tests.unit.test_cli import GOOD, write

NOW = 1_764_160_000.0
HOOKS = (
    "webhooks:\n"
    "  - {name: retrain, format: generic, url: 'http://127.0.0.1:9/x'}\n"
    "  - {name: audit, format: generic, url: 'http://127.0.0.1:9/y'}\n"
)


def _event(event_id: str) -> DriftEvent:
    return DriftEvent(
        id=event_id,
        time="2026-11-26T12:26:40Z",
        model="fraud",
        window_events=2000,
        window_start=NOW - 60,
        window_end=NOW,
        drifted_features=(),
        features_monitored=2,
    )


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, SQLiteOutbox]:
    state = tmp_path / "state"
    config = write(tmp_path, GOOD + HOOKS + f"state: {{dir: {state}}}\n")
    outbox = SQLiteOutbox(state / OUTBOX_FILE)
    for webhook, event_id in (("retrain", "e1"), ("retrain", "e2"), ("audit", "e3"), ("old", "e4")):
        outbox.add([webhook], _event(event_id), NOW)
        outbox.finish(webhook, event_id, "failed", NOW + 1, "HTTP 500: receiver down")
    return config, outbox


def test_abandoned_lists_each_trigger_and_why(
    setup: tuple[Path, SQLiteOutbox], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = setup
    assert main(["webhook", "abandoned", "--config", str(config)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "retrain\te1\t" in out and "HTTP 500: receiver down" in out
    assert "4 abandoned trigger(s)" in out


def test_retry_one_webhook_then_ack_one_event_then_retry_all(
    setup: tuple[Path, SQLiteOutbox], capsys: pytest.CaptureFixture[str]
) -> None:
    config, outbox = setup
    assert main(["webhook", "retry", "--config", str(config), "retrain"]) == EXIT_OK
    assert "queued 2 trigger(s) again" in capsys.readouterr().out
    assert outbox.counts() == {"retrain": 2}
    assert outbox.abandoned_counts() == {"audit": 1, "old": 1}

    args = ["webhook", "ack", "--config", str(config), "audit", "--event", "e3"]
    assert main(args) == EXIT_OK
    assert "acknowledged 1 trigger(s)" in capsys.readouterr().out
    assert outbox.abandoned_counts() == {"old": 1}

    # "old" is no longer configured: nobody would send it, so it is named, not queued.
    assert main(["webhook", "retry", "--config", str(config), "--all"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "old e4: webhook no longer configured; ack it" in out and "queued 0" in out
    assert main(["webhook", "ack", "--config", str(config), "--all"]) == EXIT_OK
    assert outbox.abandoned_counts() == {}
    assert main(["webhook", "retry", "--config", str(config), "--all"]) == EXIT_OK
    assert "no abandoned trigger" in capsys.readouterr().out


def test_without_a_state_dir_the_key_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, GOOD + HOOKS)
    assert main(["webhook", "retry", "--config", str(config), "--all"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "state.dir" in err and "Traceback" not in err
    config = write(tmp_path, GOOD + HOOKS + f"state: {{dir: {tmp_path / 'empty'}}}\n")
    assert main(["webhook", "abandoned", "--config", str(config)]) == EXIT_CONFIG
    assert "no webhook outbox at" in capsys.readouterr().err


def test_name_or_all_is_required(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, GOOD + HOOKS)
    with pytest.raises(SystemExit) as exc:
        main(["webhook", "ack", "--config", str(config)])
    assert exc.value.code == 2
    assert "--all" in capsys.readouterr().err
