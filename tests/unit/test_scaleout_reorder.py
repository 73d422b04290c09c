"""Stage 2's core: duplicated, reordered, overlapping row batches end as one time-sorted window."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import CheckpointError
from monitor.scaleout.codec import RowBatch, RowCodec, decode_rows, encode_rows, source_id
from monitor.scaleout.order import release_order
from monitor.scaleout.reorder import Marker, ReorderBuffer
from monitor.stats import (
    CountWindowSpec,
    FeatureKind,
    SlotWindow,
    TimeWindowSpec,
    build_profile,
    evaluate,
)

LATENESS = 5.0


def make_profile():
    rng = np.random.default_rng(0)
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
CODEC = RowCodec("m", PROFILE, ["x", "d"], ["c"], "fp")


def events(seed: int, sources: int, per_source: int):
    """Per source: offsets, event times (mostly rising, some late), numeric, codes."""
    rng = np.random.default_rng(seed)
    out = {}
    for p in range(sources):
        n = per_source
        ts = 1000.0 + np.cumsum(rng.exponential(1.0, n)) + rng.normal(0, 1.5, n)
        late = rng.random(n) < 0.05
        ts[late] -= 20.0  # behind their partition by far more than the lateness
        ts = np.round(ts, 3)
        x = rng.normal(0.3, 1.5, n)  # some land out of the grid
        x[rng.random(n) < 0.1] = math.nan
        d = rng.integers(-1, 6, n).astype(float)
        c = rng.integers(-1, 4, (n, 1))
        offsets = np.arange(n) * 2 + 7  # offsets with gaps: other models' messages
        out[source_id(0, p)] = (offsets, ts, np.column_stack([x, d]), c)
    return out


def reference_order(data):
    """The non-late events of every source sorted by (ts, source, offset), as one process
    reading them in event-time order would take them."""
    rows = []
    for s, (offsets, ts, num, codes) in data.items():
        newest = -math.inf
        for i in range(len(ts)):
            if ts[i] >= newest - LATENESS:
                rows.append((ts[i], s, offsets[i], num[i], codes[i]))
            newest = max(newest, ts[i])
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return rows


def stage1_batches(data, rng, cuts, resend):
    """Each source cut into batches; some ranges sent again (a stage-1 replay), and the
    sources interleaved at random, each source's batches in its own order."""
    queues = {}
    for s, (offsets, ts, num, codes) in data.items():
        n = len(ts)
        bounds = sorted(set(rng.integers(1, n, cuts).tolist()) | {0, n})
        sent = []
        for a, b in zip(bounds, bounds[1:], strict=False):
            sent.append((a, b))
            if rng.random() < resend and len(sent) > 1:
                back = int(rng.integers(0, len(sent)))
                sent.append((sent[back][0], b))  # replay from an earlier batch's start
        batches = []
        for a, b in sent:
            batch = CODEC.bin(
                num[a:b],
                codes[a:b],
                ts[a:b],
                np.full(b - a, s),
                offsets[a:b],
                np.array([[s, offsets[a], offsets[b - 1]]]),
            )
            batches.append(decode_rows(encode_rows(batch)))  # through the wire format
        queues[s] = batches
    order = []
    while any(queues.values()):
        live = [s for s, q in queues.items() if q]
        s = live[int(rng.integers(0, len(live)))]
        order.append(queues[s].pop(0))
    return order


def fed_window(spec, num, codes, ts):
    win = SlotWindow(PROFILE, spec)
    # SlotWindow wants the profile's feature order: numeric x, d; categorical c.
    slides = list(win.feed(num, codes, ts))
    return win, slides


