"""A bounded store that joins predictions and their delayed labels by id, in either order.

One :class:`JoinStore` serves one model, so ``(model, id)`` pairs map to one store and one
id. Predictions wait for their label and labels wait for their prediction the same way.

Semantics (event time throughout; ``D`` is ``max_delay_seconds``):

* The *watermark* ``W`` is the newest event time the store has seen on either stream;
  ``cutoff = W - D``. A call with ``advance=True`` (the default) moves it to the call's
  newest timestamp first. A batch that carries predictions *and* labels adds both with
  ``advance=False`` and then calls :meth:`JoinStore.advance`: the watermark never outruns
  rows of the same batch still to be joined, so a block spanning more than ``D`` (a
  backtest file, a daemon catching up on history) joins what a row-by-row pass in event
  time would join.
* Rows are taken in order. A row whose id is already waiting on its own side, or was
  joined recently, is a duplicate: the first one wins and the row is counted
  (``duplicate_labels`` / ``duplicate_predictions``) and dropped.
* A row joins the waiting partner with its id when ``|label_ts - prediction_ts| <= D``.
  So every joined pair is at most ``D`` apart, and its label delay
  (``label_ts - prediction_ts``, negative when the label came first in event time) is
  exported as it is. A partner more than ``D`` older is evicted as ``expired``.
* A row that does not join waits, unless it is already older than the cutoff: then it is
  counted as ``expired`` at once.
* After the rows, everything older than the cutoff is evicted as ``expired``, and a side
  holding more than ``max_pending`` entries, or more than ``max_pending_bytes`` of memory
  (estimated), evicts its oldest (by event time, ties in arrival order) as ``capacity``.
* Joined ids are remembered under the same two limits so that a late duplicate label is
  recognised; once forgotten, a repeat label waits as a new one (and expires unmatched).
* Rows without an id cannot join; they are counted in ``missing_ids``.

With the advance at the end of a batch, a stream in event-time order joins every pair at
most ``D`` apart whatever the batching: a row of a later batch is no older than the
watermark, so nothing it could join has expired. Out of order, a batch joins at least what
a row-by-row pass would. The bound on joined pairs holds whatever the batching.

The entries waiting on each side live in :class:`~monitor.performance.pending.PendingEntries`.
Memory per pending prediction is measured in ``benchmarks/bench_performance.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import repeat
from typing import Any

import numpy as np

from monitor.errors import CheckpointError
from monitor.performance.packed import pack_strings, unpack_strings
from monitor.performance.pending import PendingEntries

__all__ = ["EvictionReason", "JoinLimits", "JoinStore", "JoinedRows"]

_STATE_VERSION = 1


class EvictionReason(StrEnum):
    """Why a waiting prediction or label left the store without a partner."""

    CAPACITY = "capacity"
    EXPIRED = "expired"


@dataclass(frozen=True)
class JoinLimits:
    """The ``join:`` section of a model's ``performance`` configuration."""

    max_delay_seconds: float = 604_800.0
    max_pending: int = 2_000_000
    #: The same bound in memory (estimated by ``PendingEntries.held_bytes``): long ids
    #: fill memory long before the count does.
    max_pending_bytes: int = 512 * 1024 * 1024

    def __post_init__(self) -> None:
        if not self.max_delay_seconds > 0:
            raise ValueError("max_delay_seconds must be > 0")
        if self.max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        if self.max_pending_bytes < 1:
            raise ValueError("max_pending_bytes must be >= 1")


@dataclass(frozen=True)
class JoinedRows:
    """Rows joined by one batch, in the batch's row order.

    ``predictions`` is ``(n,)`` for width 1, else ``(n, width)``; ``delay_seconds`` is
    ``label_ts - prediction_ts``.
    """

    predictions: np.ndarray
    labels: np.ndarray
    delay_seconds: np.ndarray
    prediction_ts: np.ndarray
    label_ts: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


