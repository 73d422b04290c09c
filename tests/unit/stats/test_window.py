"""Window algebra: the sliding window equals a fresh histogram of its events, exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import CheckpointError
from monitor.stats import (
    CountWindowSpec,
    FeatureKind,
    SlotWindow,
    TimeWindowSpec,
    build_profile,
)


def naive_histogram(
    profile, numeric: np.ndarray, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fresh counts of raw events: last column = missing."""
    nums = [profile.features[n] for n in profile.numeric_names]
    cats = [profile.features[n] for n in profile.categorical_names]
    width = max(f.edges.size + 1 for f in nums) + 1
    num = np.zeros((len(nums), width), np.int64)
    for i, f in enumerate(nums):
        col = numeric[:, i]
        idx = np.searchsorted(f.edges, col[~np.isnan(col)], side="right")
        num[i, : f.edges.size + 1] = np.bincount(idx, minlength=f.edges.size + 1)
        num[i, -1] = np.isnan(col).sum()
    cwidth = max(len(f.categories) + 2 for f in cats) + 1
    cat = np.zeros((len(cats), cwidth), np.int64)
    for i, f in enumerate(cats):
        col = codes[:, i]
        cat[i, : len(f.categories) + 2] = np.bincount(
            col[col >= 0], minlength=len(f.categories) + 2
        )
        cat[i, -1] = (col < 0).sum()
    return num, cat


def make_profile(seed: int = 0):
    rng = np.random.default_rng(seed)
    return build_profile(
        "m",
        {
            "x": rng.normal(size=2000),
            "d": rng.integers(0, 4, 2000).astype(float),
            "c": rng.choice(["a", "b", "c", "d"], 2000, p=[0.5, 0.3, 0.15, 0.05]).tolist(),
        },
        {"x": FeatureKind.NUMERIC, "d": FeatureKind.NUMERIC, "c": FeatureKind.CATEGORICAL},
        bins=20,
        max_categories=2,
    )


PROFILE = make_profile()