def check_equal(win_a, win_b, slides_a, slides_b):
    a, b = win_a.counts(), win_b.counts()
    assert a.events == b.events
    np.testing.assert_array_equal(a.numeric, b.numeric)
    np.testing.assert_array_equal(a.categorical, b.categorical)
    # Only the outer bins' values travel; extremes beyond the grid are what statistics read.
    first = np.array([PROFILE.features[n].edges[0] for n in PROFILE.numeric_names])
    last = np.array([PROFILE.features[n].edges[-1] for n in PROFILE.numeric_names])
    np.testing.assert_array_equal(
        np.minimum(a.numeric_low, first), np.minimum(b.numeric_low, first)
    )
    np.testing.assert_array_equal(
        np.maximum(a.numeric_high, last), np.maximum(b.numeric_high, last)
    )
    assert [(s.slide_index, s.window_events, s.start, s.end) for s in slides_a] == [
        (s.slide_index, s.window_events, s.start, s.end) for s in slides_b
    ]
    tests = ["psi", "ks", "kl", "js", "wasserstein", "chi2"]
    ra = evaluate(PROFILE, win_a, tests=tests, thresholds={})
    rb = evaluate(PROFILE, win_b, tests=tests, thresholds={})
    assert ra == rb  # every score and p-value, to the bit


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    sources=st.integers(1, 6),
    cuts=st.integers(1, 12),
    resend=st.floats(0.0, 0.6),
    checkpoint_at=st.integers(0, 60),
    time_window=st.booleans(),
)
def test_stage2_equals_a_window_fed_the_time_sorted_events(
    seed, sources, cuts, resend, checkpoint_at, time_window
):
    data = events(seed, sources, 60)
    rng = np.random.default_rng(seed + 1)
    batches = stage1_batches(data, rng, cuts, resend)
    buffer = ReorderBuffer(
        "m", "fp", CODEC.width, data, allowed_lateness_seconds=LATENESS, max_buffered_rows=10**6
    )
    released: list[RowBatch] = []
    for i, batch in enumerate(batches):
        if i == checkpoint_at:  # a new owner resumes from the checkpoint
            scalars, arrays = buffer.state()
            buffer = ReorderBuffer(
                "m", "fp", CODEC.width, data, allowed_lateness_seconds=LATENESS,
                max_buffered_rows=10**6,
            )  # fmt: skip
            buffer.restore(scalars, arrays)
        buffer.push(batch)
        released.append(buffer.release())
    for s in data:  # stage 1 reports every source caught up: the tail is released
        buffer.mark(Marker(s, 0, idle=True))
    released.append(buffer.release())
    assert buffer.buffered == 0
    rows = RowBatch.concat(released)
    expected = reference_order(data)
    assert list(zip(rows.ts.tolist(), rows.source.tolist(), rows.offset.tolist(), strict=True)) == [
        (r[0], r[1], r[2]) for r in expected
    ]
    assert buffer.counts.applied == len(expected)
    assert buffer.counts.late == sum(len(d[1]) for d in data.values()) - len(expected)
    spec = TimeWindowSpec(seconds=20.0, slide_seconds=5.0, min_events=1) if time_window else (
        CountWindowSpec(events=40, slide=10)
    )  # fmt: skip
    num, codes = CODEC.rebuild(rows)
    got, got_slides = fed_window(spec, num, codes, rows.ts)
    raw_num = np.array([r[3] for r in expected]).reshape(-1, 2)
    raw_codes = np.array([r[4] for r in expected], np.int64).reshape(-1, 1)
    raw_ts = np.array([r[0] for r in expected])
    want, want_slides = fed_window(spec, raw_num, raw_codes, raw_ts)
    check_equal(got, want, got_slides, want_slides)


def test_duplicates_are_counted_exactly():
    data = events(3, 2, 30)
    s = next(iter(data))
    offsets, ts, num, codes = data[s]
    buffer = ReorderBuffer(
        "m", "fp", CODEC.width, data, allowed_lateness_seconds=1e9, max_buffered_rows=10**6
    )

    def batch(a, b):
        return CODEC.bin(num[a:b], codes[a:b], ts[a:b], np.full(b - a, s), offsets[a:b],
                         np.array([[s, offsets[a], offsets[b - 1]]]))  # fmt: skip

    buffer.push(batch(0, 20))
    buffer.push(batch(10, 30))  # 10 rows seen before
    assert buffer.counts.duplicate == 10
    assert buffer.buffered == 30
    buffer.mark(Marker(s, int(offsets[29]) + 1, idle=False))  # committed past every row
    buffer.push(batch(0, 5))
    assert buffer.counts.duplicate == 15


