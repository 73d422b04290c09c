"""Many windows' rows of one batch counted into their open slots by one kernel call.

With hundreds of models on a topic, a batch brings each model a few rows; feeding every
window on its own pays a kernel dispatch and about ten numpy calls per model. When a
model's rows all fit in its window's open slot (no slot closes, so nothing is evaluated),
:func:`count_open_slots` bins every such window's rows in one Numba call against a table of
the profiles' edges stacked once (:class:`EdgeTable`), writing straight into each
window's open slot through its arrays' addresses
(:meth:`~monitor.stats.window.SlotWindow.slot_arrays`), so no numpy call is left per
window: the same counts and extremes as :meth:`~monitor.stats.window.SlotWindow.feed` of
the same rows.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, NamedTuple

import numpy as np
from numba import njit, types
from numba.extending import intrinsic
from numba.np.numpy_support import carray

from monitor.stats.bin_grid import TABLE_DTYPE, BinGrid, grid_column
from monitor.stats.binning import _bin_column
from monitor.stats.layout import Layout
from monitor.stats.window import SlotWindow


@intrinsic
def _i8(typingctx: Any, address: Any) -> Any:  # pragma: no cover - compile time
    """An ``int64`` address as a pointer to int64s (for :func:`numba.carray`)."""
    sig = types.CPointer(types.int64)(types.int64)  # type: ignore[no-untyped-call]

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


@intrinsic
def _f8(typingctx: Any, address: Any) -> Any:  # pragma: no cover - compile time
    """An ``int64`` address as a pointer to float64s (for :func:`numba.carray`)."""
    sig = types.CPointer(types.float64)(types.int64)  # type: ignore[no-untyped-call]

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


@njit(cache=True, nogil=True)
def _codes_fit(codes: np.ndarray, nc: int, n_cats: np.ndarray) -> bool:  # pragma: no cover
    """Every code of rows x ``nc`` ``codes`` (flat) is -1 or below its feature's size."""
    for i in range(codes.shape[0]):
        if codes[i] < -1 or codes[i] >= n_cats[i % nc]:
            return False
    return True


@njit(cache=True, nogil=True)
def _time_range(
    ts: np.ndarray, ts_min: np.ndarray, ts_max: np.ndarray, pos: int
) -> None:  # pragma: no cover - compiled
    """The slot's time range widened as the window's own add does: by ``np.min``/``np.max``
    of the rows' times, where a NaN among them leaves the range as it was."""
    lo, hi = math.inf, -math.inf
    for t in ts:
        if t != t:
            return
        lo = min(lo, t)
        hi = max(hi, t)
    ts_min[pos] = min(ts_min[pos], lo)
    ts_max[pos] = max(ts_max[pos], hi)


@njit(cache=True, nogil=True)
def _latest(ts: np.ndarray) -> float:  # pragma: no cover - compiled
    """``ts.max()``: NaN when a time is NaN (-inf for no rows)."""
    top = -math.inf
    for t in ts:
        if t != t:
            return math.nan
        top = max(top, t)
    return top