def stream(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    num = np.column_stack([rng.normal(0.3, 1.2, rows), rng.integers(-1, 6, rows).astype(float)])
    num[rng.random(num.shape) < 0.1] = np.nan
    num[rng.random(num.shape) < 0.01] = np.inf
    num[rng.random(num.shape) < 0.01] = -np.inf
    raw = rng.choice(["a", "b", "c", "d", "zz", None], rows).tolist()
    codes = PROFILE.features["c"].encode(raw)[:, None]
    return num, codes


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 8),
    st.integers(1, 40),
    st.lists(st.integers(0, 120), min_size=1, max_size=12),
    st.integers(0, 2**32 - 1),
)
def test_count_window_equals_fresh_histogram(slots: int, slide: int, batches: list[int], seed: int):
    rng = np.random.default_rng(seed)
    win = SlotWindow(PROFILE, CountWindowSpec(events=slots * slide, slide=slide))
    all_num, all_cat = [], []
    total = 0
    for rows in batches:
        num, cat = stream(rng, rows)
        all_num.append(num)
        all_cat.append(cat)
        for info in win.feed(num, cat):
            # at each yield the window is exactly the last (slots * slide) events, or fewer
            n_seen = (info.slide_index + 1) * slide
            lo = max(0, n_seen - slots * slide)
            num_all, cat_all = np.concatenate(all_num), np.concatenate(all_cat)
            exp_num, exp_cat = naive_histogram(PROFILE, num_all[lo:n_seen], cat_all[lo:n_seen])
            got = win.counts()
            assert np.array_equal(got.numeric, exp_num)
            assert np.array_equal(got.categorical, exp_cat)
            assert info.window_events == n_seen - lo
            assert win.is_full == (n_seen >= slots * slide)
        total += rows
    # after the batches: the window holds the events of the closed slots still in the ring
    num_all, cat_all = np.concatenate(all_num), np.concatenate(all_cat)
    held = win.events
    exp_num, exp_cat = naive_histogram(PROFILE, num_all[total - held :], cat_all[total - held :])
    assert np.array_equal(win.counts().numeric, exp_num)
    assert np.array_equal(win.counts().categorical, exp_cat)
    # checkpoint round trip
    again = SlotWindow.from_state_dict(PROFILE, win.spec, win.state_dict())
    assert np.array_equal(again.counts().numeric, win.counts().numeric)
    assert again.events == win.events and again.is_full == win.is_full


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 6),
    st.sampled_from([1.0, 2.5, 10.0]),
    st.integers(0, 2**32 - 1),
    st.integers(1, 5),
)
def test_time_window_equals_fresh_histogram_and_drops_late(
    slots: int, slide: float, seed: int, nbatch: int
):
    rng = np.random.default_rng(seed)
    spec = TimeWindowSpec(seconds=slots * slide, slide_seconds=slide, min_events=1)
    win = SlotWindow(PROFILE, spec)
    ts_all, num_all, cat_all = [], [], []
    accepted = np.zeros(0, bool)
    newest = -math.inf
    late = 0
    t0 = 1_000_000.0
    for _ in range(nbatch):
        rows = int(rng.integers(0, 80))
        ts = t0 + np.sort(rng.uniform(0, 3 * slots * slide, rows)) + rng.normal(0, slide, rows)
        t0 += rng.uniform(0, 2 * slots * slide)
        num, cat = stream(rng, rows)
        # reference model of acceptance, row by row
        ok = np.zeros(rows, bool)
        for i, t in enumerate(ts):
            sid = math.floor(t / slide)
            newest = max(newest, sid)
            ok[i] = sid > newest - slots
        late += int((~ok).sum())
        for info in win.feed(num, cat, ts):
            assert info.end is not None and info.start is not None
            assert info.end - info.start == pytest.approx(slots * slide)
        ts_all.append(ts)
        num_all.append(num)
        cat_all.append(cat)
        accepted = np.concatenate([accepted, ok])
    ts_c, num_c, cat_c = np.concatenate(ts_all), np.concatenate(num_all), np.concatenate(cat_all)
    sid_c = np.floor(ts_c / slide)
    keep = accepted & (sid_c > newest - slots)
    exp_num, exp_cat = naive_histogram(PROFILE, num_c[keep], cat_c[keep])
    assert win.late_dropped == late
    assert win.events == keep.sum()
    assert np.array_equal(win.counts().numeric, exp_num)
    assert np.array_equal(win.counts().categorical, exp_cat)


def test_time_window_yields_once_per_slot_boundary():
    win = SlotWindow(PROFILE, TimeWindowSpec(seconds=30, slide_seconds=10, min_events=1))
    num, cat = stream(np.random.default_rng(0), 4)
    infos = list(win.feed(num, cat, np.array([0.0, 5.0, 12.0, 35.0])))
    assert [(i.start, i.end) for i in infos] == [(-20.0, 10.0), (-10.0, 20.0), (0.0, 30.0)]
    assert [i.window_events for i in infos] == [2, 3, 3]
    assert win.events == 2  # slot [30, 40) opened; slot [0, 10) dropped


def test_unseen_and_other_categories_are_counted():
    codes = PROFILE.features["c"].encode(["a", "c", "zz", None])
    k = len(PROFILE.features["c"].categories)
    assert codes.tolist() == [0, k, k + 1, -1]


def test_state_for_another_profile_is_rejected():
    win = SlotWindow(PROFILE, CountWindowSpec(events=10, slide=5))
    other = build_profile("m", {"x": np.arange(10.0)}, {"x": FeatureKind.NUMERIC})
    with pytest.raises(CheckpointError, match="another profile"):
        SlotWindow.from_state_dict(other, win.spec, win.state_dict())


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        CountWindowSpec(events=10, slide=3)
    with pytest.raises(ValueError):
        TimeWindowSpec(seconds=10, slide_seconds=3)
    win = SlotWindow(PROFILE, TimeWindowSpec(seconds=10, slide_seconds=5))
    num, cat = stream(np.random.default_rng(0), 3)
    with pytest.raises(ValueError, match="timestamps"):
        list(win.feed(num, cat))
    with pytest.raises(ValueError, match="out of range"):
        list(win.feed(num, cat + 10, np.zeros(3)))
