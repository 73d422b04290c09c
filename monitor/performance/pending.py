"""The entries waiting on one side of the join, with eviction in event-time order.

One :class:`PendingEntries` holds one side of a :class:`~monitor.performance.join.JoinStore`
(waiting predictions, waiting labels, or the remembered joined ids).

Storage: per side, a dict ``id -> slot`` and preallocated arrays per slot (event time,
value row, a sequence number, the id), grown by doubling. The time order for eviction is
a heap of *chunks*: every inserted batch is one chunk of ``(ts, slot, seq)`` sorted by
event time, and the heap holds each chunk keyed by its oldest unconsumed entry. Expiry
pops chunks while their head is older than the cutoff and cuts each at the cutoff with a
binary search, so it costs O(expired + chunks touched x log chunks). A joined entry only
frees its slot; the chunk entry goes stale (its sequence number no longer matches) and is
skipped. When stale entries outnumber live ones, the chunks are merged into one.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["Evicted", "PendingEntries"]

#: Entries taken out by an eviction: ids, event times, value rows.
Evicted = tuple[list[str], np.ndarray, np.ndarray]

#: Bytes per live entry besides its value row and id characters: slot arrays, chunk
#: entries, the dict entry and the str object header (measured in bench_performance.py).
_ENTRY_OVERHEAD = 200


@dataclass
class _Chunk:
    """One inserted batch in event-time order; entries before ``head`` are consumed."""

    ts: np.ndarray  # sorted
    slots: np.ndarray
    seqs: np.ndarray
    head: int = 0


class PendingEntries:
    """Entries of one side: ``id -> slot`` plus slot arrays and the time-ordered chunks."""

    def __init__(self, width: int, capacity: int = 1024) -> None:
        self.width = width
        self.index: dict[str, int] = {}
        self._ts = np.empty(capacity)
        self._val = np.empty((capacity, width))
        self._seq = np.full(capacity, -1, np.int64)
        self._ids = np.empty(capacity, dtype=object)
        self._free = np.arange(capacity - 1, -1, -1, dtype=np.int64)  # a stack, top at the end
        self._nfree = capacity
        self._next_seq = 0
        self._heap: list[tuple[float, int]] = []
        self._chunks: dict[int, _Chunk] = {}
        self._chunk_no = 0
        self._entries = 0  # unconsumed chunk entries, live and stale
        #: Characters of the live ids, for the store's bound in bytes.
        self.id_chars = 0

    def __len__(self) -> int:
        return len(self.index)

    @property
    def capacity(self) -> int:
        return int(self._ts.shape[0])

    def held_bytes(self) -> int:
        """An upper estimate of the memory the live entries hold: per entry its slot
        arrays, dict entry and string object, plus the id's characters (at most 4 bytes
        each, as CPython stores them)."""
        return len(self.index) * (_ENTRY_OVERHEAD + 8 * self.width) + 4 * self.id_chars

    def nbytes(self) -> int:
        """Bytes of the numpy arrays (slots, chunks); excludes the dict and id strings."""
        arrays = self._ts.nbytes + self._val.nbytes + self._seq.nbytes
        arrays += self._ids.nbytes + self._free.nbytes
        for ch in self._chunks.values():
            arrays += ch.ts.nbytes + ch.slots.nbytes + ch.seqs.nbytes
        return int(arrays)

    def _grow(self, need: int) -> None:
        old = self.capacity
        cap = max(need, 2 * old)
        extra = cap - old
        self._ts = np.concatenate([self._ts, np.empty(extra)])
        self._val = np.concatenate([self._val, np.empty((extra, self.width))])
        self._seq = np.concatenate([self._seq, np.full(extra, -1, np.int64)])
        self._ids = np.concatenate([self._ids, np.empty(extra, dtype=object)])
        free = np.empty(cap, np.int64)  # room for every slot to be free at once
        free[:extra] = np.arange(cap - 1, old - 1, -1)
        free[extra : extra + self._nfree] = self._free[: self._nfree]
        self._free = free
        self._nfree += extra

    def ts_of(self, slots: np.ndarray) -> np.ndarray:
        ts: np.ndarray = self._ts[slots]
        return ts

    def insert(self, ids: Sequence[str], ts: np.ndarray, values: np.ndarray) -> None:
        m = len(ids)
        if m == 0:
            return
        if self._nfree < m:
            self._grow(len(self.index) + m)
        slots = self._free[self._nfree - m : self._nfree].copy()
        self._nfree -= m
        seqs = np.arange(self._next_seq, self._next_seq + m, dtype=np.int64)
        self._next_seq += m
        self._ts[slots] = ts
        self._val[slots] = values
        self._seq[slots] = seqs
        self._ids[slots] = ids
        self.index.update(zip(ids, slots.tolist(), strict=True))
        self.id_chars += sum(map(len, ids))
        order = np.argsort(ts, kind="stable")
        self._push(_Chunk(ts[order], slots[order], seqs[order]))
        self._entries += m
        if self._entries > 2 * len(self.index) + 4096:
            self._compact()

    def _push(self, chunk: _Chunk) -> None:
        no = self._chunk_no
        self._chunk_no += 1
        self._chunks[no] = chunk
        heapq.heappush(self._heap, (float(chunk.ts[chunk.head]), no))

    def _compact(self) -> None:
        """Merge every chunk into one holding only live entries, in (ts, arrival) order."""
        slots = [ch.slots[ch.head :] for ch in self._chunks.values()]
        seqs = [ch.seqs[ch.head :] for ch in self._chunks.values()]
        all_slots = np.concatenate(slots) if slots else np.empty(0, np.int64)
        all_seqs = np.concatenate(seqs) if seqs else np.empty(0, np.int64)
        live = self._seq[all_slots] == all_seqs
        all_slots, all_seqs = all_slots[live], all_seqs[live]
        ts = self._ts[all_slots]
        order = np.lexsort((all_seqs, ts))
        self._heap = []
        self._chunks = {}
        self._entries = int(all_slots.shape[0])
        if self._entries:
            self._push(_Chunk(ts[order], all_slots[order], all_seqs[order]))

    def remove(self, slots: np.ndarray, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Take entries out (joined or evicted); return their event times and values."""
        ts = self._ts[slots]
        values = self._val[slots]
        for key in ids:
            del self.index[key]
        self.id_chars -= sum(map(len, ids))
        self._seq[slots] = -1
        self._ids[slots] = None
        m = slots.shape[0]
        self._free[self._nfree : self._nfree + m] = slots
        self._nfree += m
        return ts, values

    def _drop_live(
        self, ch: _Chunk, stop: int, limit: int | None = None, taken: list[Evicted] | None = None
    ) -> tuple[int, int]:
        """Evict the live entries of ``ch[head:stop]`` (at most ``limit``); advance ``head``;
        with ``taken``, append what was evicted to it.

        Returns ``(evicted, new_head)``.
        """
        slots = ch.slots[ch.head : stop]
        live = np.flatnonzero(self._seq[slots] == ch.seqs[ch.head : stop])
        if limit is not None and live.shape[0] > limit:
            live = live[:limit]
            stop = ch.head + int(live[-1]) + 1
        gone = slots[live]
        if gone.shape[0]:
            ids = self._ids[gone].tolist()
            ts, values = self.remove(gone, ids)
            if taken is not None:
                taken.append((ids, ts, values))
        self._entries -= stop - ch.head
        return int(gone.shape[0]), stop

    def _repush(self, no: int, ch: _Chunk) -> None:
        if ch.head < ch.ts.shape[0]:
            heapq.heappush(self._heap, (float(ch.ts[ch.head]), no))
        else:
            del self._chunks[no]

    def expire(self, cutoff: float, taken: list[Evicted] | None = None) -> int:
        """Evict every entry older than ``cutoff``; return how many live ones left (with
        ``taken``, append them to it)."""
        evicted = 0
        while self._heap and self._heap[0][0] < cutoff:
            _, no = heapq.heappop(self._heap)
            ch = self._chunks[no]
            stop = int(np.searchsorted(ch.ts, np.float64(cutoff), side="left"))
            n, ch.head = self._drop_live(ch, stop, taken=taken)
            evicted += n
            self._repush(no, ch)
        return evicted

    def evict_oldest(self, count: int, taken: list[Evicted] | None = None) -> int:
        """Evict the ``count`` oldest live entries (by event time, ties in arrival order);
        with ``taken``, append them to it."""
        remaining = count
        while remaining > 0 and self._heap:
            _, no = heapq.heappop(self._heap)
            ch = self._chunks[no]
            if self._heap:
                bound, other = self._heap[0]
                side: Literal["left", "right"] = "right" if no < other else "left"
                stop = max(int(np.searchsorted(ch.ts, bound, side=side)), ch.head + 1)
            else:
                stop = ch.ts.shape[0]
            n, ch.head = self._drop_live(ch, stop, remaining, taken)
            remaining -= n
            self._repush(no, ch)
        return count - remaining

    def live(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Live entries in arrival order: ids, event times, values."""
        slots = np.flatnonzero(self._seq >= 0)
        slots = slots[np.argsort(self._seq[slots], kind="stable")]
        return self._ids[slots].tolist(), self._ts[slots].copy(), self._val[slots].copy()
