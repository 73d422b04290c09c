"""Outbox faults (hardening, items 4 and 7): a full disk reports its own error, a garbage
or truncated outbox file follows ``on_corrupt``, and one unreadable pending trigger is set
aside once instead of blocking the valid ones behind it."""

from __future__ import annotations

import logging
import random
import sqlite3
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from webhook_samples import ENV, NOW, make_event, make_webhook

from monitor.errors import CheckpointError
from monitor.webhooks.delivery import WebhookDispatcher
from monitor.webhooks.outbox import OUTBOX_FILE, CorruptEntry, SQLiteOutbox, open_outbox
from tests.support.webhook_metrics import webhook_metrics

FAST = {"max_attempts": 5, "initial_backoff_seconds": 0.01, "max_backoff_seconds": 0.05}


def test_a_full_database_reports_the_full_disk_not_a_rollback_error(tmp_path: Path) -> None:
    outbox = SQLiteOutbox(tmp_path / OUTBOX_FILE)
    # SQLite's own size cap fails writes with SQLITE_FULL, the error of a full disk.
    pages = outbox._db.execute("PRAGMA page_count").fetchone()[0]
    outbox._db.execute(f"PRAGMA max_page_count = {pages}")
    big = make_event("e1", extra={"blob": "x" * 200_000})
    with pytest.raises(sqlite3.Error) as info:
        outbox.add(["a"], big, NOW)
    assert "full" in str(info.value)
    assert "no transaction" not in str(info.value)
    assert not outbox._db.in_transaction
    outbox._db.execute("PRAGMA max_page_count = 1073741823")  # space again
    assert outbox.add(["a"], big, NOW) == ["a"]


def test_submit_on_a_full_disk_raises_checkpoint_error_naming_it(tmp_path: Path) -> None:
    dispatcher = WebhookDispatcher(
        [make_webhook("generic")], state_dir=tmp_path, metrics=webhook_metrics(), env=ENV
    )
    db = dispatcher._outbox._db  # type: ignore[attr-defined]
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    with pytest.raises(CheckpointError, match="full"):
        dispatcher.submit(make_event("e1", extra={"blob": "x" * 200_000}))


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_an_unreadable_outbox_is_moved_aside_with_on_corrupt_fresh(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / OUTBOX_FILE
    if damage == "garbage":
        path.write_bytes(b"this is not a database" * 100)
    else:
        first = SQLiteOutbox(path)
        for i in range(50):
            first.add(["a"], make_event(f"e{i}", extra={"blob": "y" * 2000}), NOW)
        first._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        first.close()
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    caplog.set_level(logging.ERROR, logger="monitor.webhooks.outbox")
    outbox = open_outbox(tmp_path, now=NOW)
    assert outbox.add(["a"], make_event("new"), NOW) == ["a"]
    assert outbox.counts() == {"a": 1}
    aside = [p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert any(n.startswith(f"{OUTBOX_FILE}.corrupt-") for n in aside)
    assert any("webhook outbox unreadable" in r.getMessage() for r in caplog.records)


def test_an_unreadable_outbox_refuses_start_with_on_corrupt_refuse(tmp_path: Path) -> None:
    path = tmp_path / OUTBOX_FILE
    path.write_bytes(b"garbage" * 1000)
    with pytest.raises(CheckpointError, match="on_corrupt: fresh"):
        open_outbox(tmp_path, now=NOW, on_corrupt="refuse")
    assert path.read_bytes() == b"garbage" * 1000


def test_an_unreadable_entry_is_quarantined_once_and_the_rest_delivered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = SQLiteOutbox(tmp_path / OUTBOX_FILE)
    webhook = make_webhook("generic", retry=FAST)
    outbox.add([webhook.name], make_event("good"), NOW + 1)
    outbox._db.execute(
        "INSERT INTO pending (webhook, event_id, event, attempts, next_attempt, created)"
        " VALUES (?, 'bad', '{not json', 0, ?, ?)",
        (webhook.name, NOW, NOW),
    )
    outbox.close()

    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["webhook-id"])
        return httpx.Response(200)

    caplog.set_level(logging.INFO, logger="monitor.webhooks")
    registry = CollectorRegistry()
    dispatcher = WebhookDispatcher(
        [webhook],
        state_dir=tmp_path,
        metrics=webhook_metrics(registry),
        env=ENV,
        rng=random.Random(1),
        transport=httpx.MockTransport(handler),
        clock=lambda: NOW + 10,
    )
    dispatcher.start()
    assert dispatcher.flush(5.0)
    dispatcher.stop(2.0)
    assert seen == ["good"]
    labels = {"webhook": webhook.name}
    value = registry.get_sample_value
    assert value("driftmon_webhook_deliveries_total", {**labels, "outcome": "quarantined"}) == 1
    assert value("driftmon_webhook_deliveries_total", {**labels, "outcome": "delivered"}) == 1
    errors = [r for r in caplog.records if "quarantine" in r.getMessage()]
    assert len(errors) == 1 and errors[0].exc_info is None  # one line, no traceback
    kept = sqlite3.connect(tmp_path / OUTBOX_FILE).execute("SELECT event_id FROM quarantine")
    assert [r[0] for r in kept] == ["bad"]


def test_next_due_moves_an_unreadable_entry_aside_and_says_which(tmp_path: Path) -> None:
    outbox = SQLiteOutbox(tmp_path / OUTBOX_FILE)
    outbox._db.execute(
        "INSERT INTO pending (webhook, event_id, event, attempts, next_attempt, created)"
        " VALUES ('a', 'bad', '{\"id\": 1}', 0, ?, ?)",
        (NOW, NOW),
    )
    outbox.add(["a"], make_event("good"), NOW + 1)
    with pytest.raises(CorruptEntry) as info:
        outbox.next_due("a")
    assert (info.value.webhook, info.value.event_id) == ("a", "bad")
    assert "KeyError" in info.value.reason
    entry = outbox.next_due("a")
    assert entry is not None and entry.event.id == "good"
    assert outbox.counts() == {"a": 1}