def test_a_silent_source_holds_the_watermark_until_the_bound_forces_it():
    data = events(5, 2, 40)
    a, b = list(data)
    buffer = ReorderBuffer(
        "m", "fp", CODEC.width, data, allowed_lateness_seconds=LATENESS, max_buffered_rows=25
    )
    offsets, ts, num, codes = data[a]
    buffer.push(CODEC.bin(num, codes, ts, np.full(40, a), offsets, np.array([[a, 0, 100]])))
    assert buffer.holding() == [b]  # source b never sent anything
    out = buffer.release()
    late = buffer.counts.late
    assert out.rows == 40 - late - 25  # only what the bound forced out
    assert buffer.counts.forced == out.rows
    assert buffer.buffered == 25
    assert np.all(np.diff(out.ts) >= 0)
    assert out.ts.max() < buffer.watermark <= buffer._buffer[0].ts.min()


def test_restore_refuses_another_fingerprint():
    buffer = ReorderBuffer(
        "m", "fp", CODEC.width, [0], allowed_lateness_seconds=1, max_buffered_rows=10
    )
    scalars, arrays = buffer.state()
    other = ReorderBuffer(
        "m", "other", CODEC.width, [0], allowed_lateness_seconds=1, max_buffered_rows=10
    )
    with pytest.raises(CheckpointError, match="another configuration"):
        other.restore(scalars, arrays)


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 3), st.integers(0, 50)), max_size=120
    ),
    watermark=st.integers(-1, 8),
)
def test_release_order_is_event_time_then_source_then_offset(
    rows: list[tuple[int, int, int]], watermark: int
) -> None:
    ts = np.array([t for t, _, _ in rows], np.float64)
    source = np.array([s for _, s, _ in rows], np.int32)
    offset = np.array([o for _, _, o in rows], np.int64)
    out, kept = release_order(ts, source, offset, float(watermark))
    below = np.flatnonzero(ts < watermark)
    expected = below[np.lexsort((offset[below], source[below], ts[below]))]
    # Equal (ts, source, offset) keys may come in any order: compare the keys.
    key = np.column_stack([ts, source, offset]) if rows else np.zeros((0, 3))
    assert np.array_equal(key[out], key[expected])
    assert kept.tolist() == np.flatnonzero(ts >= watermark).tolist()


def test_rows_after_every_source_was_idle_are_ordered_again():
    """A quiet spell (every source reported idle) must not leave the watermark at
    infinity, or every later row would be applied in arrival order."""
    data = events(3, 2, 30)
    sources = sorted(data)
    buffer = ReorderBuffer(
        "m", "fp", CODEC.width, sources, allowed_lateness_seconds=0.0, max_buffered_rows=10**6
    )
    for s in sources:  # caught up before anything was produced
        buffer.mark(Marker(s, 0, idle=True))
    assert buffer.release().rows == 0 and buffer.watermark == -math.inf
    a, b = sources[0], sources[1]
    buffer.push(CODEC.bin(np.zeros((1, 2)), np.zeros((1, 1), np.int64), np.array([10.0]),
                          np.array([a]), np.array([0]), [[a, 0, 0]]))  # fmt: skip
    # a woke up and holds the watermark again: its row waits for the others.
    assert buffer.release().rows == 0
    buffer.push(CODEC.bin(np.zeros((1, 2)), np.zeros((1, 1), np.int64), np.array([5.0]),
                          np.array([b]), np.array([0]), [[b, 0, 0]]))  # fmt: skip
    for s in sources:
        buffer.mark(Marker(s, 1, idle=True))
    out = buffer.release()
    assert out.ts.tolist() == [5.0, 10.0]  # event-time order, not arrival order
    assert buffer.watermark == np.nextafter(10.0, math.inf)