@cache
def many_kernel(width: int) -> Callable[..., None]:
    """The kernel binning several windows' rows for edges padded to ``width`` (a power of
    two; one compiled kernel per width, as :func:`~monitor.stats.binning.numeric_kernel`).

    Per window ``m``: ``rows[m]`` rows of ``shape[m, 0]`` values (row-major in ``values``
    from ``vstart[m]``) binned against table rows ``erow[m]...`` (edges and grids); its
    codes (``shape[m, 2]`` a row, from ``cstart[m]``) checked against ``n_cats`` rows
    ``crow[m]...``; both counted straight into the window's open slot and totals, its
    extremes and time range updated, through ``arrays[m]``
    (:meth:`SlotWindow.slot_arrays`; ``shape[m]``: numeric features and width,
    categorical features and width). ``ok[m]`` is 0 when a code is out of range: that
    window is not touched.
    """
    if width < 1 or width & (width - 1):
        raise ValueError(f"width must be a power of two, got {width}")
    depth = (width - 1).bit_length()

    @njit(cache=True, nogil=True)
    def _bin_many(
        values: np.ndarray, vstart: np.ndarray, rows: np.ndarray, shape: np.ndarray,
        erow: np.ndarray, edges: np.ndarray, n_edges: np.ndarray,
        offset: np.ndarray, scale: np.ndarray, top: np.ndarray, steps: np.ndarray,
        start: np.ndarray, table: np.ndarray,
        codes: np.ndarray, cstart: np.ndarray, crow: np.ndarray, n_cats: np.ndarray,
        ts: np.ndarray, tstart: np.ndarray, arrays: np.ndarray, ok: np.ndarray,
        latest: np.ndarray,
    ) -> None:  # pragma: no cover - compiled  # fmt: skip
        col = np.empty(0)
        for m in range(rows.shape[0]):
            n, nf, nw, nc, cw = rows[m], shape[m, 0], shape[m, 1], shape[m, 2], shape[m, 3]
            latest[m] = _latest(ts[tstart[m] : tstart[m] + n])
            c0 = cstart[m]
            ok[m] = _codes_fit(codes[c0 : c0 + n * nc], nc, n_cats[crow[m] : crow[m] + nc])
            if not ok[m]:
                continue
            pos, slots, a = arrays[m, 0], arrays[m, 1], arrays[m, 2:]
            num = carray(_i8(a[0]), (slots, nf, nw))[pos]  # type: ignore[call-arg]
            num_total = carray(_i8(a[1]), (nf, nw))
            low = carray(_f8(a[2]), (slots, nf))[pos]
            high = carray(_f8(a[3]), (slots, nf))[pos]
            if col.shape[0] < n:
                col = np.empty(n)
            delta = np.zeros(nw, np.int64)
            v0 = vstart[m]
            for f in range(nf):
                for r in range(n):
                    col[r] = values[v0 + r * nf + f]
                delta[:] = 0
                e = erow[m] + f
                if top[e] >= 0:
                    lo, hi = grid_column(
                        col[:n], edges[e], n_edges[e], offset[e], scale[e], top[e], steps[e],
                        table[start[e] :], delta, low[f], high[f],
                    )  # fmt: skip
                else:
                    lo, hi = _bin_column(
                        col[:n], edges[e], n_edges[e], delta, depth, low[f], high[f]
                    )
                low[f] = lo
                high[f] = hi
                for j in range(nw):
                    num[f, j] += delta[j]
                    num_total[f, j] += delta[j]
            if nc:
                cat = carray(_i8(a[4]), (slots, nc, cw))[pos]
                cat_total = carray(_i8(a[5]), (nc, cw))
                for i in range(n * nc):
                    code = codes[c0 + i]
                    c = code if code >= 0 else cw - 1
                    cat[i % nc, c] += 1
                    cat_total[i % nc, c] += 1
            carray(_i8(a[6]), (slots,))[pos] += n
            _time_range(ts[tstart[m] : tstart[m] + n], carray(_f8(a[7]), (slots,)),
                        carray(_f8(a[8]), (slots,)), pos)  # fmt: skip

    return _bin_many


