"""``driftmon webhook abandoned | retry | ack``: act on the state directory's webhook outbox.

A trigger a webhook gave up on stays in the outbox (``abandoned``, or ``quarantine`` when it
could not be read back) and counted in ``driftmon_webhook_abandoned`` until a person sends
it again or acknowledges it. These commands work on the SQLite file next to the
checkpoints, also while the daemon runs (SQLite's WAL lets both write; the daemon's worker
picks a retried trigger up within seconds and its gauge follows).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from monitor.config import Config
from monitor.errors import ConfigProblem, UsageError
from monitor.webhooks.outbox import OUTBOX_FILE, AbandonedEntry, SQLiteOutbox

__all__ = ["Selection", "list_abandoned", "open_state_outbox", "retry_or_ack"]


def open_state_outbox(config: Config) -> SQLiteOutbox:
    """The outbox of ``state.dir``; a missing state section or file is a usage error."""
    if config.state is None:
        raise UsageError(
            ConfigProblem(
                "state.dir",
                "not set: without a state directory the webhook outbox lives in the daemon's "
                "memory, and there is nothing on disk to retry or acknowledge",
                "set state.dir so abandoned triggers survive and can be acted on",
            )
        )
    path = Path(config.state.dir) / OUTBOX_FILE
    if not path.is_file():
        raise UsageError(
            ConfigProblem(
                "state.dir",
                f"no webhook outbox at {path}",
                "point --config at the daemon's config; the daemon creates the file on start",
            )
        )
    return SQLiteOutbox(path)


@dataclass(frozen=True)
class Selection:
    """Which abandoned triggers a command acts on."""

    webhook: str | None  # None: every webhook (--all)
    event_id: str | None  # None: every trigger of the selected webhooks

    def matches(self, entry: AbandonedEntry) -> bool:
        return (self.webhook is None or entry.webhook == self.webhook) and (
            self.event_id is None or entry.event_id == self.event_id
        )


def list_abandoned(outbox: SQLiteOutbox) -> list[str]:
    """One line per abandoned trigger, oldest first, then a total."""
    entries = outbox.abandoned()
    lines = []
    for e in entries:
        when = (
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e.failed_at))
            if e.readable
            else "unreadable (ack only)"
        )
        lines.append(f"{e.webhook}\t{e.event_id}\t{when}\tattempts={e.attempts}\t{e.error or '-'}")
    lines.append(f"{len(entries)} abandoned trigger(s)")
    return lines


def retry_or_ack(
    outbox: SQLiteOutbox, selection: Selection, action: str, configured: Sequence[str]
) -> list[str]:
    """Retry (``action="retry"``) or acknowledge the selected triggers; lines to print.

    A retry needs a webhook that is configured (it is its worker that sends it) and a
    readable trigger; the others are named and left as they are.
    """
    chosen = [e for e in outbox.abandoned() if selection.matches(e)]
    if not chosen:
        what = selection.event_id or selection.webhook or "any webhook"
        return [f"no abandoned trigger for {what}"]
    lines: list[str] = []
    now = time.time()
    if action == "ack":
        done = outbox.ack(chosen, now)
        return [f"acknowledged {done} trigger(s); they will not be sent"]
    sendable = [e for e in chosen if e.readable and e.webhook in configured]
    for e in chosen:
        if not e.readable:
            lines.append(f"{e.webhook} {e.event_id}: unreadable, cannot be sent; ack it")
        elif e.webhook not in configured:
            lines.append(f"{e.webhook} {e.event_id}: webhook no longer configured; ack it")
    done = outbox.retry(sendable, now)
    lines.append(f"queued {done} trigger(s) again; the running daemon sends them within seconds")
    return lines
