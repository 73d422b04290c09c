"""Requests and responses logged as separate messages, joined by id before the windows.

One :class:`Pairing` per model holds the halves waiting for their other half, bounded in
count (``max_pending`` per side) and event time (``max_delay_seconds`` behind the newest
event time seen, the watermark), in the label join's store
(:class:`~monitor.performance.pending.PendingEntries`). A batch's halves first meet the
waiting ones, then each other; what is left waits. A request whose response does not come
in time is still monitored, with its features alone (its prediction missing); a response
without its request is dropped. Both are counted by reason (:class:`PairReason`), and so
are duplicates (the first half with a key wins) and halves without a key (a request is
then monitored at once, a response dropped). The waiting halves are in the model's
checkpoint (:meth:`Pairing.state_dict`), so a restart loses no pair and counts none twice.

Feature values wait as float rows; category strings, row ids and versions wait in a dict
beside them (category codes are applied after pairing, so a reference captured while
halves wait does not change what they hold).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import compress, repeat
from typing import Any

import numpy as np

from monitor.errors import CheckpointError
from monitor.ingest.decode.columns import REQUEST, RESPONSE, ModelColumns
from monitor.performance.pending import Evicted, PendingEntries

__all__ = ["PairLimits", "PairReason", "Pairing"]

_STATE_VERSION = 1
# row id, version, category strings of a waiting half
_Extra = tuple[str | None, str | None, tuple[str | None, ...]]


class PairReason(StrEnum):
    """Why a half left the store without its other half (``driftmon_pairing_unpaired_total``)."""

    EXPIRED = "expired"
    CAPACITY = "capacity"
    DUPLICATE = "duplicate"
    NO_ID = "no_id"


HALF_NAMES = {REQUEST: "request", RESPONSE: "response"}


@dataclass(frozen=True)
class PairLimits:
    """A topic's ``pairing:`` settings."""

    max_pending: int = 100_000
    max_delay_seconds: float = 60.0


@dataclass
class _Side:
    """One half's waiting entries and their strings."""

    entries: PendingEntries
    extras: dict[str, _Extra]

    def insert(
        self, keys: list[str], ts: np.ndarray, values: np.ndarray, extras: list[_Extra]
    ) -> None:
        self.entries.insert(keys, ts, values)
        self.extras.update(zip(keys, extras, strict=True))

    def take(self, keys: list[str]) -> tuple[np.ndarray, np.ndarray, list[_Extra]]:
        slots = np.fromiter(map(self.entries.index.__getitem__, keys), np.int64, len(keys))
        ts, values = self.entries.remove(slots, keys)
        return ts, values, [self.extras.pop(k) for k in keys]

    def evicted(self, taken: list[Evicted]) -> tuple[np.ndarray, np.ndarray, list[_Extra]]:
        keys = [k for ids, _, _ in taken for k in ids]
        ts = np.concatenate([t for _, t, _ in taken])
        values = np.concatenate([v for _, _, v in taken])
        return ts, values, [self.extras.pop(k) for k in keys]