class EdgeTable:
    """Every layout's padded edges, edge counts and category sizes stacked, per width: a
    layout is copied in once (when first counted), so a batch passes one table. Layouts
    are held weakly: a model reset or restored gets a new one, and the table is rebuilt
    from the live ones once the layouts gone outnumber them."""

    def __init__(self) -> None:
        # width -> id(layout) -> (the layout, weakly; its first edge row; first category row)
        self._rows: dict[int, dict[int, tuple[weakref.ref[Layout], int, int]]] = {}
        self._next: dict[int, tuple[int, int]] = {}  # width -> the next free rows
        self._stacked: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, BinGrid]] = {}
        self._moves = 0  # bumped whenever a layout's rows may have changed
        self._plans: dict[int, _Plan] = {}  # width -> the windows of the last call

    def rows_of(self, lay: Layout) -> tuple[int, int]:
        """The table rows of ``lay``'s first numeric feature and first categorical one."""
        width = int(lay.padded_edges.shape[1])
        known = self._rows.setdefault(width, {})
        found = known.get(id(lay))
        if found is None or found[0]() is not lay:
            self._moves += 1
            known.pop(id(lay), None)  # an id of a layout gone, reused
            live = [ref for ref, _, _ in known.values() if ref() is not None]
            if len(known) > 2 * len(live) + 64:  # mostly the layouts of replaced windows
                known.clear()
                self._next[width] = (0, 0)
                for ref in live:
                    self._append(width, ref)
            found = self._append(width, weakref.ref(lay))
            self._stacked.pop(width, None)
        return found[1], found[2]

    def _append(self, width: int, ref: weakref.ref[Layout]) -> tuple[weakref.ref[Layout], int, int]:
        lay = ref()
        assert lay is not None  # noqa: S101 - the caller holds it
        erow, crow = self._next.get(width, (0, 0))
        self._next[width] = (erow + lay.n_numeric, crow + lay.n_categorical)
        entry = self._rows[width][id(lay)] = (ref, erow, crow)
        return entry

    def plan(self, width: int, windows: list[SlotWindow]) -> _Plan:
        """What the kernel needs of ``windows`` that only changes with the windows: their
        table rows, shapes, slot counts and array addresses. Batch after batch the same
        models' windows come in the same order, so the last call's plan is reused (checked
        by identity; it holds the windows, so their ids stay theirs)."""
        plan = self._plans.get(width)
        if plan is not None and plan.moves == self._moves and plan.windows == windows:
            return plan
        lays = [w.layout for w in windows]
        places = np.array([self.rows_of(lay) for lay in lays], np.int64).reshape(-1, 2)
        shape = np.array(
            [(lay.n_numeric, lay.num_width, lay.n_categorical, lay.cat_width) for lay in lays],
            np.int64,
        ).reshape(-1, 4)
        arrays = np.array([w.slot_arrays() for w in windows], np.int64).reshape(-1, 11)
        plan = _Plan(
            windows, self._moves, places[:, 0].copy(), places[:, 1].copy(), shape, arrays,
            bool((shape[:, 0] == shape[0, 0]).all()) if len(windows) else True,
            bool((shape[:, 2] == shape[0, 2]).all()) if len(windows) else True,
        )  # fmt: skip
        self._plans[width] = plan
        return plan

    def planned_width(self, windows: Sequence[SlotWindow]) -> int | None:
        """The width of the plan made for exactly ``windows`` (None: no such plan)."""
        for width, plan in self._plans.items():
            if plan.moves == self._moves and plan.windows == windows:
                return width
        return None

    def stacked(self, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, BinGrid]:
        """``(padded edges, edge counts, category sizes, grids)`` of every layout of
        ``width``; the rows of a layout gone are +inf edges, sizes 0 and no grid (never
        read)."""
        table = self._stacked.get(width)
        if table is None:
            rows, cats = self._next.get(width, (0, 0))
            edges = np.full((rows, width), np.inf)
            n_edges = np.zeros(rows, np.int64)
            n_cats = np.zeros(cats, np.int64)
            grid = BinGrid(
                np.zeros(rows), np.zeros(rows), np.full(rows, -1.0), np.zeros(rows, np.int64),
                np.zeros(rows, np.int64), np.zeros(0, TABLE_DTYPE),
            )  # fmt: skip
            cells: list[np.ndarray] = []
            size = 0
            for ref, erow, crow in self._rows.get(width, {}).values():
                lay = ref()
                if lay is not None:
                    part = slice(erow, erow + lay.n_numeric)
                    edges[part] = lay.padded_edges
                    n_edges[part] = lay.n_edges
                    n_cats[crow : crow + lay.n_categorical] = lay.n_cats
                    for mine, theirs in zip(grid[:4], lay.grid[:4], strict=True):
                        mine[part] = theirs
                    grid.start[part] = lay.grid.start + size
                    cells.append(lay.grid.table)
                    size += lay.grid.table.shape[0]
            if cells:
                grid = grid._replace(table=np.concatenate(cells))
            table = self._stacked[width] = (edges, n_edges, n_cats, grid)
        return table


class _Plan(NamedTuple):
    """The kernel's per-window inputs that do not change from batch to batch."""

    windows: list[SlotWindow]
    moves: int  # EdgeTable._moves when made
    erow: np.ndarray  # first edge row of each window's layout
    crow: np.ndarray  # first category row
    shape: np.ndarray  # numeric features and width, categorical features and width
    arrays: np.ndarray  # SlotWindow.slot_arrays(); column 0, the open slot, set per call
    same_numeric: bool  # every window has the same numeric features (one 2-D concatenation)
    same_categorical: bool  # and the same categorical ones


