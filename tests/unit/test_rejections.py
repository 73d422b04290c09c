"""Rejected events in the log (rate-limited, with reason, detail and source) and in the
end-of-run summary of replay and baseline."""

from __future__ import annotations

import logging

import pytest

from monitor.app.rejections import RejectionLog, RejectionSummary
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
    log = RejectionLog(logging.getLogger(LOGGER), limit=2, interval_seconds=60, clock=lambda: now[0])
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
