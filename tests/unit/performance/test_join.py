"""Join store: against a naive row-by-row model, limits, duplicates, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import CheckpointError
from monitor.performance.join import JoinLimits, JoinStore


class NaiveJoin:
    """The documented semantics, one row at a time with plain dicts."""

    def __init__(self, delay: float, cap: int) -> None:
        self.delay, self.cap = delay, cap
        self.sides: dict[str, dict[str, tuple[float, float, int]]] = {"pred": {}, "label": {}}
        self.joined: dict[str, tuple[float, int]] = {}
        self.w = -math.inf
        self.seq = 0
        self.evicted = {
            ("pred", "expired"): 0,
            ("pred", "capacity"): 0,
            ("label", "expired"): 0,
            ("label", "capacity"): 0,
        }
        self.dups = {"pred": 0, "label": 0}

    def batch(self, side: str, ids, values, ts):
        other = "label" if side == "pred" else "pred"
        own, partner = self.sides[side], self.sides[other]
        rows = [(i, v, t) for i, v, t in zip(ids, values, ts, strict=True) if i is not None]
        if rows:
            self.w = max(self.w, max(t for _, _, t in rows))
        cutoff = self.w - self.delay
        out = []
        for i, v, t in rows:
            if i in own or i in self.joined:
                self.dups[side] += 1
                continue
            if i in partner:
                pt, pv, _ = partner[i]
                if abs(t - pt) <= self.delay:
                    del partner[i]
                    self.seq += 1
                    self.joined[i] = (max(t, pt), self.seq)
                    out.append((v, pv, t, pt) if side == "pred" else (pv, v, pt, t))
                    continue
                if pt < t:
                    del partner[i]
                    self.evicted[(other, "expired")] += 1
            if t < cutoff:
                self.evicted[(side, "expired")] += 1
            else:
                self.seq += 1
                own[i] = (t, v, self.seq)
        for name, store in self.sides.items():
            for i in [i for i, e in store.items() if e[0] < cutoff]:
                del store[i]
                self.evicted[(name, "expired")] += 1
        for i in [i for i, e in self.joined.items() if e[0] < cutoff]:
            del self.joined[i]
        while len(own) > self.cap:
            oldest = min(own, key=lambda i: (own[i][0], own[i][2]))
            del own[oldest]
            self.evicted[(side, "capacity")] += 1
        while len(self.joined) > self.cap:
            del self.joined[min(self.joined, key=lambda i: self.joined[i])]
        return out


def check_same(store: JoinStore, naive: NaiveJoin) -> None:
    assert store.pending_predictions == len(naive.sides["pred"])
    assert store.pending_labels == len(naive.sides["label"])
    assert store.remembered_joined == len(naive.joined)
    for reason in ("expired", "capacity"):
        assert store.evicted_predictions[reason] == naive.evicted[("pred", reason)]
        assert store.evicted_labels[reason] == naive.evicted[("label", reason)]
    assert store.duplicate_predictions == naive.dups["pred"]
    assert store.duplicate_labels == naive.dups["label"]


batches = st.lists(
    st.tuples(
        st.sampled_from(["pred", "label"]),
        st.lists(
            st.tuples(st.sampled_from([f"id{i}" for i in range(12)] + [None]), st.integers(0, 40)),
            min_size=0,
            max_size=8,
        ),
    ),
    min_size=1,
    max_size=25,
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(batches, st.integers(1, 6), st.sampled_from([5.0, 15.0, 1000.0]))
def test_matches_naive_model(script, cap, delay):
    store = JoinStore(JoinLimits(max_delay_seconds=delay, max_pending=cap))
    naive = NaiveJoin(delay, cap)
    seq = 0
    for side, rows in script:
        ids = [i for i, _ in rows]
        # distinct timestamps: the naive model's tie order is arrival order, as documented,
        # but distinct values keep the comparison independent of it
        ts = np.array([t + (seq := seq + 1) * 1e-6 for _, t in rows], dtype=np.float64)
        values = np.arange(len(rows), dtype=np.float64) + 100 * seq
        if side == "pred":
            got = store.add_predictions(ids, values, ts)
        else:
            got = store.add_labels(ids, values, ts)
        want = naive.batch(side, ids, values.tolist(), ts.tolist())
        assert got.predictions.tolist() == [w[0] for w in want]
        assert got.labels.tolist() == [w[1] for w in want]
        assert got.prediction_ts.tolist() == [w[2] for w in want]
        assert got.label_ts.tolist() == [w[3] for w in want]
        assert np.all(np.abs(got.delay_seconds) <= delay)
        check_same(store, naive)
        restored = JoinStore.from_state_dict(store.limits, store.state_dict())
        check_same(restored, naive)


def test_either_order_and_delay_sign():
    store = JoinStore(JoinLimits(max_delay_seconds=100, max_pending=10))
    assert len(store.add_labels(["a"], np.array([1.0]), np.array([50.0]))) == 0
    rows = store.add_predictions(["a", "b"], np.array([0.8, 0.1]), np.array([40.0, 41.0]))
    assert rows.predictions.tolist() == [0.8]
    assert rows.labels.tolist() == [1.0]
    assert rows.delay_seconds.tolist() == [10.0]
    rows = store.add_labels(["b"], np.array([0.0]), np.array([30.0]))
    assert rows.delay_seconds.tolist() == [-11.0]  # label stamped before the prediction
    assert store.joined_total == 2
    assert store.pending_predictions == store.pending_labels == 0


def test_duplicate_labels_first_wins():
    store = JoinStore(JoinLimits(max_delay_seconds=100, max_pending=10))
    store.add_labels(["a", "a"], np.array([1.0, 0.0]), np.array([1.0, 2.0]))
    assert store.duplicate_labels == 1
    rows = store.add_predictions(["a"], np.array([0.3]), np.array([0.0]))
    assert rows.labels.tolist() == [1.0]
    store.add_labels(["a"], np.array([0.0]), np.array([3.0]))  # after the join
    assert store.duplicate_labels == 2
    assert store.pending_labels == 0


def test_capacity_evicts_oldest_event_time():
    store = JoinStore(JoinLimits(max_delay_seconds=1e9, max_pending=3))
    store.add_predictions(["a", "b"], np.array([1.0, 2.0]), np.array([10.0, 5.0]))
    store.add_predictions(["c", "d"], np.array([3.0, 4.0]), np.array([7.0, 1.0]))
    assert store.pending_predictions == 3
    assert store.evicted_predictions["capacity"] == 1
    rows = store.add_labels(["a", "b", "c", "d"], np.ones(4), np.full(4, 20.0))
    assert sorted(rows.predictions.tolist()) == [1.0, 2.0, 3.0]  # d (ts 1) was evicted
    assert store.pending_labels == 1


def test_expiry_by_event_time_not_wall_time():
    day = 86_400.0
    store = JoinStore(JoinLimits(max_delay_seconds=7 * day, max_pending=100))
    store.add_predictions(["a", "b"], np.array([0.1, 0.2]), np.array([0.0, 3 * day]))
    store.add_labels(["x"], np.array([1.0]), np.array([8 * day]))  # watermark: a expires
    assert store.evicted_predictions["expired"] == 1
    rows = store.add_labels(["b", "a"], np.array([1.0, 0.0]), np.array([9 * day, 9 * day]))
    assert rows.delay_seconds.tolist() == [6 * day]
    assert store.pending_labels == 2  # x and the label of the expired a


def test_rows_without_id_and_probability_rows():
    store = JoinStore(JoinLimits(60, 10), width=3)
    proba = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    store.add_predictions([None, "a"], proba, np.array([0.0, 1.0]))
    assert store.missing_ids == 1
    rows = store.add_labels(["a"], np.array([2.0]), np.array([2.0]))
    assert rows.predictions.tolist() == [[0.6, 0.3, 0.1]]


def test_compaction_keeps_memory_bounded():
    store = JoinStore(JoinLimits(max_delay_seconds=1e12, max_pending=1_000_000))
    for b in range(40):
        ids = [f"{b}-{i}" for i in range(1000)]
        ts = np.full(1000, float(b))
        store.add_predictions(ids, np.zeros(1000), ts)
        store.add_labels(ids, np.ones(1000), ts + 1.0)  # every one joins
    assert store.pending_predictions == 0
    assert store._preds._entries <= 4096


def test_grows_and_reuses_slots():
    store = JoinStore(JoinLimits(max_delay_seconds=10.0, max_pending=100_000))
    for b in range(30):
        ids = [f"{b}-{i}" for i in range(500)]
        store.add_predictions(ids, np.zeros(500), np.full(500, float(b)))
    # only the last 11 seconds of predictions wait; slots are reused, not grown forever
    assert store.pending_predictions == 11 * 500
    assert store._preds.capacity <= 16_384


def test_state_rejects_garbage():
    store = JoinStore()
    state = store.state_dict()
    with pytest.raises(CheckpointError):
        JoinStore.from_state_dict(store.limits, {k: v for k, v in state.items() if k != "pred_ts"})
    with pytest.raises(CheckpointError):
        JoinStore.from_state_dict(store.limits, {**state, "version": 99})


def test_limits_validate():
    with pytest.raises(ValueError, match="max_pending"):
        JoinLimits(max_pending=0)
    with pytest.raises(ValueError, match="max_delay"):
        JoinLimits(max_delay_seconds=0)


def test_growth_then_every_slot_freed_at_once():
    store = JoinStore(JoinLimits(max_delay_seconds=1e9, max_pending=100_000))
    ids = [f"k{i}" for i in range(5000)]  # grows 1024 -> 5000+ in one insert
    store.add_predictions(ids, np.arange(5000.0), np.zeros(5000))
    rows = store.add_labels(ids[::-1], np.ones(5000), np.ones(5000))
    assert rows.predictions.tolist() == list(np.arange(5000.0)[::-1])
    store.add_predictions([f"n{i}" for i in range(6000)], np.zeros(6000), np.ones(6000))
    assert store.pending_predictions == 6000


def sorted_stream(n: int, delay: float, seed: int = 0):
    """Predictions one per second, in event-time order with their label events: a third
    inline (same row, delay 0), a third delayed by up to ``delay`` (a label event placed at
    its own event time), a sixth delayed by more than ``delay``, the rest never labelled.
    Rows are ``(side, id, ts)``; returns them and the ids whose label is within ``delay``."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[float, int, str, str]] = []  # (ts, order, side, id) sorted below
    within: set[str] = set()
    for i in range(n):
        key, t = f"r{i}", float(i)
        rows.append((t, 0, "pred", key))
        kind = i % 6
        if kind in (0, 1):  # inline: the same row carries the label
            rows.append((t, 1, "label", key))
            within.add(key)
        elif kind in (2, 3):
            rows.append((t + float(rng.uniform(0, delay)), 1, "label", key))
            within.add(key)
        elif kind == 4:
            rows.append((t + delay + 1 + float(rng.uniform(0, delay)), 1, "label", key))
    rows.sort()
    return [(side, key, t) for t, _, side, key in rows], within


