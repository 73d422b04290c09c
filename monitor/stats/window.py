"""Sliding windows as rings of slot histograms over a profile's bins.

The window of one model is a ring of ``S`` slots; each slot holds, for every feature, the
bin counts and missing count of the events that fell into it (numeric bins of the reference
profile; categorical codes). A running total of all slots is kept beside the ring. Sliding
subtracts the oldest slot from the total and zeroes it for reuse, so it costs
O(features x bins), whatever the window size; the total equals, exactly, a histogram of the
raw events in the window (integer arithmetic only).

Count windows (``CountWindowSpec``) hold ``S = events / slide`` slots of ``slide`` events.
Time windows (``TimeWindowSpec``) hold ``S = seconds / slide_seconds`` slots aligned on
multiples of ``slide_seconds`` of event time; an event whose slot is older than the oldest
slot of the ring is late: it is counted in ``late_dropped`` and dropped. A late event whose
slot is still in the ring is added to that slot.

Window extremes (smallest and largest finite value, per feature) are kept per slot and
combined over the ring at evaluation (O(slots x features)); they place the outer bins'
Wasserstein support points.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from monitor.errors import CheckpointError
from monitor.stats.binned import BinnedRows, count_binned, outer_features
from monitor.stats.binning import _count_codes, numeric_kernel
from monitor.stats.layout import Layout, layout_of
from monitor.stats.profile import ReferenceProfile


@dataclass(frozen=True)
class CountWindowSpec:
    """The last ``events`` events, evaluated every ``slide`` events."""

    events: int
    slide: int

    def __post_init__(self) -> None:
        if self.slide < 1 or self.events < self.slide or self.events % self.slide:
            raise ValueError("window events must be a positive multiple of slide")


@dataclass(frozen=True)
class TimeWindowSpec:
    """The last ``seconds`` of event time, evaluated every ``slide_seconds``."""

    seconds: float
    slide_seconds: float
    min_events: int = 100

    def __post_init__(self) -> None:
        ratio = self.seconds / self.slide_seconds if self.slide_seconds > 0 else 0.0
        if self.slide_seconds <= 0 or ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError("window seconds must be a positive multiple of slide_seconds")
        if self.min_events < 1:
            raise ValueError("min_events must be >= 1")


@dataclass(frozen=True)
class SlideInfo:
    """One slot close. ``start``/``end``: event-time range (time windows) or the first and
    last event timestamps of the window (count windows, when timestamps were given)."""

    slide_index: int
    window_events: int
    start: float | None
    end: float | None


@dataclass(frozen=True)
class WindowCounts:
    """Summed window counts (copies). The last column of ``numeric`` and ``categorical``
    is the missing count of each feature."""

    events: int
    numeric: np.ndarray
    numeric_low: np.ndarray
    numeric_high: np.ndarray
    categorical: np.ndarray


class SlotWindow:
    """Ring of slot histograms over one profile's bins (all features of one model)."""

    def __init__(self, profile: ReferenceProfile, spec: CountWindowSpec | TimeWindowSpec) -> None:
        self.profile = profile
        self.spec = spec
        lay = layout_of(profile)
        self._lay = lay
        # A count window's slide (0: a time window), read by every batch's open_room().
        self._count_slide = spec.slide if isinstance(spec, CountWindowSpec) else 0
        if isinstance(spec, CountWindowSpec):
            self._slots = spec.events // spec.slide
        else:
            self._slots = round(spec.seconds / spec.slide_seconds)
        s, nf, nc = self._slots, lay.n_numeric, lay.n_categorical
        self._num = np.zeros((s, nf, lay.num_width), np.int64)
        self._num_total = np.zeros((nf, lay.num_width), np.int64)
        self._low = np.full((s, nf), math.inf)
        self._high = np.full((s, nf), -math.inf)
        self._cat = np.zeros((s, nc, lay.cat_width), np.int64)
        self._cat_total = np.zeros((nc, lay.cat_width), np.int64)
        self._slot_events = np.zeros(s, np.int64)
        self._events = 0  # running sum of _slot_events
        self._slot_id = np.full(s, -1, np.int64)  # time windows: slot number; count: sequence
        self._ts_min = np.full(s, math.inf)
        self._ts_max = np.full(s, -math.inf)
        self._addresses: tuple[int, ...] | None = None
        self._current = -1  # newest slot number (sequence for count windows)
        self._seen = 0
        self._late = 0
        self._slides = 0

    # ------------------------------------------------------------------ properties

    @property
    def events(self) -> int:
        """Events currently in the window."""
        return self._events

    @property
    def is_full(self) -> bool:
        """Count windows: ``events`` events seen since start; time: ``>= min_events`` held."""
        if isinstance(self.spec, CountWindowSpec):
            return self._seen >= self.spec.events
        return self.events >= self.spec.min_events

    @property
    def events_seen(self) -> int:
        """Events fed since the window was created (late ones included)."""
        return self._seen

    @property
    def fill_ratio(self) -> float:
        """0..1: window events / capacity (count windows), slots holding data / slots (time)."""
        if isinstance(self.spec, CountWindowSpec):
            return min(1.0, self.events / self.spec.events)
        return float(np.count_nonzero(self._slot_events)) / self._slots

    @property
    def late_dropped(self) -> int:
        return self._late

    @property
    def slots(self) -> int:
        return self._slots

    @property
    def nbytes(self) -> int:
        """Memory held by the window's arrays."""
        return sum(int(a.nbytes) for a in self._arrays().values())

    def counts(self) -> WindowCounts:
        """Exact summed counts of the window."""
        return WindowCounts(
            events=self.events,
            numeric=self._num_total.copy(),
            numeric_low=self._low.min(axis=0) if self._slots else self._low[0].copy(),
            numeric_high=self._high.max(axis=0),
            categorical=self._cat_total.copy(),
        )

    def newest_slot_absent(self) -> frozenset[str]:
        """Features that no event of the newest slot carried (empty when the slot holds no
        events): the producer stopped sending them. O(features)."""
        if self._current < 0:
            return frozenset()
        pos = self._current % self._slots
        held = self._slot_events[pos]
        num, cat = self._num[pos, :, -1], self._cat[pos, :, -1]
        if not held or (held not in num and held not in cat):  # most slides: none absent
            return frozenset()
        profile = self.profile
        return frozenset(
            [profile.numeric_names[i] for i in np.flatnonzero(num == held).tolist()]
            + [profile.categorical_names[i] for i in np.flatnonzero(cat == held).tolist()]
        )

    def _sketch(self) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The live arrays behind :meth:`counts`, not copied and not reduced over slots:
        events, numeric totals, per-slot lows and highs (slots x features), categorical
        totals. For the evaluation kernel, which only reads them."""
        return self._events, self._num_total, self._low, self._high, self._cat_total

    # ------------------------------------------------------------------ feeding

    def _add(self, pos: int, data: _Rows, ts: np.ndarray | None) -> None:
        rows = data.rows
        if rows == 0:
            return
        delta = np.zeros_like(self._num_total)
        cdelta = np.zeros_like(self._cat_total)
        data.count(self._lay, delta, self._low[pos], self._high[pos], cdelta)
        self._num[pos] += delta
        self._num_total += delta
        self._cat[pos] += cdelta
        self._cat_total += cdelta
        self._slot_events[pos] += rows
        self._events += rows
        if ts is not None and ts.size:
            self._ts_min[pos] = min(self._ts_min[pos], float(ts.min()))
            self._ts_max[pos] = max(self._ts_max[pos], float(ts.max()))

    def _open(self, slot: int) -> None:
        """Make ``slot`` the newest: drop whatever its ring position held. O(bins)."""
        pos = slot % self._slots
        if self._slot_events[pos]:
            self._num_total -= self._num[pos]
            self._cat_total -= self._cat[pos]
            self._num[pos] = 0
            self._cat[pos] = 0
            self._events -= int(self._slot_events[pos])
            self._slot_events[pos] = 0
        self._low[pos] = math.inf
        self._high[pos] = -math.inf
        self._ts_min[pos] = math.inf
        self._ts_max[pos] = -math.inf
        self._slot_id[pos] = slot
        self._current = slot

    def _info(self, start: float | None, end: float | None) -> SlideInfo:
        self._slides += 1
        return SlideInfo(self._slides - 1, self.events, start, end)

    def feed(
        self, numeric: np.ndarray, categorical: np.ndarray, ts: np.ndarray | None = None
    ) -> Iterator[SlideInfo]:
        """Add a batch; yield a ``SlideInfo`` each time a slot closes.

        While suspended at a ``yield`` the window is exactly the window that just closed;
        the whole batch is consumed once the generator is exhausted.
        """
        num, cat = _checked(self._lay, numeric, categorical)
        yield from self._feed(_Values(num, cat), ts)

    def feed_binned(self, rows: BinnedRows, ts: np.ndarray | None = None) -> Iterator[SlideInfo]:
        """:meth:`feed` of rows already binned against this window's profile: counted
        straight into the slots (no search), with the same counts and extremes as feeding
        the rows' values. ``ValueError`` when a code does not fit the profile."""
        lay = self._lay
        rows.check(lay.n_edges, lay.n_cats)
        yield from self._feed(_BinnedSlice(rows, outer_features(rows), 0, rows.rows), ts)

    def _feed(self, data: _Rows, ts: np.ndarray | None) -> Iterator[SlideInfo]:
        t = None if ts is None else np.ascontiguousarray(ts, dtype=np.float64).reshape(-1)
        if t is not None and t.shape[0] != data.rows:
            raise ValueError("ts must have one timestamp per row")
        if isinstance(self.spec, CountWindowSpec):
            yield from self._feed_count(data, t, self.spec.slide)
        else:
            if t is None:
                raise ValueError("time windows need event timestamps")
            if not np.all(np.isfinite(t)):
                raise ValueError("event timestamps must be finite")
            yield from self._feed_time(data, t, self.spec.slide_seconds)

    def _feed_count(self, data: _Rows, t: np.ndarray | None, slide: int) -> Iterator[SlideInfo]:
        r, rows = 0, data.rows
        while r < rows:
            if self._current < 0 or self._slot_events[self._current % self._slots] >= slide:
                self._open(self._current + 1)
            pos = self._current % self._slots
            take = min(rows - r, slide - int(self._slot_events[pos]))
            self._add(pos, data.slice_rows(r, r + take), None if t is None else t[r : r + take])
            self._seen += take
            r += take
            if self._slot_events[pos] == slide:
                lo, hi = float(self._ts_min.min()), float(self._ts_max.max())
                held = t is not None or math.isfinite(lo)
                yield self._info(lo if held else None, hi if held else None)

    def _feed_time(self, data: _Rows, t: np.ndarray, slide: float) -> Iterator[SlideInfo]:
        sid = np.floor(t / slide).astype(np.int64)
        r, rows = 0, data.rows
        while r < rows:
            if self._current < 0:
                self._open(int(sid[r]))
            ahead = np.flatnonzero(sid[r:] > self._current)
            end = rows if ahead.size == 0 else r + int(ahead[0])
            self._add_time_rows(data.slice_rows(r, end), t[r:end], sid[r:end])
            self._seen += end - r
            r = end
            if r < rows:
                target = int(sid[r])
                while self._current < target:
                    closing = self._current
                    yield self._info((closing + 1 - self._slots) * slide, (closing + 1) * slide)
                    self._open(closing + 1)
                    if self.events == 0 and self._current < target:
                        self._open(target)  # the ring is empty: skip the empty slots

    def _add_time_rows(self, data: _Rows, t: np.ndarray, sid: np.ndarray) -> None:
        oldest = self._current - self._slots + 1
        late = sid < oldest
        self._late += int(late.sum())
        if sid.size and sid.min() == self._current and not late.any():
            self._add(self._current % self._slots, data, t)
            return
        for slot in np.unique(sid[~late]):
            pick = np.flatnonzero(sid == slot)
            self._add(int(slot) % self._slots, data.take(pick), t[pick])

    # ------------------------------------------------------------------ batched counting

    @property
    def layout(self) -> Layout:
        return self._lay

    def open_room(self) -> int:
        """Rows a count window's open slot takes without closing (0: time window, none open)."""
        slide, current = self._count_slide, self._current
        if not slide or current < 0:
            return 0
        return max(0, slide - int(self._slot_events[current % self._slots]) - 1)

    @property
    def open_slot(self) -> int:
        """The ring position of the newest slot (where a batched count writes)."""
        return self._current % self._slots

    def make_room(self) -> int:
        """:meth:`open_room` after opening the next slot when a count window has none open
        or its open one is full, as feeding rows does first (the same state either way)."""
        slide, current = self._count_slide, self._current
        if not slide:
            return 0
        if current < 0 or self._slot_events[current % self._slots] >= slide:
            self._open(current + 1)
        return self.open_room()

    def slot_arrays(self) -> tuple[int, ...]:
        """The open slot and the addresses of the arrays a batched count writes
        (``slot_batch``): allocated once, changed only in place, valid while it lives."""
        if self._addresses is None:
            arrays = (self._num, self._num_total, self._low, self._high, self._cat,
                      self._cat_total, self._slot_events, self._ts_min, self._ts_max)  # fmt: skip
            self._addresses = tuple(int(a.ctypes.data) for a in arrays)
        return (self.open_slot, self._slots, *self._addresses)

    def counted(self, rows: int) -> None:
        """``rows`` were counted into the open slot's arrays by ``slot_batch``."""
        self._events += rows
        self._seen += rows

    # ------------------------------------------------------------------ checkpoints

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "num": self._num,
            "num_total": self._num_total,
            "low": self._low,
            "high": self._high,
            "cat": self._cat,
            "cat_total": self._cat_total,
            "slot_events": self._slot_events,
            "slot_id": self._slot_id,
            "ts_min": self._ts_min,
            "ts_max": self._ts_max,
        }

    def state_dict(self) -> dict[str, Any]:
        """Plain numpy arrays and ints, enough to rebuild the window exactly."""
        state: dict[str, Any] = {k: v.copy() for k, v in self._arrays().items()}
        state.update(current=self._current, seen=self._seen, late=self._late, slides=self._slides)
        return state

    @classmethod
    def from_state_dict(
        cls,
        profile: ReferenceProfile,
        spec: CountWindowSpec | TimeWindowSpec,
        state: dict[str, Any],
    ) -> SlotWindow:
        """Rebuild a window; raise ``CheckpointError`` if the state does not fit the profile."""
        win = cls(profile, spec)
        for key, arr in win._arrays().items():
            got = np.asarray(state.get(key))
            if got.shape != arr.shape or got.dtype != arr.dtype:
                raise CheckpointError(
                    f"window state {key!r} has shape {got.shape}, expected {arr.shape}: "
                    "the checkpoint belongs to another profile or window size"
                )
            arr[...] = got
        try:
            win._current = int(state["current"])
            win._seen = int(state["seen"])
            win._late = int(state["late"])
            win._slides = int(state["slides"])
            win._events = int(win._slot_events.sum())
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise CheckpointError(f"window state is incomplete: {exc}") from exc
        if min(win._current + 1, win._seen, win._late, win._slides) < 0:
            raise CheckpointError("window state has a negative position or count")
        counts = ("num", "num_total", "cat", "cat_total", "slot_events")
        arrays = win._arrays()
        if any(arrays[k].size and arrays[k].min() < 0 for k in counts):
            raise CheckpointError("window state has negative counts")
        if not np.array_equal(win._num.sum(axis=0), win._num_total):
            raise CheckpointError("window state is inconsistent (slot sums differ from totals)")
        return win


