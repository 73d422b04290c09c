"""Rejected events in the log (rate-limited, with reason, detail and source) and in the
end-of-run summary of replay and baseline."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from monitor.app.baseline import build_reference
from monitor.app.rejections import RejectionLog, RejectionSummary
from monitor.app.replay import replay
from monitor.config import Config, load_config
from monitor.errors import ProfileError
from monitor.ingest.decode import Reason, Rejection

LOGGER = "monitor.test_rejections"


def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER]


def test_each_rejection_logged_with_reason_detail_and_source(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = RejectionLog(logging.getLogger(LOGGER), limit=5)
    rejected = [
        Rejection(0, Reason.not_json, ""),
        Rejection(2, Reason.bad_timestamp, "ts '2026-11-26T10:00:00' has no UTC offset", 1),
    ]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        log.log(rejected, lambda r: f"ml.inference/3/{100 + r.index}")
    first, second = records(caplog)
    assert first.getMessage() == "event rejected" and first.levelno == logging.WARNING
    assert (first.reason, first.source) == ("not_json", "ml.inference/3/100")  # type: ignore[attr-defined]
    assert second.reason == "bad_timestamp"  # type: ignore[attr-defined]
    assert second.detail == "ts '2026-11-26T10:00:00' has no UTC offset"  # type: ignore[attr-defined]
    assert (second.source, second.position) == ("ml.inference/3/102", 1)  # type: ignore[attr-defined]


def test_a_flood_is_rate_limited_per_reason_and_the_rest_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    log = RejectionLog(
        logging.getLogger(LOGGER), limit=2, interval_seconds=60, clock=lambda: now[0]
    )
    sources: list[int] = []

    def source(r: Rejection) -> str:
        sources.append(r.index)
        return f"t/0/{r.index}"

    flood = [Rejection(i, Reason.wrong_type, "feature 'amount'") for i in range(10_000)]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        log.log(flood, source)
        log.log([Rejection(0, Reason.not_json)], source)  # another reason has its own budget
        log.log(flood[:5], source)  # still within the interval: nothing written
        now[0] = 61.0
        log.log([Rejection(7, Reason.wrong_type, "x")], source)
    lines = records(caplog)
    assert [r.reason for r in lines] == ["wrong_type", "wrong_type", "not_json", "wrong_type"]  # type: ignore[attr-defined]
    assert sources == [0, 1, 0, 7], "sources are only worked out for the lines written"
    assert lines[-1].suppressed == 10_000 - 2 + 5  # type: ignore[attr-defined]
    assert not hasattr(lines[0], "suppressed")


def test_nothing_rejected_costs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    def source(r: Rejection) -> str:
        raise AssertionError("no source without a rejection")

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        RejectionLog(logging.getLogger(LOGGER)).log([], source)
    assert records(caplog) == []


def test_summary_counts_per_reason_and_keeps_the_first_examples() -> None:
    summary = RejectionSummary("events.jsonl")
    for line in range(10, 20):
        summary.add("wrong_type", line, f"feature 'amount': expected a number (line {line})")
    summary.add("bad_timestamp", 3, "ts 'x' is not an RFC 3339 time with offset")
    assert summary.total == 11
    assert summary.why() == "wrong_type 10, bad_timestamp 1"
    assert summary.first_example().startswith("events.jsonl:3 bad_timestamp: ts 'x'")
    report = summary.report()
    assert report[0] == "rejected 11 event(s): wrong_type 10, bad_timestamp 1"
    assert report[1:] == [
        "  events.jsonl:10 wrong_type: feature 'amount': expected a number (line 10)",
        "  events.jsonl:11 wrong_type: feature 'amount': expected a number (line 11)",
        "  events.jsonl:12 wrong_type: feature 'amount': expected a number (line 12)",
        "  events.jsonl:3 bad_timestamp: ts 'x' is not an RFC 3339 time with offset",
    ]
    assert RejectionSummary("x").report() == []


# ------------------------------------------------------------- replay and baseline files

CONFIG = """\
kafka: {bootstrap_servers: 127.0.0.1:9092, topics: [ml.inference]}
models:
  churn:
    reference: {capture_events: 100}
    window: {events: 200, slide: 100}
    features: {amount: {type: numeric}, country: {type: categorical}, tenure: {type: numeric}}
