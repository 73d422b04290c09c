"""Pending webhook triggers, stored before any delivery attempt.

One entry per (webhook, event id) holds the event, the number of attempts made and the
wall-clock time of the next attempt. An entry leaves the outbox only when it is delivered
or has finally failed; it then leaves a tombstone, so the same (webhook, event id) is
never enqueued again, also after a restart (tombstones are kept for
``TOMBSTONE_SECONDS``). A trigger that finally failed is also kept whole in the
``abandoned`` table (as is an unreadable one in ``quarantine``) until a person sends it
again (:meth:`SQLiteOutbox.retry`, ``driftmon webhook retry``) or drops it
(:meth:`SQLiteOutbox.ack`, ``driftmon webhook ack``): a lost retrain stays visible
(``driftmon_webhook_abandoned``) instead of vanishing with its log line.

:class:`SQLiteOutbox` lives in the daemon's state directory (``webhook-outbox.sqlite3``,
WAL journal, ``synchronous=FULL``): when :meth:`Outbox.add` returns, the trigger is on
disk. :class:`MemoryOutbox` has the same interface for runs without a state directory
and is **not durable**: pending triggers are lost when the process exits.

Delivery is at least once: a crash after the receiver accepted a request but before the
entry was removed sends it again after restart, with the same id, which is why every
format carries the event id as its idempotency key.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from monitor.errors import CheckpointError
from monitor.webhooks.event import DriftEvent

log = logging.getLogger(__name__)

OUTBOX_FILE = "webhook-outbox.sqlite3"
TOMBSTONE_SECONDS = 30 * 86400.0  # long enough for any replay after a restart
Outcome = Literal["delivered", "failed"]


class OutboxCorrupt(Exception):
    """The outbox file is not a readable SQLite outbox."""


class CorruptEntry(Exception):
    """A pending entry could not be read; it was moved to the outbox's quarantine table."""

    def __init__(self, webhook: str, event_id: str, reason: str) -> None:
        super().__init__(f"webhook {webhook}: trigger {event_id!r} unreadable ({reason})")
        self.webhook, self.event_id, self.reason = webhook, event_id, reason


