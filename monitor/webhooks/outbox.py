"""Pending webhook triggers, stored before any delivery attempt.

One entry per (webhook, event id) holds the event, the number of attempts made and the
wall-clock time of the next attempt. An entry leaves the outbox only when it is delivered
or has finally failed; it then leaves a tombstone, so the same (webhook, event id) is
never enqueued again, also after a restart (tombstones are kept for
``TOMBSTONE_SECONDS``).

:class:`SQLiteOutbox` lives in the daemon's state directory (``webhook-outbox.sqlite3``,
WAL journal, ``synchronous=FULL``): when :meth:`Outbox.add` returns, the trigger is on
disk. :class:`MemoryOutbox` has the same interface for runs without a state directory
and is **not durable**: pending triggers are lost when the process exits.

Delivery is at least once: a crash after the receiver accepted a request but before the
entry was removed sends it again after restart, with the same id, which is why every
format carries the event id as its idempotency key.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from monitor.errors import CheckpointError
from monitor.webhooks.event import DriftEvent

OUTBOX_FILE = "webhook-outbox.sqlite3"
TOMBSTONE_SECONDS = 30 * 86400.0  # long enough for any replay after a restart
Outcome = Literal["delivered", "failed"]


@dataclass(frozen=True)
class OutboxEntry:
    """One pending trigger of one webhook."""

    webhook: str
    event: DriftEvent
    attempts: int  # attempts made so far
    next_attempt: float  # wall-clock seconds
    created: float


class Outbox(Protocol):
    """What the delivery worker needs from a store of pending triggers."""

    durable: bool

    def add(self, webhooks: Iterable[str], event: DriftEvent, now: float) -> list[str]:
        """Enqueue ``event`` for each webhook not seen with this event id before.

        Returns the webhooks it was enqueued for (the others are duplicates).
        """
        ...

    def next_due(self, webhook: str) -> OutboxEntry | None:
        """The entry of ``webhook`` with the earliest next attempt, due or not."""
        ...

    def reschedule(
        self, webhook: str, event_id: str, attempts: int, next_attempt: float, error: str
    ) -> None:
        """Record a failed attempt and when to try again."""
        ...

    def finish(self, webhook: str, event_id: str, outcome: Outcome, now: float) -> None:
        """Remove the entry for good and leave a tombstone."""
        ...

    def counts(self) -> dict[str, int]:
        """Pending entries per webhook (webhooks with none are absent)."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...


class MemoryOutbox:
    """The outbox in memory: same behaviour, **not durable** across restarts."""

    durable = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], OutboxEntry] = {}
        self._done: set[tuple[str, str]] = set()

    def add(self, webhooks: Iterable[str], event: DriftEvent, now: float) -> list[str]:
        added = []
        with self._lock:
            for name in webhooks:
                key = (name, event.id)
                if key in self._pending or key in self._done:
                    continue
                self._pending[key] = OutboxEntry(name, event, 0, now, now)
                added.append(name)
        return added

    def next_due(self, webhook: str) -> OutboxEntry | None:
        with self._lock:
            entries = [e for (w, _), e in self._pending.items() if w == webhook]
        return min(entries, key=lambda e: (e.next_attempt, e.created), default=None)

    def reschedule(
        self, webhook: str, event_id: str, attempts: int, next_attempt: float, error: str
    ) -> None:
        with self._lock:
            old = self._pending.get((webhook, event_id))
            if old is not None:
                self._pending[(webhook, event_id)] = OutboxEntry(
                    webhook, old.event, attempts, next_attempt, old.created
                )

    def finish(self, webhook: str, event_id: str, outcome: Outcome, now: float) -> None:
        with self._lock:
            self._pending.pop((webhook, event_id), None)
            self._done.add((webhook, event_id))

    def counts(self) -> dict[str, int]:
        with self._lock:
            result: dict[str, int] = {}
            for webhook, _ in self._pending:
                result[webhook] = result.get(webhook, 0) + 1
            return result

    def close(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    webhook TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt REAL NOT NULL,
    created REAL NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (webhook, event_id)
);
CREATE TABLE IF NOT EXISTS done (
    webhook TEXT NOT NULL,
    event_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    finished REAL NOT NULL,
    PRIMARY KEY (webhook, event_id)
);
"""


class SQLiteOutbox:
    """The durable outbox: one SQLite file in the state directory.

    Every change is its own transaction committed with ``synchronous=FULL``, so a
    returned :meth:`add` has reached the disk. Safe to share between threads.
    """

    durable = True

    def __init__(self, path: Path, *, now: float | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: explicit BEGIN/COMMIT, nothing left open between calls.
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            if now is not None:
                self._db.execute("DELETE FROM done WHERE finished < ?", (now - TOMBSTONE_SECONDS,))
        except (OSError, sqlite3.Error) as exc:
            raise CheckpointError(f"cannot open the webhook outbox {path.name}: {exc}") from exc

    def add(self, webhooks: Iterable[str], event: DriftEvent, now: float) -> list[str]:
        data = json.dumps(event.to_dict())
        added = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for name in webhooks:
                    seen = self._db.execute(
                        "SELECT 1 FROM done WHERE webhook = ? AND event_id = ?", (name, event.id)
                    ).fetchone()
                    if seen:
                        continue
                    cur = self._db.execute(
                        "INSERT OR IGNORE INTO pending"
                        " (webhook, event_id, event, attempts, next_attempt, created)"
                        " VALUES (?, ?, ?, 0, ?, ?)",
                        (name, event.id, data, now, now),
                    )
                    if cur.rowcount:
                        added.append(name)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return added

    def next_due(self, webhook: str) -> OutboxEntry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT event, attempts, next_attempt, created FROM pending WHERE webhook = ?"
                " ORDER BY next_attempt, created LIMIT 1",
                (webhook,),
            ).fetchone()
        if row is None:
            return None
        event = DriftEvent.from_dict(json.loads(row[0]))
        return OutboxEntry(webhook, event, int(row[1]), float(row[2]), float(row[3]))

    def reschedule(
        self, webhook: str, event_id: str, attempts: int, next_attempt: float, error: str
    ) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE pending SET attempts = ?, next_attempt = ?, last_error = ?"
                " WHERE webhook = ? AND event_id = ?",
                (attempts, next_attempt, error[:1000], webhook, event_id),
            )

    def finish(self, webhook: str, event_id: str, outcome: Outcome, now: float) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "DELETE FROM pending WHERE webhook = ? AND event_id = ?", (webhook, event_id)
                )
                self._db.execute(
                    "INSERT OR REPLACE INTO done (webhook, event_id, outcome, finished)"
                    " VALUES (?, ?, ?, ?)",
                    (webhook, event_id, outcome, now),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT webhook, COUNT(*) FROM pending GROUP BY webhook")
            return {str(w): int(n) for w, n in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_outbox(state_dir: Path | None, *, now: float | None = None) -> Outbox:
    """The SQLite outbox in ``state_dir``, or a (not durable) memory outbox without one."""
    if state_dir is None:
        return MemoryOutbox()
    return SQLiteOutbox(state_dir / OUTBOX_FILE, now=now)