def _checked(
    lay: Layout, numeric: np.ndarray, categorical: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A batch's values and codes as the kernels take them, checked against ``lay``."""
    num = np.ascontiguousarray(numeric, dtype=np.float64)
    cat = np.ascontiguousarray(categorical, dtype=np.int64)
    rows = num.shape[0] if num.ndim == 2 else -1
    if num.ndim != 2 or num.shape[1] != lay.n_numeric:
        raise ValueError(f"numeric must be rows x {lay.n_numeric} float64")
    if cat.ndim != 2 or cat.shape != (rows, lay.n_categorical):
        raise ValueError(f"categorical must be {rows} rows x {lay.n_categorical} int64")
    if cat.size and (cat.min() < -1 or np.any(cat.max(axis=0) >= lay.n_cats)):
        raise ValueError("categorical code out of range for its profile")
    return num, cat


class _Rows(Protocol):
    """A batch the window can cut and count: raw values, or rows already binned."""

    @property
    def rows(self) -> int: ...

    def slice_rows(self, start: int, stop: int) -> _Rows: ...

    def take(self, rows: np.ndarray) -> _Rows: ...

    def count(
        self, lay: Layout, num: np.ndarray, low: np.ndarray, high: np.ndarray, cat: np.ndarray
    ) -> None: ...


class _Values:
    """Numeric values and category codes, binned by the search kernel."""

    __slots__ = ("cat", "num")

    def __init__(self, num: np.ndarray, cat: np.ndarray) -> None:
        self.num = num
        self.cat = cat

    @property
    def rows(self) -> int:
        return int(self.num.shape[0])

    def slice_rows(self, start: int, stop: int) -> _Values:
        return _Values(self.num[start:stop], self.cat[start:stop])

    def take(self, rows: np.ndarray) -> _Values:
        return _Values(self.num[rows], self.cat[rows])

    def count(
        self, lay: Layout, num: np.ndarray, low: np.ndarray, high: np.ndarray, cat: np.ndarray
    ) -> None:
        numeric_kernel(lay.padded_edges.shape[1])(
            self.num, lay.padded_edges, lay.n_edges, *lay.grid, num, low, high
        )
        _count_codes(self.cat, cat)


class _BinnedSlice:
    """Rows ``start:stop`` of binned rows: cut without copying, counted by lookup."""

    __slots__ = ("binned", "outer_feature", "start", "stop")

    def __init__(self, binned: BinnedRows, outer_feature: np.ndarray, start: int, stop: int):
        self.binned = binned
        self.outer_feature = outer_feature
        self.start = start
        self.stop = stop

    @property
    def rows(self) -> int:
        return self.stop - self.start

    def slice_rows(self, start: int, stop: int) -> _BinnedSlice:
        stop = min(stop, self.rows)
        return _BinnedSlice(self.binned, self.outer_feature, self.start + start, self.start + stop)

    def take(self, rows: np.ndarray) -> _BinnedSlice:
        taken = self.binned.take(rows + self.start)
        return _BinnedSlice(taken, outer_features(taken), 0, int(rows.shape[0]))

    def count(
        self, lay: Layout, num: np.ndarray, low: np.ndarray, high: np.ndarray, cat: np.ndarray
    ) -> None:
        count_binned(
            self.binned, self.outer_feature, lay.padded_edges, lay.n_edges,
            self.start, self.stop, num, low, high, cat,
        )  # fmt: skip