@dataclass(frozen=True)
class AbandonedEntry:
    """A trigger a webhook gave up on, kept until retried or acknowledged."""

    webhook: str
    event_id: str
    attempts: int
    failed_at: float  # wall-clock seconds; 0.0 for unreadable (quarantined) entries
    error: str  # the last attempt's outcome, or why the stored entry is unreadable
    readable: bool  # False: quarantined, can only be acknowledged


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

    def finish(
        self, webhook: str, event_id: str, outcome: Outcome, now: float, error: str = ""
    ) -> None:
        """Remove the entry for good and leave a tombstone; a ``failed`` one is kept as
        abandoned (with ``error``) until retried or acknowledged."""
        ...

    def counts(self) -> dict[str, int]:
        """Pending entries per webhook (webhooks with none are absent)."""
        ...

    def abandoned_counts(self) -> dict[str, int]:
        """Abandoned and quarantined entries per webhook (webhooks with none are absent)."""
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
        self._abandoned: set[tuple[str, str]] = set()

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

    def finish(
        self, webhook: str, event_id: str, outcome: Outcome, now: float, error: str = ""
    ) -> None:
        with self._lock:
            self._pending.pop((webhook, event_id), None)
            self._done.add((webhook, event_id))
            if outcome == "failed":
                self._abandoned.add((webhook, event_id))

    def abandoned_counts(self) -> dict[str, int]:
        with self._lock:
            result: dict[str, int] = {}
            for webhook, _ in self._abandoned:
                result[webhook] = result.get(webhook, 0) + 1
            return result

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
CREATE TABLE IF NOT EXISTS quarantine (
    webhook TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (webhook, event_id)
);
CREATE TABLE IF NOT EXISTS abandoned (
    webhook TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    failed_at REAL NOT NULL,
    last_error TEXT NOT NULL,
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
        except (OSError, sqlite3.Error) as exc:
            raise CheckpointError(f"cannot open the webhook outbox {path.name}: {exc}") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            problems = [str(r[0]) for r in self._db.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise OutboxCorrupt(f"{path.name}: {'; '.join(problems)[:300]}")
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if getattr(exc, "sqlite_errorname", "") in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
                raise OutboxCorrupt(f"{path.name}: {exc}") from exc
            raise CheckpointError(f"cannot open the webhook outbox {path.name}: {exc}") from exc
        except OutboxCorrupt:
            self._db.close()
            raise
        if now is not None:
            # Best effort: on a full disk the outbox must still open (and pause, not stop).
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("DELETE FROM done WHERE finished < ?", (now - TOMBSTONE_SECONDS,))

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
                self._rollback()
                raise
        return added

    def next_due(self, webhook: str) -> OutboxEntry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT event_id, event, attempts, next_attempt, created FROM pending"
                " WHERE webhook = ? ORDER BY next_attempt, created LIMIT 1",
                (webhook,),
            ).fetchone()
            if row is None:
                return None
            try:
                event = DriftEvent.from_dict(json.loads(row[1]))
                return OutboxEntry(webhook, event, int(row[2]), float(row[3]), float(row[4]))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                reason = f"{type(exc).__name__}: {exc}"[:500]
                self._quarantine(webhook, str(row[0]), reason)
        raise CorruptEntry(webhook, str(row[0]), reason)

    def _quarantine(self, webhook: str, event_id: str, reason: str) -> None:
        """Move an entry that cannot be read out of the way of the valid ones behind it."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO quarantine (webhook, event_id, event, reason)"
                " SELECT webhook, event_id, event, ? FROM pending"
                " WHERE webhook = ? AND event_id = ?",
                (reason, webhook, event_id),
            )
            self._db.execute(
                "DELETE FROM pending WHERE webhook = ? AND event_id = ?", (webhook, event_id)
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def reschedule(
        self, webhook: str, event_id: str, attempts: int, next_attempt: float, error: str
    ) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE pending SET attempts = ?, next_attempt = ?, last_error = ?"
                " WHERE webhook = ? AND event_id = ?",
                (attempts, next_attempt, error[:1000], webhook, event_id),
            )

    def finish(
        self, webhook: str, event_id: str, outcome: Outcome, now: float, error: str = ""
    ) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if outcome == "failed":
                    self._db.execute(
                        "INSERT OR REPLACE INTO abandoned"
                        " (webhook, event_id, event, attempts, failed_at, last_error)"
                        " SELECT webhook, event_id, event, attempts + 1, ?, ? FROM pending"
                        " WHERE webhook = ? AND event_id = ?",
                        (now, error[:1000], webhook, event_id),
                    )
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
                self._rollback()
                raise

    def _rollback(self) -> None:
        # SQLite rolls back by itself on some errors (SQLITE_FULL): a second ROLLBACK
        # then fails with "no transaction is active" and would hide the real error.
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT webhook, COUNT(*) FROM pending GROUP BY webhook")
            return {str(w): int(n) for w, n in rows}

    def abandoned_counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT webhook, COUNT(*) FROM (SELECT webhook FROM abandoned"
                " UNION ALL SELECT webhook FROM quarantine) GROUP BY webhook"
            )
            return {str(w): int(n) for w, n in rows}

    def abandoned(self) -> list[AbandonedEntry]:
        """Every abandoned and quarantined entry, oldest failure first."""
        with self._lock:
            failed = self._db.execute(
                "SELECT webhook, event_id, attempts, failed_at, last_error FROM abandoned"
                " ORDER BY failed_at, webhook, event_id"
            ).fetchall()
            unreadable = self._db.execute(
                "SELECT webhook, event_id, reason FROM quarantine ORDER BY webhook, event_id"
            ).fetchall()
        entries = [
            AbandonedEntry(str(w), str(e), int(a), float(t), str(err), readable=True)
            for w, e, a, t, err in failed
        ]
        entries += [
            AbandonedEntry(str(w), str(e), 0, 0.0, str(r), readable=False) for w, e, r in unreadable
        ]
        return entries

    def retry(self, entries: Iterable[AbandonedEntry], now: float) -> int:
        """Put abandoned (readable) entries back as pending, due at once, attempts reset;
        the running daemon's worker picks them up within seconds. Returns how many."""
        moved = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for entry in entries:
                    key = (entry.webhook, entry.event_id)
                    cur = self._db.execute(
                        "INSERT OR IGNORE INTO pending"
                        " (webhook, event_id, event, attempts, next_attempt, created)"
                        " SELECT webhook, event_id, event, 0, ?, ? FROM abandoned"
                        " WHERE webhook = ? AND event_id = ?",
                        (now, now, *key),
                    )
                    self._db.execute(
                        "DELETE FROM abandoned WHERE webhook = ? AND event_id = ?", key
                    )
                    moved += cur.rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        return moved

    def ack(self, entries: Iterable[AbandonedEntry], now: float) -> int:
        """Drop abandoned or quarantined entries for good (their tombstone stays, so the
        trigger is never enqueued again). Returns how many."""
        dropped = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for entry in entries:
                    key = (entry.webhook, entry.event_id)
                    table = "abandoned" if entry.readable else "quarantine"
                    cur = self._db.execute(
                        f"DELETE FROM {table} WHERE webhook = ? AND event_id = ?",  # noqa: S608
                        key,
                    )
                    self._db.execute(
                        "INSERT OR REPLACE INTO done (webhook, event_id, outcome, finished)"
                        " VALUES (?, ?, 'acknowledged', ?)",
                        (*key, now),
                    )
                    dropped += cur.rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        return dropped

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_outbox(
    state_dir: Path | None, *, now: float | None = None, on_corrupt: str = "fresh"
) -> Outbox:
    """The SQLite outbox in ``state_dir``, or a (not durable) memory outbox without one.

    A file that is not a readable outbox (garbage, truncated) is moved aside
    (``*.corrupt-<time>``, with its WAL) and a new one started when ``on_corrupt`` is
    ``fresh``, as for checkpoints; with ``refuse`` it raises ``CheckpointError``.
    """
    if state_dir is None:
        return MemoryOutbox()
    path = state_dir / OUTBOX_FILE
    try:
        return SQLiteOutbox(path, now=now)
    except OutboxCorrupt as exc:
        if on_corrupt == "refuse":
            raise CheckpointError(
                f"webhook outbox unreadable ({exc}); move the file away or set "
                "state.on_corrupt: fresh"
            ) from None
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        for suffix in ("", "-wal", "-shm"):
            part = path.with_name(path.name + suffix)
            with contextlib.suppress(FileNotFoundError):
                part.rename(aside.with_name(aside.name + suffix))
        log.error(
            "webhook outbox unreadable, starting a new one: its pending triggers are lost "
            "(the file is kept for inspection)",
            extra={"error": str(exc), "moved_to": str(aside)},
        )
        return SQLiteOutbox(path, now=now)
