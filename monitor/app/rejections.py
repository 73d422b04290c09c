"""Rejected events, told to a person: rate-limited log lines and a per-run summary.

Every rejected event is already counted (``driftmon_invalid_events_total{reason}``); this
module says which one and why. :class:`RejectionLog` writes one WARNING line per rejected
event with its reason, detail and source (``topic/partition/offset`` in the daemon,
``file:line`` in ``replay`` and ``baseline``), at most ``limit`` lines per reason per
``interval_seconds``; the next line after a quiet period carries ``suppressed=N``. Past
the budget a batch's remaining rejections are counted in bulk, so a flood of bad messages
costs one dictionary update per reason, and a batch without rejections costs nothing.

:class:`RejectionSummary` collects counts per reason and the first few examples of each
for the end-of-run report of ``replay`` and ``baseline``::

    >>> summary = RejectionSummary("events.jsonl")
    >>> summary.add("bad_timestamp", 17, "ts '2026-11-26T10:00:00' has no UTC offset")
    >>> summary.add("not_json", 20, "")
    >>> summary.total, summary.counts
    (2, {'bad_timestamp': 1, 'not_json': 1})
    >>> print("\\n".join(summary.report()))
    rejected 2 event(s): bad_timestamp 1, not_json 1
      events.jsonl:17 bad_timestamp: ts '2026-11-26T10:00:00' has no UTC offset
      events.jsonl:20 not_json
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from monitor.ingest.decode import Rejection
from monitor.log import RateLimitedLogger

logger = logging.getLogger(__name__)

#: Examples kept per reason for the summary.
EXAMPLES_PER_REASON = 3


class RejectionLog:
    """Rate-limited WARNING lines for rejected events (see the module docstring)."""

    def __init__(
        self,
        log: logging.Logger = logger,
        limit: int = 5,
        interval_seconds: float = 60.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._log = log
        if clock is None:
            self._limited = RateLimitedLogger(log, limit, interval_seconds)
        else:
            self._limited = RateLimitedLogger(log, limit, interval_seconds, clock)

    def log(self, rejections: Sequence[Rejection], source: Callable[[Rejection], str]) -> None:
        """Log ``rejections`` within the budget; ``source(rejection)`` names where each
        came from and is only called for the lines written."""
        if not rejections or not self._log.isEnabledFor(logging.WARNING):
            return
        over: dict[str, int] = {}  # reasons past their budget in this batch -> lines skipped
        limited = self._limited
        for rejection in rejections:
            reason = str(rejection.reason)
            if reason in over:
                over[reason] += 1
                continue
            suppressed = limited.allow(reason)
            if suppressed is None:  # that refusal was counted by the limiter itself
                over[reason] = 0
                continue
            fields: dict[str, object] = {
                "reason": reason,
                "detail": rejection.detail,
                "source": source(rejection),
            }
            if rejection.position is not None:
                fields["position"] = rejection.position
            if suppressed:
                fields["suppressed"] = suppressed
            self._log.warning("event rejected", extra=fields)
        for reason, skipped in over.items():
            limited.suppress(reason, skipped)


@dataclass
class RejectionSummary:
    """Counts per reason and the first examples of each, for one input file."""

    path: str
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Every rejected event."""
        return sum(self.counts.values())

    def add(self, reason: str, line: int, detail: str) -> None:
        """One rejected event at (1-based) ``line`` of the file."""
        self.counts[reason] = self.counts.get(reason, 0) + 1
        kept = self.examples.setdefault(reason, [])
        if len(kept) < EXAMPLES_PER_REASON:
            kept.append((line, detail))

    def why(self) -> str:
        """The counts as one phrase: ``bad_timestamp 3, not_json 1``."""
        return ", ".join(f"{r} {n}" for r, n in sorted(self.counts.items(), key=_most_first))

    def first_example(self) -> str:
        """The earliest example kept, as ``file:line reason: detail``."""
        found = [(line, r, d) for r, kept in self.examples.items() for line, d in kept]
        if not found:
            return ""
        line, reason, detail = min(found)
        return self._example(reason, line, detail)

    def report(self) -> list[str]:
        """Lines for the end of a run: the counts, then each reason's first examples."""
        if not self.counts:
            return []
        lines = [f"rejected {self.total} event(s): {self.why()}"]
        for reason, _ in sorted(self.counts.items(), key=_most_first):
            lines += [f"  {self._example(reason, ln, d)}" for ln, d in self.examples[reason]]
        return lines

    def _example(self, reason: str, line: int, detail: str) -> str:
        return f"{self.path}:{line} {reason}" + (f": {detail}" if detail else "")


def _most_first(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]
