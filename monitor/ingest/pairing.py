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

Keys arrive as :class:`~monitor.ingest.decode.coded.Coded` columns (a request's id once,
plus each row's number): a batch's halves are matched, deduplicated and checked against the
waiting ones with numpy on integer keys, and ``<key>:<row>`` strings are built only for
the rows that wait or whose request id is already waiting. Feature values wait as float
rows; category strings, row ids and versions wait in a dict beside them (category codes
are applied after pairing, so a reference captured while halves wait does not change what
they hold).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from monitor.errors import CheckpointError
from monitor.ingest.decode import coded
from monitor.ingest.decode.coded import Coded, Values
from monitor.ingest.decode.columns import REQUEST, RESPONSE, ModelColumns
from monitor.performance.pending import Evicted, PendingEntries

__all__ = ["PairLimits", "PairReason", "Pairing"]

_STATE_VERSION = 1
# row id, version, category strings, request key (the key without its row) of a waiting half
_Extra = tuple[str | None, str | None, tuple[str | None, ...], str]


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
    """One half's waiting entries, their strings, and how many wait per request key."""

    entries: PendingEntries
    extras: dict[str, _Extra]
    bases: dict[str, int]

    def insert(
        self, keys: list[str], ts: np.ndarray, values: np.ndarray, extras: list[_Extra]
    ) -> None:
        self.entries.insert(keys, ts, values)
        self.extras.update(zip(keys, extras, strict=True))
        bases = self.bases
        for e in extras:
            bases[e[3]] = bases.get(e[3], 0) + 1

    def _gone(self, extras: list[_Extra]) -> list[_Extra]:
        bases = self.bases
        for e in extras:
            left = bases[e[3]] - 1
            if left:
                bases[e[3]] = left
            else:
                del bases[e[3]]
        return extras

    def take(self, keys: list[str]) -> tuple[np.ndarray, np.ndarray, list[_Extra]]:
        slots = np.fromiter(map(self.entries.index.__getitem__, keys), np.int64, len(keys))
        ts, values = self.entries.remove(slots, keys)
        return ts, values, self._gone([self.extras.pop(k) for k in keys])

    def evicted(self, taken: list[Evicted]) -> tuple[np.ndarray, np.ndarray, list[_Extra]]:
        keys = [k for ids, _, _ in taken for k in ids]
        ts = np.concatenate([t for _, t, _ in taken])
        values = np.concatenate([v for _, _, v in taken])
        return ts, values, self._gone([self.extras.pop(k) for k in keys])

    def waiting(self, keys: Coded, rows: np.ndarray) -> np.ndarray:
        """Which of ``rows`` have their key waiting here: strings are built only for rows
        whose request key is (per table entry, not per row)."""
        found = np.zeros(rows.shape[0], dtype=bool)
        if not self.bases or not rows.shape[0]:
            return found
        bases = self.bases
        maybe = np.fromiter((k in bases for k in keys.table), bool, len(keys.table))
        ask = np.flatnonzero(maybe[keys.at[rows]])
        if ask.shape[0]:
            index = self.entries.index
            strings = coded.take(keys, rows[ask]).tolist()
            found[ask] = np.fromiter(map(index.__contains__, strings), bool, ask.shape[0])
        return found


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
            REQUEST: _Side(PendingEntries(numeric_width), {}, {}),
            RESPONSE: _Side(PendingEntries(numeric_width), {}, {}),
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

        Halves of one batch meet each other first (integer keys, column operations),
        then the waiting halves; only what is left waits, as rows of numbers plus a tuple
        of its strings.
        """
        halves = cols.halves
        if halves is None or cols.rows == 0:
            return cols
        keys = Coded.of(cols.pair_keys if cols.pair_keys is not None else [None] * cols.rows)
        ints = _int_keys(keys)
        delay = self.limits.max_delay_seconds
        last_msg = int(cols.msg_index[-1])
        # Halves more than the delay older than all of this batch can pair with none of it.
        out = self._release(float(cols.ts.min()) - delay, last_msg)
        alone = [np.flatnonzero(halves == 0)]
        rows = {}
        for half in (REQUEST, RESPONSE):
            found = np.flatnonzero(halves == half)
            keyed = ints[found] >= 0
            if not keyed.all():
                self._count(half, PairReason.NO_ID, int((~keyed).sum()))
                if half == REQUEST:  # monitored with its features alone
                    alone.append(found[~keyed])
                found = found[keyed]
            rows[half] = self._first_of_each(half, found, ints, keys)
        req, resp = rows[REQUEST], rows[RESPONSE]
        # 1. both halves in this batch: a sorted join on the integer keys
        partner = np.full(req.shape[0], -1, np.int64)
        if req.shape[0] and resp.shape[0]:
            order = np.argsort(ints[resp], kind="stable")
            sorted_keys = ints[resp][order]
            at = np.minimum(np.searchsorted(sorted_keys, ints[req]), sorted_keys.shape[0] - 1)
            hit = sorted_keys[at] == ints[req]
            partner[hit] = resp[order[at[hit]]]
        met = partner >= 0
        if met.any():
            base = _rows(cols, req[met])
            out.append(self._with_prediction(base, *self._batch_prediction(cols, partner[met])))
            self.paired_total += int(met.sum())
            matched = np.zeros(cols.rows, dtype=bool)
            matched[partner[met]] = True
            resp, req = resp[~matched[resp]], req[~met]
        # 2. a half of this batch and a waiting one; 3. the rest waits
        out += self._with_waiting(REQUEST, req, keys, cols)
        out += self._with_waiting(RESPONSE, resp, keys, cols)
        whole = np.sort(np.concatenate(alone))
        if whole.shape[0]:
            out.insert(0, _whole(cols.take(whole)))
        self.watermark = max(self.watermark, float(cols.ts.max()))
        out += self._release(self.watermark - delay, last_msg)
        return _concat(out, cols)

    def _count(self, half: int, reason: PairReason, n: int) -> None:
        if n:
            self.unpaired[(HALF_NAMES[half], reason)] += n

    def _first_of_each(
        self, half: int, rows: np.ndarray, ints: np.ndarray, keys: Coded
    ) -> np.ndarray:
        """Rows whose key is neither waiting on the same side nor repeated in the batch
        (the first of a repeated key wins)."""
        _, first = np.unique(ints[rows], return_index=True)
        kept = rows if first.shape[0] == rows.shape[0] else rows[np.sort(first)]
        waiting = self._sides[half].waiting(keys, kept)
        if waiting.any():
            kept = kept[~waiting]
        self._count(half, PairReason.DUPLICATE, int(rows.shape[0] - kept.shape[0]))
        return kept

    def _batch_prediction(
        self, cols: ModelColumns, rows: np.ndarray
    ) -> tuple[np.ndarray, Values | None, Values]:
        """The prediction columns of batch rows: numbers, labels, versions."""
        labels = coded.take(cols.categorical[-1], rows) if self.categorical_prediction else None
        return cols.numeric[rows], labels, coded.take(cols.versions, rows)

    def _with_prediction(
        self,
        base: ModelColumns,
        numeric: np.ndarray,
        labels: Values | None,
        versions: Values,
    ) -> ModelColumns:
        """Request rows with the prediction of their responses (same order)."""
        merged = base.numeric.copy()
        merged[:, self.prediction_at :] = numeric[:, self.prediction_at :]
        categorical = base.categorical
        if labels is not None:
            categorical = [*categorical[:-1], labels]
        own = _either(base.versions, versions)
        return ModelColumns(merged, categorical, base.ts, base.ids, base.msg_index, 0, own)

    def _with_waiting(
        self, half: int, rows: np.ndarray, keys: Coded, cols: ModelColumns
    ) -> list[ModelColumns]:
        """Rows of one half meet the other side's waiting halves; the rest wait."""
        if not rows.shape[0]:
            return []
        other = self._sides[RESPONSE if half == REQUEST else REQUEST]
        found = other.waiting(keys, rows)
        waiting = rows[~found]
        if waiting.shape[0]:
            cats = list(zip(*(coded.take(c, waiting) for c in cols.categorical), strict=True))
            key_strings = coded.take(keys, waiting).tolist()
            # the ids are the keys (oip): one string serves both
            ids = key_strings if _same(cols.ids, keys) else coded.take(cols.ids, waiting)
            self._sides[half].insert(
                key_strings,
                cols.ts[waiting],
                cols.numeric[waiting],
                list(zip(ids, coded.take(cols.versions, waiting),
                         cats or [()] * waiting.shape[0], keys.values()[waiting].tolist(),
                         strict=True)),
            )  # fmt: skip
        if not found.any():
            return []
        hits = rows[found]
        ts, values, extras = other.take(coded.take(keys, hits).tolist())
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
                [*side.extras[k][:2], list(side.extras[k][2]), side.extras[k][3]] for k in keys
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
                extras = [
                    (e[0], e[1], tuple(e[2]), e[3] if len(e) > 3 else _request_key(k))
                    for e, k in zip(state[f"{name}_extras"], keys, strict=False)
                ]
                if (
                    ts.shape != (len(keys),)
                    or values.shape != (len(keys), self.width)
                    or len(extras) != len(keys)
                ):
                    raise CheckpointError(f"pairing state {name!r} has inconsistent shapes")
                side.entries = PendingEntries(self.width)
                side.extras, side.bases = {}, {}
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


def _int_keys(keys: Coded) -> np.ndarray:
    """Per row an int64 equal for equal keys within the batch (-1: no key): the request
    key's number among the batch's distinct ones, and the row number."""
    known: dict[str, int] = {}
    table = np.fromiter(
        (-1 if k is None else known.setdefault(k, len(known)) for k in keys.table),
        np.int64,
        len(keys.table),
    )
    base = np.append(table, -1)[keys.at]
    row = keys.suffix + 1 if keys.suffix is not None else np.zeros(base.shape[0], np.int64)
    return np.where(base >= 0, (base << 32) | row, -1)


def _same(ids: Values, keys: Coded) -> bool:
    """Whether the row ids are the pairing keys (no per-row comparison)."""
    if ids is keys:
        return True
    if not isinstance(ids, Coded) or ids.table != keys.table:
        return False
    if (ids.suffix is None) != (keys.suffix is None):
        return False
    suffix_same = ids.suffix is None or np.array_equal(ids.suffix, keys.suffix)  # type: ignore[arg-type]
    return suffix_same and np.array_equal(ids.at, keys.at)


def _either(first: Values, second: Values) -> Values:
    """Per row the first value, else (``None``) the second."""
    a, b = Coded.of(first), Coded.of(second)
    if a.suffix is not None or b.suffix is not None:
        return [x if x is not None else y for x, y in zip(a, b, strict=True)]
    empty = np.fromiter((v is None for v in a.table), bool, len(a.table))
    missing = np.append(empty, True)[a.at]
    if not missing.any():
        return first
    at = np.where(missing, np.where(b.at >= 0, b.at + len(a.table), -1), a.at)
    return Coded(a.table + b.table, at)


def _request_key(key: str) -> str:
    """The request key of a row key ``<key>:<row>`` (state written before keys were kept)."""
    head, _, row = key.rpartition(":")
    return head if head and row.isdigit() else key


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