def feed_blocks(store: JoinStore, rows, block: int, *, advance_per_call: bool) -> set[str]:
    """Blocks of ``block`` rows, predictions then labels of each block, like the pipeline."""
    joined: set[str] = set()
    for start in range(0, len(rows), block):
        part = rows[start : start + block]
        for side in ("pred", "label"):
            ids = [k for s, k, _ in part if s == side]
            ts = np.array([t for s, _, t in part if s == side])
            add = store.add_predictions if side == "pred" else store.add_labels
            got = add(ids, np.zeros(len(ids)), ts, advance=advance_per_call)
            joined.update(_joined_ids(ids, ts, got, side))
        if not advance_per_call:
            store.advance()
    return joined


def _joined_ids(ids, ts, got, side) -> set[str]:
    arrived = got.label_ts if side == "label" else got.prediction_ts
    return {k for k, t in zip(ids, ts.tolist(), strict=True) if t in set(arrived.tolist())}


@pytest.mark.parametrize("block", [1, 7, 500, 5000])
def test_blocks_wider_than_max_delay_join_every_label_within_it(block):
    delay = 60.0
    rows, within = sorted_stream(3000, delay)
    store = JoinStore(JoinLimits(max_delay_seconds=delay, max_pending=100_000))
    joined = feed_blocks(store, rows, block, advance_per_call=False)
    assert joined == within  # every label within max_delay joins, and only those
    assert store.joined_total == len(within)
    # what expired is exactly what has no label within max_delay (and is past the cutoff)
    cutoff = store.watermark - delay
    never = [(k, t) for s, k, t in rows if s == "pred" and k not in within]
    late_labels = [(k, t) for s, k, t in rows if s == "label" and k not in within]
    expired_preds = sum(t < cutoff for _, t in never)
    expired_labels = sum(t < cutoff for _, t in late_labels)
    assert store.evicted_predictions["expired"] == expired_preds
    assert store.evicted_labels["expired"] == expired_labels
    assert store.pending_predictions == len(never) - expired_preds


def test_advancing_per_call_is_what_dropped_labels():
    """The old behaviour, kept for callers that add one stream at a time: a block wider
    than max_delay expires its own predictions before its labels are processed."""
    delay = 60.0
    rows, within = sorted_stream(3000, delay)
    store = JoinStore(JoinLimits(max_delay_seconds=delay, max_pending=100_000))
    feed_blocks(store, rows, 2000, advance_per_call=True)
    assert store.joined_total < len(within) // 4


def test_advance_is_deferred_and_checkpointed():
    store = JoinStore(JoinLimits(max_delay_seconds=10, max_pending=100))
    store.add_predictions(["a", "b"], np.array([0.1, 0.2]), np.array([0.0, 100.0]), advance=False)
    assert store.watermark == -math.inf and store.pending_predictions == 2
    rows = store.add_labels(["a"], np.array([1.0]), np.array([5.0]), advance=False)
    assert rows.labels.tolist() == [1.0]  # a joins although b is 100 s newer
    store.advance()
    assert store.watermark == 100.0 and store.pending_predictions == 1
    restored = JoinStore.from_state_dict(store.limits, store.state_dict())
    assert restored.watermark == 100.0