"""


def event_line(i: int, ts: object) -> bytes:
    features = {"amount": float(i), "country": "DE"}
    return orjson.dumps({"model": "churn", "ts": ts, "features": features})


def write_events(path: Path, ts_of: Callable[[int], object], n: int = 300) -> Path:
    lines = [event_line(i, ts_of(i)) for i in range(n)]
    lines.insert(3, b"")  # a blank line still counts as a line of the file
    lines.insert(6, b"{oops")  # line 7
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def config_of(tmp_path: Path, extra: str = "") -> Config:
    path = tmp_path / "driftmon.yaml"
    path.write_text(CONFIG + extra)
    return load_config(path)


def test_replay_summarises_reasons_with_line_numbers_and_logs_the_source(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events = write_events(tmp_path / "events.jsonl", lambda i: 1_764_150_000 + i)
    with caplog.at_level(logging.WARNING, logger="monitor"):
        summary = replay(config_of(tmp_path), {}, events, None)
    assert (summary.lines, summary.rejected, summary.accepted) == (301, 1, 300)
    assert summary.rejections.counts == {"not_json": 1}
    [(line, detail)] = summary.rejections.examples["not_json"]
    assert line == 7 and detail
    logged = [r for r in caplog.records if r.getMessage() == "event rejected"]
    assert [(r.reason, r.source) for r in logged] == [("not_json", f"{events}:7")]  # type: ignore[attr-defined]


def test_iso_times_without_offset_are_rejected_saying_why_unless_a_zone_is_configured(
    tmp_path: Path,
) -> None:
    events = write_events(
        tmp_path / "local.jsonl", lambda i: f"2026-11-26T10:{i // 60:02d}:{i % 60:02d}"
    )
    summary = replay(config_of(tmp_path), {}, events, None)
    assert summary.rejections.counts == {"bad_timestamp": 300, "not_json": 1}
    line, detail = summary.rejections.examples["bad_timestamp"][0]
    assert line == 1 and "no UTC offset" in detail and "timestamps.timezone" in detail

    zoned = config_of(tmp_path, "timestamps: {timezone: Europe/Berlin}\n")
    summary = replay(zoned, {}, events, None)
    assert summary.rejections.counts == {"not_json": 1}
    assert summary.accepted == 300


def test_baseline_says_why_no_event_was_usable(tmp_path: Path) -> None:
    events = write_events(tmp_path / "local.jsonl", lambda i: f"2026-11-26T10:00:{i % 60:02d}")
    with pytest.raises(ProfileError) as info:
        build_reference(config_of(tmp_path), "churn", events)
    message = str(info.value)
    assert "no valid events for model 'churn'" in message
    assert "301 event(s) rejected (bad_timestamp 300, not_json 1" in message
    assert f"first: {events}:1 bad_timestamp" in message and "timestamps.timezone" in message

    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"\n\n")
    with pytest.raises(ProfileError, match="the file holds no events"):
        build_reference(config_of(tmp_path), "churn", empty)


def test_baseline_reports_rejected_rows_and_warns_of_features_without_values(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events = write_events(tmp_path / "ok.jsonl", lambda i: 1_764_150_000 + i)
    with caplog.at_level(logging.WARNING, logger="monitor"):
        profile, _, rejected = build_reference(config_of(tmp_path), "churn", events)
    assert profile.features["amount"].n == 300
    assert rejected.counts == {"not_json": 1} and rejected.examples["not_json"][0][0] == 7
    warned = [r for r in caplog.records if "has no values" in r.getMessage()]
    assert [(r.feature, r.file) for r in warned] == [("tenure", str(events))]  # type: ignore[attr-defined]

    csv = tmp_path / "train.csv"
    csv.write_text("amount,country,tenure\n1.0,DE,3\nabc,DE,4\n2.0,FR,inf\n3.0,DE,5\n")
    _, _, rejected = build_reference(config_of(tmp_path), "churn", csv)
    assert rejected.counts == {"wrong_type": 1, "non_finite": 1}
    assert rejected.examples["wrong_type"] == [(3, "column 'amount': 'abc' is not a number")]
    assert rejected.examples["non_finite"][0][0] == 4


@pytest.mark.slow
def test_cli_prints_the_summary_and_the_log_lines_without_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "driftmon.yaml"
    config.write_text(CONFIG)
    events = write_events(tmp_path / "events.jsonl", lambda i: 1_764_150_000 + i)
    run = subprocess.run(
        [sys.executable, "-m", "monitor", "replay", "--config", str(config), "--input",
         str(events), "--output", str(tmp_path / "report.jsonl")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "rejected 1 event(s): not_json 1" in run.stderr
    assert f"  {events}:7 not_json: " in run.stderr
    assert "event rejected reason=not_json" in run.stderr and f"source={events}:7" in run.stderr

    local = write_events(tmp_path / "local.jsonl", lambda i: f"2026-11-26T10:00:{i % 60:02d}")
    run = subprocess.run(
        [sys.executable, "-m", "monitor", "baseline", "--config", str(config), "--model",
         "churn", "--input", str(local), "--output", str(tmp_path / "p.json")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 2
    assert "no valid events for model 'churn': 301 event(s) rejected" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