class Pairing:
    """One model's waiting halves. ``prediction_at`` is the first numeric prediction
    column; ``categorical_prediction``: the last categorical column is the prediction."""

    def __init__(
        self,
        limits: PairLimits,
        numeric_width: int,
        prediction_at: int,
        categorical_prediction: bool,
    ) -> None:
        self.limits = limits
        self.width = numeric_width
        self.prediction_at = prediction_at
        self.categorical_prediction = categorical_prediction
        self._sides = {
            REQUEST: _Side(PendingEntries(numeric_width), {}),
            RESPONSE: _Side(PendingEntries(numeric_width), {}),
        }
        self.watermark = -math.inf
        self.paired_total = 0
        #: (half, reason) -> halves that left unpaired.
        self.unpaired: dict[tuple[str, str], int] = {
            (h, r): 0 for h in HALF_NAMES.values() for r in PairReason
        }

    @property
    def pending(self) -> dict[str, int]:
        """Halves waiting, per half."""
        return {HALF_NAMES[h]: len(s.entries) for h, s in self._sides.items()}

    def nbytes(self) -> int:
        """Bytes of the numpy arrays (the dicts and strings come on top)."""
        return sum(s.entries.nbytes() for s in self._sides.values())

    # -- a batch ---------------------------------------------------------------------

    def pair(self, cols: ModelColumns) -> ModelColumns:
        """The rows ready for the windows: whole rows, pairs completed, and requests
        released unpaired; the halves left wait. ``cols`` are uncoded (strings).

        Halves of one batch meet each other first (column operations, no per-row
        objects), then the waiting halves; only what is left waits, as rows of numbers
        plus a tuple of its strings.
        """
        halves = cols.halves
        if halves is None or cols.rows == 0:
            return cols
        keys = cols.pair_keys or [None] * cols.rows
        delay = self.limits.max_delay_seconds
        last_msg = int(cols.msg_index[-1])
        # Halves more than the delay older than all of this batch can pair with none of it.
        out = self._release(float(cols.ts.min()) - delay, last_msg)
        alone = [np.flatnonzero(halves == 0)]
        rows = {}
        for half in (REQUEST, RESPONSE):
            found = np.flatnonzero(halves == half)
            keyed = np.fromiter(
                map(_has_key, map(keys.__getitem__, found.tolist())), bool, len(found)
            )
            if not keyed.all():
                self._count(half, PairReason.NO_ID, int((~keyed).sum()))
                if half == REQUEST:  # monitored with its features alone
                    alone.append(found[~keyed])
                found = found[keyed]
            rows[half] = self._first_of_each(half, found, keys)
        req, resp = rows[REQUEST], rows[RESPONSE]
        req_keys = list(map(keys.__getitem__, req.tolist()))
        resp_keys = list(map(keys.__getitem__, resp.tolist()))
        # 1. both halves in this batch
        resp_at = dict(zip(resp_keys, resp.tolist(), strict=True))
        partner = np.fromiter(map(resp_at.get, req_keys, repeat(-1)), np.int64, len(req_keys))
        met = partner >= 0
        if met.any():
            base = _rows(cols, req[met])
            out.append(self._with_prediction(base, *self._batch_prediction(cols, partner[met])))
            self.paired_total += int(met.sum())
            matched = np.zeros(cols.rows, dtype=bool)
            matched[partner[met]] = True
            keep = ~matched[resp]
            resp, resp_keys = resp[keep], list(compress(resp_keys, keep.tolist()))
            req, req_keys = req[~met], list(compress(req_keys, (~met).tolist()))
        # 2. a half of this batch and a waiting one; 3. the rest waits
        out += self._with_waiting(REQUEST, req, req_keys, cols)
        out += self._with_waiting(RESPONSE, resp, resp_keys, cols)
        whole = np.sort(np.concatenate(alone))
        if whole.shape[0]:
            out.insert(0, _whole(cols.take(whole)))
        self.watermark = max(self.watermark, float(cols.ts.max()))
        out += self._release(self.watermark - delay, last_msg)
        return _concat(out, cols)

    def _count(self, half: int, reason: PairReason, n: int) -> None:
        if n:
            self.unpaired[(HALF_NAMES[half], reason)] += n

    def _first_of_each(self, half: int, rows: np.ndarray, keys: Sequence[str | None]) -> np.ndarray:
        """Rows whose key is neither waiting on the same side nor repeated in the batch."""
        own = self._sides[half].entries.index
        picked = list(map(keys.__getitem__, rows.tolist()))
        if len(set(picked)) == len(picked) and not any(map(own.__contains__, picked)):
            return rows
        seen: set[str | None] = set()
        kept = []
        for r, key in zip(rows.tolist(), picked, strict=True):
            if key in seen or key in own:
                continue
            seen.add(key)
            kept.append(r)
        self._count(half, PairReason.DUPLICATE, len(picked) - len(kept))
        return np.array(kept, dtype=np.int64)

    def _batch_prediction(
        self, cols: ModelColumns, rows: np.ndarray
    ) -> tuple[np.ndarray, list[str | None] | None, list[str | None]]:
        """The prediction columns of batch rows: numbers, labels, versions."""
        picked = rows.tolist()
        labels = [cols.categorical[-1][i] for i in picked] if self.categorical_prediction else None
        return cols.numeric[rows], labels, [cols.versions[i] for i in picked]

    def _with_prediction(
        self,
        base: ModelColumns,
        numeric: np.ndarray,
        labels: list[str | None] | None,
        versions: list[str | None],
    ) -> ModelColumns:
        """Request rows with the prediction of their responses (same order)."""
        merged = base.numeric.copy()
        merged[:, self.prediction_at :] = numeric[:, self.prediction_at :]
        categorical = base.categorical
        if labels is not None:
            categorical = [*categorical[:-1], labels]
        own = [v or r for v, r in zip(base.versions, versions, strict=True)]
        return ModelColumns(merged, categorical, base.ts, base.ids, base.msg_index, 0, own)

    def _with_waiting(
        self, half: int, rows: np.ndarray, row_keys: list[str | None], cols: ModelColumns
    ) -> list[ModelColumns]:
        """Rows of one half meet the other side's waiting halves; the rest wait."""
        if not rows.shape[0]:
            return []
        other = self._sides[RESPONSE if half == REQUEST else REQUEST]
        found = np.fromiter(map(other.entries.index.__contains__, row_keys), bool, len(row_keys))
        waiting = rows[~found]
        if waiting.shape[0]:
            picked = waiting.tolist()
            cats = list(zip(*([c[i] for i in picked] for c in cols.categorical), strict=True))
            self._sides[half].insert(
                list(compress(row_keys, (~found).tolist())),  # type: ignore[arg-type]
                cols.ts[waiting],
                cols.numeric[waiting],
                list(zip([cols.ids[i] for i in picked], [cols.versions[i] for i in picked],
                         cats or [()] * len(picked), strict=True)),
            )  # fmt: skip
        if not found.any():
            return []
        hits = rows[found]
        ts, values, extras = other.take(list(compress(row_keys, found.tolist())))  # type: ignore[arg-type]
        self.paired_total += int(hits.shape[0])
        msgs = cols.msg_index[hits]
        if half == REQUEST:  # the response waited
            labels = [e[2][-1] for e in extras] if self.categorical_prediction else None
            base = _rows(cols, hits)
            return [self._with_prediction(base, values, labels, [e[1] for e in extras])]
        waited = _columns(values, [e[2] for e in extras], ts, [e[0] for e in extras],
                          [e[1] for e in extras], msgs)  # fmt: skip
        return [self._with_prediction(waited, *self._batch_prediction(cols, hits))]

    def _release(self, cutoff: float, msg: int) -> list[ModelColumns]:
        """Expire halves older than ``cutoff`` and trim each side to ``max_pending``;
        released requests become rows of their own (features alone), counted as message
        ``msg`` of the batch."""
        out = []
        for half, side in self._sides.items():
            taken: list[Evicted] = []
            self._count(half, PairReason.EXPIRED, side.entries.expire(cutoff, taken))
            excess = len(side.entries) - self.limits.max_pending
            if excess > 0:
                self._count(half, PairReason.CAPACITY, side.entries.evict_oldest(excess, taken))
            if not taken:
                continue
            ts, values, extras = side.evicted(taken)
            if half == REQUEST:
                cats = [e[2] for e in extras]
                versions = [e[1] for e in extras]
                msgs = np.full(ts.shape[0], msg, np.int64)
                out.append(_columns(values, cats, ts, [e[0] for e in extras], versions, msgs))
        return out

    def drain(self, like: ModelColumns) -> ModelColumns:
        """Every waiting request as a row of its own (the end of a file); responses still
        waiting are dropped and counted as expired. ``like``: columns of the model."""
        out = self._release(math.inf, 0)
        return _concat(out, like)

    # -- checkpoints -----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Arrays of numbers and strings, and JSON lists for the strings beside them."""
        state: dict[str, Any] = {"version": _STATE_VERSION, "width": self.width}
        state["watermark"] = (
            str(self.watermark) if not math.isfinite(self.watermark) else self.watermark
        )
        state["paired_total"] = self.paired_total
        state["unpaired"] = [[h, r, n] for (h, r), n in self.unpaired.items()]
        for half, side in self._sides.items():
            name = HALF_NAMES[half]
            keys, ts, values = side.entries.live()
            state[f"{name}_keys"] = np.array(keys, dtype=np.str_)
            state[f"{name}_ts"] = ts
            state[f"{name}_values"] = values
            state[f"{name}_extras"] = [
                list(side.extras[k][:2]) + [list(side.extras[k][2])] for k in keys
            ]
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict`; ``CheckpointError`` if it does not fit."""
        try:
            if int(state["version"]) != _STATE_VERSION or int(state["width"]) != self.width:
                raise CheckpointError("pairing state was written for another model layout")
            for half, side in self._sides.items():
                name = HALF_NAMES[half]
                keys = [str(k) for k in np.asarray(state[f"{name}_keys"]).tolist()]
                ts = np.asarray(state[f"{name}_ts"], dtype=np.float64)
                values = np.asarray(state[f"{name}_values"], dtype=np.float64)
                extras = [(e[0], e[1], tuple(e[2])) for e in state[f"{name}_extras"]]
                if (
                    ts.shape != (len(keys),)
                    or values.shape != (len(keys), self.width)
                    or len(extras) != len(keys)
                ):
                    raise CheckpointError(f"pairing state {name!r} has inconsistent shapes")
                side.entries = PendingEntries(self.width)
                side.extras = {}
                side.insert(keys, ts, values, extras)
            self.watermark = float(state["watermark"])
            self.paired_total = int(state["paired_total"])
            for h, r, n in state["unpaired"]:
                self.unpaired[(str(h), str(r))] = int(n)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise CheckpointError(f"pairing state is incomplete: {exc}") from exc


def _rows(cols: ModelColumns, rows: np.ndarray) -> ModelColumns:
    """``cols.take(rows)``, as views when the rows are one run (a decoded group of
    requests usually is); the caller copies what it changes."""
    n = rows.shape[0]
    if n and int(rows[-1]) - int(rows[0]) == n - 1 and bool((np.diff(rows) == 1).all()):
        return cols.slice_rows(int(rows[0]), int(rows[-1]) + 1)
    return cols.take(rows)


def _has_key(key: str | None) -> bool:
    return key is not None


def _columns(
    numeric: np.ndarray,
    cats: list[tuple[str | None, ...]],
    ts: np.ndarray,
    ids: list[str | None],
    versions: list[str | None],
    msgs: np.ndarray,
) -> ModelColumns:
    width = len(cats[0]) if cats else 0
    categorical = [list(c) for c in zip(*cats, strict=True)] if width else []
    return ModelColumns(numeric, categorical, ts, ids, msgs, 0, versions)


def _whole(cols: ModelColumns) -> ModelColumns:
    return ModelColumns(
        cols.numeric, cols.categorical, cols.ts, cols.ids, cols.msg_index, 0, cols.versions
    )


def _concat(parts: list[ModelColumns], like: ModelColumns) -> ModelColumns:
    """The parts as one set of columns, carrying the batch's unknown-feature count."""
    if not parts:
        empty = ModelColumns(
            like.numeric[:0],
            [[] for _ in like.categorical],
            like.ts[:0],
            [],
            like.msg_index[:0],
            0,
            [],
        )
        parts = [empty]
    n_cat = len(like.categorical)
    fixed = [p if len(p.categorical) == n_cat else _with_width(p, n_cat) for p in parts]
    both = ModelColumns.concat(fixed)
    return ModelColumns(
        both.numeric,
        both.categorical,
        both.ts,
        both.ids,
        both.msg_index,
        like.unknown_features,
        both.versions,
    )


def _with_width(cols: ModelColumns, n_cat: int) -> ModelColumns:
    """Columns built from empty category tuples (a model without categoricals)."""
    return ModelColumns(
        cols.numeric,
        [[None] * cols.rows for _ in range(n_cat)],
        cols.ts,
        cols.ids,
        cols.msg_index,
        0,
        cols.versions,
    )