# (arrived values, arrived ts, waited values, waited ts) of the joined rows of one batch
_Rows = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class JoinStore:
    """Pairs one model's predictions with labels by id, bounded in count and event time.

    ``width`` is the prediction width: 1 for a score, value or class index, ``k`` for
    probability rows. Labels are float64 (0/1, class index or a target value).

    >>> import numpy as np
    >>> store = JoinStore(JoinLimits(max_delay_seconds=60, max_pending=100))
    >>> _ = store.add_predictions(["a", "b"], np.array([0.9, 0.2]), np.array([0.0, 1.0]))
    >>> rows = store.add_labels(["b", "c"], np.array([0.0, 1.0]), np.array([31.0, 32.0]))
    >>> rows.predictions.tolist(), rows.labels.tolist(), rows.delay_seconds.tolist()
    ([0.2], [0.0], [30.0])
    >>> store.pending_predictions, store.pending_labels
    (1, 1)
    >>> rows = store.add_predictions(["c"], np.array([0.7]), np.array([200.0]))
    >>> len(rows), store.pending_predictions, store.evicted_labels["expired"]
    (0, 1, 1)
    """

    def __init__(self, limits: JoinLimits | None = None, width: int = 1) -> None:
        if width < 1:
            raise ValueError("prediction width must be >= 1")
        self.limits = limits or JoinLimits()
        self.width = width
        self._preds = PendingEntries(width)
        self._labels = PendingEntries(1)
        self._joined = PendingEntries(0)
        self.watermark = -math.inf
        self._horizon = -math.inf  # newest event time added since the last advance
        self.predictions_total = 0
        self.labels_total = 0
        self.joined_total = 0
        self.duplicate_predictions = 0
        self.duplicate_labels = 0
        self.missing_ids = 0
        self.evicted_predictions: dict[str, int] = dict.fromkeys(EvictionReason, 0)
        self.evicted_labels: dict[str, int] = dict.fromkeys(EvictionReason, 0)

    # -- read-only views -------------------------------------------------------------

    @property
    def pending_predictions(self) -> int:
        return len(self._preds)

    @property
    def pending_labels(self) -> int:
        return len(self._labels)

    @property
    def remembered_joined(self) -> int:
        """Joined ids kept to recognise late duplicate labels."""
        return len(self._joined)

    @property
    def evicted(self) -> dict[str, int]:
        """Evictions of both sides by reason (``driftmon_join_evicted_total``)."""
        return {r: self.evicted_predictions[r] + self.evicted_labels[r] for r in EvictionReason}

    def nbytes(self) -> int:
        """Bytes held in numpy arrays (the dicts and id strings come on top)."""
        return self._preds.nbytes() + self._labels.nbytes() + self._joined.nbytes()

    # -- ingest ----------------------------------------------------------------------

    def add_predictions(
        self, ids: Sequence[str | None], values: np.ndarray, ts: np.ndarray, *, advance: bool = True
    ) -> JoinedRows:
        """Add a batch of predictions; return the rows it completed (their labels waited).

        ``values`` is ``(n,)`` for width 1 or ``(n, width)``; ``ts`` is event time.
        ``advance=False`` leaves the watermark and expiry to :meth:`advance`.
        """
        vals = np.asarray(values, dtype=np.float64).reshape(len(ids), self.width)
        self.predictions_total += len(ids)
        ts = np.asarray(ts, dtype=np.float64)
        return self._arrive(ids, vals, ts, label_side=False, advance=advance)

    def add_labels(
        self, ids: Sequence[str | None], labels: np.ndarray, ts: np.ndarray, *, advance: bool = True
    ) -> JoinedRows:
        """Add a batch of labels; return the rows it completed (their predictions waited)."""
        vals = np.asarray(labels, dtype=np.float64).reshape(len(ids), 1)
        self.labels_total += len(ids)
        ts = np.asarray(ts, dtype=np.float64)
        return self._arrive(ids, vals, ts, label_side=True, advance=advance)

    def advance(self) -> None:
        """Move the watermark to the newest event time added so far and expire what is
        more than ``D`` older (the end of a batch added with ``advance=False``)."""
        if self._horizon > self.watermark:
            self.watermark = self._horizon
        cutoff = self.watermark - self.limits.max_delay_seconds
        self.evicted_predictions[EvictionReason.EXPIRED] += self._preds.expire(cutoff)
        self.evicted_labels[EvictionReason.EXPIRED] += self._labels.expire(cutoff)
        self._joined.expire(cutoff)

    def _arrive(
        self,
        ids: Sequence[str | None],
        vals: np.ndarray,
        ts: np.ndarray,
        *,
        label_side: bool,
        advance: bool,
    ) -> JoinedRows:
        if len(ids) != ts.shape[0]:
            raise ValueError("ids, values and ts must have the same length")
        keys: list[str]
        if None in ids:
            keep = np.array([i is not None for i in ids], dtype=bool)
            self.missing_ids += int((~keep).sum())
            keys = [i for i in ids if i is not None]
            vals, ts = vals[keep], ts[keep]
        else:
            keys = ids  # type: ignore[assignment]
        if keys:
            self._horizon = max(self._horizon, float(ts.max()))
            if advance:
                self.watermark = max(self.watermark, self._horizon)
        own, partner = (self._labels, self._preds) if label_side else (self._preds, self._labels)
        cutoff = self.watermark - self.limits.max_delay_seconds
        if (
            len(set(keys)) == len(keys)
            and not any(map(own.index.__contains__, keys))
            and not any(map(self._joined.index.__contains__, keys))
        ):
            rows, expired = self._arrive_unique(keys, vals, ts, own, partner, cutoff)
        else:
            rows, expired = self._arrive_sequential(keys, vals, ts, own, partner, cutoff)
        own_evicted = self.evicted_labels if label_side else self.evicted_predictions
        partner_evicted = self.evicted_predictions if label_side else self.evicted_labels
        own_evicted[EvictionReason.EXPIRED] += expired[0]
        partner_evicted[EvictionReason.EXPIRED] += expired[1]
        if advance:
            self.advance()
        own_evicted[EvictionReason.CAPACITY] += _bound(own, self.limits)
        _bound(self._joined, self.limits)
        return self._rows(rows, label_side=label_side)

    def _arrive_unique(
        self,
        keys: list[str],
        vals: np.ndarray,
        ts: np.ndarray,
        own: PendingEntries,
        partner: PendingEntries,
        cutoff: float,
    ) -> tuple[_Rows, tuple[int, int]]:
        """Every row independent (unique ids, none waiting on its own side or joined)."""
        delay = self.limits.max_delay_seconds
        slot = np.fromiter(map(partner.index.get, keys, repeat(-1)), np.int64, len(keys))
        hit = np.flatnonzero(slot >= 0)
        join_rows = np.empty(0, np.int64)
        partner_expired = 0
        if hit.shape[0]:
            pts = partner.ts_of(slot[hit])
            close = np.abs(ts[hit] - pts) <= delay
            join_rows = hit[close]
            stale = hit[~close & (pts < ts[hit])]
            if stale.shape[0]:
                partner.remove(slot[stale], [keys[r] for r in stale.tolist()])
                partner_expired = int(stale.shape[0])
        joined_keys = [keys[r] for r in join_rows.tolist()]
        p_ts, p_val = partner.remove(slot[join_rows], joined_keys)
        rest = np.ones(len(keys), dtype=bool)
        rest[join_rows] = False
        fresh = rest & (ts >= cutoff)
        own_expired = int((rest & ~fresh).sum())
        fresh_rows = np.flatnonzero(fresh)
        own.insert([keys[r] for r in fresh_rows.tolist()], ts[fresh_rows], vals[fresh_rows])
        a_ts = ts[join_rows]
        self._joined.insert(joined_keys, np.maximum(a_ts, p_ts), np.empty((len(joined_keys), 0)))
        return (vals[join_rows], a_ts, p_val, p_ts), (own_expired, partner_expired)

    def _arrive_sequential(
        self,
        keys: list[str],
        vals: np.ndarray,
        ts: np.ndarray,
        own: PendingEntries,
        partner: PendingEntries,
        cutoff: float,
    ) -> tuple[_Rows, tuple[int, int]]:
        """Row by row: duplicates inside the batch or against waiting and joined ids."""
        delay = self.limits.max_delay_seconds
        label_side = own is self._labels
        joined = self._joined
        taken: set[str] = set()  # ids this batch inserted or joined
        join_rows: list[int] = []
        join_slots: list[int] = []
        fresh_rows: list[int] = []
        own_expired = partner_expired = duplicates = 0
        pindex = partner.index
        for r, key in enumerate(keys):
            if key in taken or key in own.index or key in joined.index:
                duplicates += 1
                continue
            t = float(ts[r])
            s = pindex.get(key)
            if s is not None:
                pt = float(partner.ts_of(np.array([s]))[0])
                if abs(t - pt) <= delay:
                    join_rows.append(r)
                    join_slots.append(s)
                    taken.add(key)
                    continue
                if pt < t:
                    partner.remove(np.array([s]), [key])
                    partner_expired += 1
            if t < cutoff:
                own_expired += 1
            else:
                fresh_rows.append(r)
                taken.add(key)
        if label_side:
            self.duplicate_labels += duplicates
        else:
            self.duplicate_predictions += duplicates
        jr = np.array(join_rows, dtype=np.int64)
        js = np.array(join_slots, dtype=np.int64)
        joined_keys = [keys[r] for r in join_rows]
        p_ts, p_val = partner.remove(js, joined_keys)
        fr = np.array(fresh_rows, dtype=np.int64)
        own.insert([keys[r] for r in fresh_rows], ts[fr], vals[fr])
        a_ts = ts[jr]
        joined.insert(joined_keys, np.maximum(a_ts, p_ts), np.empty((len(joined_keys), 0)))
        return (vals[jr], a_ts, p_val, p_ts), (own_expired, partner_expired)

    def _rows(self, rows: _Rows, *, label_side: bool) -> JoinedRows:
        arrived, arrived_ts, waited, waited_ts = rows
        if label_side:
            pred, pred_ts, label, label_ts = waited, waited_ts, arrived, arrived_ts
        else:
            pred, pred_ts, label, label_ts = arrived, arrived_ts, waited, waited_ts
        self.joined_total += int(label.shape[0])
        return JoinedRows(
            predictions=pred[:, 0].copy() if self.width == 1 else pred.copy(),
            labels=label[:, 0].copy(),
            delay_seconds=label_ts - pred_ts,
            prediction_ts=pred_ts.copy(),
            label_ts=label_ts.copy(),
        )

    # -- checkpoints -----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Numpy arrays (numbers and unicode ids, no objects) and plain scalars."""
        state: dict[str, Any] = {"version": _STATE_VERSION, "width": self.width}
        for name, side in (
            ("pred", self._preds),
            ("label", self._labels),
            ("joined", self._joined),
        ):
            ids, ts, values = side.live()
            # Variable length (UTF-8 bytes + offsets): a fixed-width unicode array costs
            # 4 bytes x the longest id for every entry, so one long id blew it up.
            state[f"{name}_id_bytes"], state[f"{name}_id_offsets"] = pack_strings(ids)
            state[f"{name}_ts"] = ts
            state[f"{name}_values"] = values
        # a batch is always advanced before a checkpoint; the max only guards a stray one
        state["watermark"] = max(self.watermark, self._horizon)
        for key in (
            "predictions_total",
            "labels_total",
            "joined_total",
            "duplicate_predictions",
            "duplicate_labels",
            "missing_ids",
        ):
            state[key] = int(getattr(self, key))
        for reason in EvictionReason:
            state[f"evicted_predictions_{reason}"] = self.evicted_predictions[reason]
            state[f"evicted_labels_{reason}"] = self.evicted_labels[reason]
        return state

    @classmethod
    def from_state_dict(cls, limits: JoinLimits, state: Mapping[str, Any]) -> JoinStore:
        """Rebuild a store. Limits come from the running config: a smaller ``max_pending``
        or ``max_delay_seconds`` evicts at the next batch. Raises ``CheckpointError``."""
        try:
            if int(state["version"]) != _STATE_VERSION:
                raise CheckpointError(f"join store state version {state['version']} unknown")
            store = cls(limits, int(state["width"]))
            for name, side, width in (
                ("pred", store._preds, store.width),
                ("label", store._labels, 1),
                ("joined", store._joined, 0),
            ):
                if f"{name}_ids" in state:  # written before ids were packed
                    ids = [str(i) for i in np.asarray(state[f"{name}_ids"]).tolist()]
                else:
                    ids = unpack_strings(state[f"{name}_id_bytes"], state[f"{name}_id_offsets"])
                ts = np.asarray(state[f"{name}_ts"], dtype=np.float64)
                values = np.asarray(state[f"{name}_values"], dtype=np.float64)
                if ts.shape != (len(ids),) or values.shape != (len(ids), width):
                    raise CheckpointError(f"join store state {name!r} has inconsistent shapes")
                side.insert(ids, ts, values)
            store.watermark = store._horizon = float(state["watermark"])
            for key in (
                "predictions_total",
                "labels_total",
                "joined_total",
                "duplicate_predictions",
                "duplicate_labels",
                "missing_ids",
            ):
                setattr(store, key, int(state[key]))
            for reason in EvictionReason:
                store.evicted_predictions[reason] = int(state[f"evicted_predictions_{reason}"])
                store.evicted_labels[reason] = int(state[f"evicted_labels_{reason}"])
        except (KeyError, TypeError, ValueError, IndexError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"join store state is incomplete: {exc}") from exc
        return store


def _bound(side: PendingEntries, limits: JoinLimits) -> int:
    """Evict the oldest entries past ``max_pending`` or ``max_pending_bytes``."""
    evicted = 0
    if len(side) > limits.max_pending:
        evicted += side.evict_oldest(len(side) - limits.max_pending)
    while len(side) and side.held_bytes() > limits.max_pending_bytes:
        excess = side.held_bytes() - limits.max_pending_bytes
        per_entry = side.held_bytes() / len(side)
        evicted += side.evict_oldest(max(1, math.ceil(excess / per_entry)))
    return evicted
