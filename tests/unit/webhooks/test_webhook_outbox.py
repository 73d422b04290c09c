"""Outbox durability: written before any attempt, survives reopening, dedups for good."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from webhook_samples import NOW, make_event

from monitor.webhooks.outbox import (
    OUTBOX_FILE,
    TOMBSTONE_SECONDS,
    MemoryOutbox,
    Outbox,
    SQLiteOutbox,
    open_outbox,
)


@pytest.fixture(params=["sqlite", "memory"])
def outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Outbox:
    return open_outbox(tmp_path if request.param == "sqlite" else None)


def test_add_dedups_and_orders_by_next_attempt(outbox: Outbox) -> None:
    assert outbox.add(["a", "b"], make_event("e1"), NOW) == ["a", "b"]
    assert outbox.add(["a"], make_event("e1"), NOW + 1) == []  # already pending
    assert outbox.add(["a"], make_event("e2"), NOW + 2) == ["a"]
    assert outbox.counts() == {"a": 2, "b": 1}
    entry = outbox.next_due("a")
    assert entry is not None and entry.event.id == "e1" and entry.attempts == 0
    outbox.reschedule("a", "e1", 1, NOW + 100, "HTTP 503")
    entry = outbox.next_due("a")
    assert entry is not None and entry.event.id == "e2"
    outbox.finish("a", "e2", "delivered", NOW + 3)
    entry = outbox.next_due("a")
    assert entry is not None and (entry.event.id, entry.attempts, entry.next_attempt) == (
        "e1",
        1,
        NOW + 100,
    )
    outbox.finish("a", "e1", "failed", NOW + 4)
    assert outbox.next_due("a") is None
    # Finished pairs never come back, whatever the outcome; other webhooks are unaffected.
    assert outbox.add(["a", "b"], make_event("e1"), NOW + 5) == []
    assert outbox.add(["a", "c"], make_event("e2"), NOW + 5) == ["c"]
    assert outbox.counts() == {"b": 1, "c": 1}
    outbox.close()


def test_sqlite_outbox_survives_reopen_with_event_intact(tmp_path: Path) -> None:
    event = make_event("e1", extra={"run": 3})
    first = SQLiteOutbox(tmp_path / OUTBOX_FILE)
    first.add(["a", "b"], event, NOW)
    first.reschedule("a", "e1", 2, NOW + 7, "ConnectError")
    first.finish("b", "e1", "delivered", NOW)
    first.close()

    second = open_outbox(tmp_path)
    assert second.durable
    entry = second.next_due("a")
    assert entry is not None
    assert entry.event == event  # full round trip, floats and tuples included
    assert (entry.attempts, entry.next_attempt) == (2, NOW + 7)
    assert second.add(["a", "b"], event, NOW) == []  # dedup across the restart
    second.close()


def test_add_is_committed_before_it_returns(tmp_path: Path) -> None:
    outbox = SQLiteOutbox(tmp_path / OUTBOX_FILE)
    outbox.add(["a"], make_event("e1"), NOW)
    # A second, independent connection sees the row: nothing is left in an open transaction.
    other = sqlite3.connect(tmp_path / OUTBOX_FILE)
    assert other.execute("SELECT webhook, event_id FROM pending").fetchall() == [("a", "e1")]
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    other.close()
    outbox.close()


def test_old_tombstones_are_pruned_on_open(tmp_path: Path) -> None:
    outbox = SQLiteOutbox(tmp_path / OUTBOX_FILE)
    outbox.add(["a"], make_event("old"), NOW)
    outbox.finish("a", "old", "delivered", NOW)
    outbox.close()
    later = SQLiteOutbox(tmp_path / OUTBOX_FILE, now=NOW + TOMBSTONE_SECONDS + 1)
    assert later.add(["a"], make_event("old"), NOW) == ["a"]
    later.close()


def test_memory_outbox_is_not_durable() -> None:
    assert MemoryOutbox.durable is False
    assert isinstance(open_outbox(None), MemoryOutbox)
