"""Abandoned triggers: kept whole after the last attempt, counted, retried or acknowledged."""

from __future__ import annotations

from pathlib import Path

import pytest
from webhook_samples import NOW, make_event

from monitor.webhooks.outbox import OUTBOX_FILE, SQLiteOutbox, open_outbox


def _give_up(outbox: SQLiteOutbox, webhook: str, event_id: str, error: str) -> None:
    outbox.add([webhook], make_event(event_id), NOW)
    outbox.reschedule(webhook, event_id, 2, NOW + 1, "HTTP 503")
    outbox.finish(webhook, event_id, "failed", NOW + 2, error)


def test_a_failed_trigger_is_kept_until_retried_and_then_delivered(tmp_path: Path) -> None:
    outbox = SQLiteOutbox(tmp_path / OUTBOX_FILE)
    event = make_event("e1", extra={"run": 7})
    outbox.add(["retrain"], event, NOW)
    outbox.finish("retrain", "e1", "failed", NOW + 5, "HTTP 500 after 3 attempts")
    assert outbox.counts() == {}
    assert outbox.abandoned_counts() == {"retrain": 1}
    [entry] = outbox.abandoned()
    assert (entry.webhook, entry.event_id, entry.attempts, entry.failed_at) == (
        "retrain",
        "e1",
        1,
        NOW + 5,
    )
    assert entry.error == "HTTP 500 after 3 attempts" and entry.readable
    # Still there after a restart: a lost retrain never vanishes by itself.
    outbox.close()
    outbox = SQLiteOutbox(tmp_path / OUTBOX_FILE, now=NOW + 40 * 86400)
    assert outbox.abandoned_counts() == {"retrain": 1}

    assert outbox.retry(outbox.abandoned(), NOW + 60) == 1
    assert outbox.abandoned_counts() == {}
    due = outbox.next_due("retrain")
    assert due is not None
    assert (due.event, due.attempts, due.next_attempt) == (event, 0, NOW + 60)
    outbox.finish("retrain", "e1", "delivered", NOW + 61)
    assert outbox.abandoned_counts() == {} and outbox.counts() == {}
    outbox.close()


def test_ack_drops_for_good_and_the_trigger_is_never_enqueued_again(tmp_path: Path) -> None:
    outbox = SQLiteOutbox(tmp_path / OUTBOX_FILE)
    _give_up(outbox, "retrain", "e1", "HTTP 400 rejected")
    _give_up(outbox, "audit", "e2", "ConnectError")
    assert outbox.abandoned_counts() == {"retrain": 1, "audit": 1}
    acked = [e for e in outbox.abandoned() if e.webhook == "retrain"]
    assert outbox.ack(acked, NOW + 10) == 1
    assert outbox.abandoned_counts() == {"audit": 1}
    assert outbox.add(["retrain"], make_event("e1"), NOW + 11) == []  # tombstone stays
    assert outbox.retry(acked, NOW + 12) == 0  # nothing left to retry
    outbox.close()


def test_quarantined_entries_count_and_can_only_be_acknowledged(tmp_path: Path) -> None:
    outbox = SQLiteOutbox(tmp_path / OUTBOX_FILE)
    outbox.add(["retrain"], make_event("bad"), NOW)
    outbox._db.execute("UPDATE pending SET event = '{not json'")
    with pytest.raises(Exception, match="unreadable"):
        outbox.next_due("retrain")
    assert outbox.abandoned_counts() == {"retrain": 1}
    [entry] = outbox.abandoned()
    assert not entry.readable and "JSONDecodeError" in entry.error
    assert outbox.retry([entry], NOW) == 0
    assert outbox.abandoned_counts() == {"retrain": 1}
    assert outbox.ack([entry], NOW) == 1
    assert outbox.abandoned_counts() == {}
    outbox.close()


def test_memory_outbox_counts_abandoned_triggers() -> None:
    outbox = open_outbox(None)
    outbox.add(["retrain"], make_event("e1"), NOW)
    outbox.finish("retrain", "e1", "failed", NOW + 1, "HTTP 500")
    assert outbox.abandoned_counts() == {"retrain": 1}
    outbox.add(["retrain"], make_event("e2"), NOW)
    outbox.finish("retrain", "e2", "delivered", NOW + 1)
    assert outbox.abandoned_counts() == {"retrain": 1}
