"""Many windows' rows counted into their open slots by one kernel call (``slot_batch``)
give exactly what feeding each window its own rows gives."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.stats import CountWindowSpec, FeatureKind, SlotWindow, TimeWindowSpec, build_profile
from monitor.stats.slot_batch import EdgeTable, count_open_slots


def window(seed: int, bins: int, categorical: bool) -> SlotWindow:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {"x": rng.normal(size=500), "y": rng.exponential(size=500)}
    kinds = {"x": FeatureKind.NUMERIC, "y": FeatureKind.NUMERIC}
    if categorical:
        data["c"] = [f"v{i % 4}" for i in range(500)]
        kinds["c"] = FeatureKind.CATEGORICAL
    profile = build_profile(f"m{seed}", data, kinds, bins=bins)  # type: ignore[arg-type]
    return SlotWindow(profile, CountWindowSpec(events=40, slide=20))


def rows(w: SlotWindow, seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    num = rng.normal(size=(n, 2)) * 2
    num[rng.random(size=(n, 2)) < 0.1] = np.nan
    num[rng.random(size=(n, 2)) < 0.05] = np.inf
    ncat = w.layout.n_categorical
    codes = rng.integers(-1, int(w.layout.n_cats[0]) if ncat else 1, size=(n, ncat))
    ts = 1.7e9 + rng.random(n) * 100
    if n > 2 and seed % 3 == 0:
        ts[1] = np.nan
    return num, codes.astype(np.int64), ts


@pytest.mark.parametrize("batches", [1, 3])
def test_one_call_over_many_windows_equals_each_window_fed(batches: int) -> None:
    shapes = [(i, [8, 100, 200][i % 3], i % 2 == 0) for i in range(12)]
    batched = [window(s, b, c) for s, b, c in shapes]
    alone = [window(s, b, c) for s, b, c in shapes]
    table = EdgeTable()
    for w in batched + alone:  # open a first slot: the batched path counts into open ones
        first = rows(w, 99, 1)
        list(w.feed(*first))
    for step in range(batches):
        fed = [rows(w, 10 * step + i, 1 + (i * 5) % 6) for i, w in enumerate(batched)]
        assert all(w.open_room() >= len(f[2]) for w, f in zip(batched, fed, strict=True))
        counted = count_open_slots(
            table, batched, [f[0] for f in fed], [f[1] for f in fed], [f[2] for f in fed]
        )
        assert counted.ok == [True] * len(batched)
        # each window's latest event time, as ts.max() (NaN when one is NaN)
        np.testing.assert_array_equal(counted.latest, [f[2].max() for f in fed])
        for w, f in zip(alone, fed, strict=True):
            assert list(w.feed(*f)) == []
    for left, right in zip(batched, alone, strict=True):
        a, b = left.state_dict(), right.state_dict()
        for key in a:
            np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), key)


def test_a_code_out_of_range_is_not_counted_and_the_others_are() -> None:
    good, bad = window(1, 8, True), window(2, 8, True)
    for w in (good, bad):
        list(w.feed(*rows(w, 5, 1)))
    before = bad.state_dict()
    num, codes, ts = rows(bad, 6, 3)
    wrong = codes.copy()
    wrong[1, 0] = 99
    counted = count_open_slots(EdgeTable(), [good, bad], [num, num], [codes, wrong], [ts, ts])
    assert counted.ok == [True, False]
    np.testing.assert_array_equal(counted.latest, [ts.max()] * 2)  # NaN: one time is NaN
    assert good.events == 4
    after = bad.state_dict()
    for key in before:
        np.testing.assert_array_equal(np.asarray(before[key]), np.asarray(after[key]), key)
    with pytest.raises(ValueError, match="out of range"):
        list(bad.feed(num, wrong, ts))


def test_open_room_leaves_the_closing_row_to_the_window() -> None:
    w = window(3, 8, False)
    assert w.open_room() == 0  # no slot open yet
    list(w.feed(*rows(w, 1, 5)))
    assert w.open_room() == 20 - 5 - 1


def test_make_room_opens_the_slot_feeding_would_open_first() -> None:
    counted, fed = window(4, 8, True), window(4, 8, True)
    table = EdgeTable()

    def both(seed: int, n: int) -> None:
        assert counted.make_room() >= n
        num, codes, ts = rows(counted, seed, n)
        assert count_open_slots(table, [counted], [num], [codes], [ts]).ok == [True]
        assert list(fed.feed(num, codes, ts)) == []
        for key, value in counted.state_dict().items():
            np.testing.assert_array_equal(np.asarray(value), np.asarray(fed.state_dict()[key]))

    both(1, 5)  # no slot open yet: make_room opens the first
    closing = rows(fed, 2, 15)
    assert len(list(counted.feed(*closing))) == len(list(fed.feed(*closing))) == 1
    assert counted.open_room() == 0  # the open slot is full
    both(3, 7)  # make_room opens the next one, as feeding does first
    timed = SlotWindow(counted.profile, TimeWindowSpec(seconds=60, slide_seconds=10))
    assert timed.make_room() == 0 and timed.state_dict()["current"] == -1  # never opens


def test_the_windows_of_the_last_call_are_planned_once() -> None:
    table = EdgeTable()
    wins = [window(i, 8, i % 2 == 0) for i in range(3)]
    width = wins[0].layout.padded_edges.shape[1]
    plan = table.plan(width, list(wins))
    assert table.plan(width, list(wins)) is plan  # same windows, same order: reused
    assert table.planned_width(wins) == width and table.planned_width(wins[::-1]) is None
    other = [wins[0], window(7, 8, True), wins[2]]  # a model reset: a new window
    replanned = table.plan(width, other)
    assert replanned is not plan and replanned.windows == other
    assert table.plan(width, list(wins)) is not replanned  # back: planned again


def test_the_edge_table_forgets_the_layouts_of_windows_gone() -> None:
    import gc

    table = EdgeTable()
    keep = [window(i, 8, i % 2 == 0) for i in range(3)]
    for w in keep:
        table.rows_of(w.layout)
    for i in range(200):  # windows replaced again and again (resets, restores)
        table.rows_of(window(100 + i, 8, True).layout)
        if i % 50 == 49:  # most go by reference counting; a few full collections for the rest
            gc.collect()
    assert len(table._rows[keep[0].layout.padded_edges.shape[1]]) < 3 + 64 + 10
    # the live windows are still counted exactly, wherever their rows went
    alone = [window(i, 8, i % 2 == 0) for i in range(3)]
    for w in keep + alone:
        list(w.feed(*rows(w, 99, 1)))
    fed = [rows(w, 7 + i, 3) for i, w in enumerate(keep)]
    assert (
        count_open_slots(table, keep, *(list(x) for x in zip(*fed, strict=True))).ok == [True] * 3
    )
    for w, f in zip(alone, fed, strict=True):
        list(w.feed(*f))
    for left, right in zip(keep, alone, strict=True):
        for key, value in left.state_dict().items():
            np.testing.assert_array_equal(np.asarray(value), np.asarray(right.state_dict()[key]))