class Counted(NamedTuple):
    """What :func:`count_open_slots` did, per window."""

    #: Whether the window's rows were counted (``False``: a category code out of range).
    ok: list[bool]
    #: The largest event time of its rows (``ts.max()``), counted or not.
    latest: list[float]


def count_open_slots(
    table: EdgeTable,
    windows: Sequence[SlotWindow],
    numeric: Sequence[np.ndarray],
    codes: Sequence[np.ndarray],
    ts: Sequence[np.ndarray],
) -> Counted:
    """Count each window's rows (``numeric``/``codes`` in its profile's order, ``ts``, at
    least one row) into its open slot, windows of one edge width per kernel call; every
    window must have :meth:`~SlotWindow.open_room` for its rows (see ``make_room``). A
    window not counted (a category code out of range) is left as it was: feed it for the
    error."""
    width = table.planned_width(windows)
    if width is not None:  # the windows of the last call again: one width
        return _count_width(table, width, range(len(windows)), windows, numeric, codes, ts)
    widths = [window.layout.padded_edges.shape[1] for window in windows]
    first = widths[0] if widths else 0
    if all(w == first for w in widths):  # the usual case: one width, one call, in order
        return _count_width(table, first, range(len(windows)), windows, numeric, codes, ts)
    ok, latest = [False] * len(windows), [math.nan] * len(windows)
    by_width: dict[int, list[int]] = {}
    for i, width in enumerate(widths):
        by_width.setdefault(width, []).append(i)
    for width, picked in by_width.items():
        done = _count_width(table, width, picked, windows, numeric, codes, ts)
        for j, i in enumerate(picked):
            ok[i], latest[i] = done.ok[j], done.latest[j]
    return Counted(ok, latest)


def _count_width(
    table: EdgeTable,
    width: int,
    picked: Sequence[int],
    windows: Sequence[SlotWindow],
    numeric: Sequence[np.ndarray],
    codes: Sequence[np.ndarray],
    ts: Sequence[np.ndarray],
) -> Counted:
    wins = list(windows) if isinstance(picked, range) else [windows[i] for i in picked]
    plan = table.plan(width, wins)
    edges, n_edges, n_cats, grid = table.stacked(width)
    shape, arrays = plan.shape, plan.arrays.copy()
    arrays[:, 0] = [w.open_slot for w in wins]
    if isinstance(picked, range):  # every window: the lists as they are
        numeric, codes, ts = list(numeric), list(codes), list(ts)
    else:
        numeric = [numeric[i] for i in picked]
        codes = [codes[i] for i in picked]
        ts = [ts[i] for i in picked]
    rows = np.fromiter(map(len, ts), np.int64, len(ts))
    ok = np.zeros(len(picked), np.bool_)
    latest = np.empty(len(picked))
    many_kernel(width)(
        _flat(numeric, plan.same_numeric, np.float64),
        _starts(rows * shape[:, 0]), rows, shape, plan.erow, edges, n_edges, *grid,
        _flat(codes, plan.same_categorical, np.int64),
        _starts(rows * shape[:, 2]), plan.crow, n_cats,
        np.concatenate(ts).astype(np.float64, copy=False),
        _starts(rows), arrays, ok, latest,
    )  # fmt: skip
    good: list[bool] = ok.tolist()
    for window, n, counted in zip(wins, rows.tolist(), good, strict=True):
        if counted:
            window.counted(n)
    return Counted(good, latest.tolist())


def _flat(blocks: list[np.ndarray], same_width: bool, dtype: type) -> np.ndarray:
    """Rows x columns blocks one after the other, flat (row-major): one concatenation of
    the blocks as they are when every block has the same columns."""
    if same_width:
        joined = np.concatenate(blocks)
    else:
        joined = np.concatenate([b.reshape(-1) for b in blocks])
    return joined.reshape(-1).astype(dtype, copy=False)


def _starts(sizes: np.ndarray) -> np.ndarray:
    """Where each of consecutive blocks of ``sizes`` starts."""
    out = np.zeros(sizes.shape[0], np.int64)
    np.cumsum(sizes[:-1], out=out[1:])
    return out
