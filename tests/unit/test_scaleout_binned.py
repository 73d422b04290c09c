"""Stage 2 counts binned rows straight into the window: the same window as the raw values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.scaleout.codec import RowCodec, source_id
from monitor.stats import CountWindowSpec, FeatureKind, SlotWindow, TimeWindowSpec, build_profile
from monitor.stats.binned import BinnedRows
from monitor.stats.drift import evaluate
from monitor.stats.profile import NumericProfile, ReferenceProfile

NUMERIC = ["a", "b"]
CATEGORICAL = ["c"]


def profile() -> ReferenceProfile:
    rng = np.random.default_rng(0)
    columns: dict[str, object] = {"a": rng.normal(size=3000), "b": rng.exponential(size=3000)}
    columns["c"] = rng.choice(["x", "y", "z"], 3000).tolist()
    kinds = {"a": FeatureKind.NUMERIC, "b": FeatureKind.NUMERIC, "c": FeatureKind.CATEGORICAL}
    return build_profile("m", columns, kinds, bins=20, max_categories=10)  # type: ignore[arg-type]


PROFILE = profile()
# Config order differs from the profile's: the binned rows name their columns per feature.
CODEC = RowCodec("m", PROFILE, ["b", "a"], CATEGORICAL, "fp")


def binned(num: np.ndarray, cat: np.ndarray, ts: np.ndarray) -> BinnedRows:
    rows = CODEC.bin(
        num[:, ::-1],
        cat,
        ts,
        np.full(ts.size, source_id(0, 0)),
        np.arange(ts.size),
        np.zeros((0, 3), np.int64),
    )
    return BinnedRows(
        rows.codes,
        np.array([1, 0]),
        np.array([2]),
        rows.outer_row,
        rows.outer_col,
        rows.outer_value,
    )


def rebuilt(rows: BinnedRows) -> np.ndarray:
    """What stage 2 fed before: every inner value its bin's left edge, outer ones as sent."""
    codes = rows.codes.astype(np.int64)
    out = np.full((rows.rows, 2), math.nan)
    for f, name in enumerate(PROFILE.numeric_names):
        feature = PROFILE.features[name]
        assert isinstance(feature, NumericProfile)
        edges = feature.edges
        c = codes[:, rows.num_cols[f]]
        inner = (c >= 2) & (c <= edges.size)
        out[inner, f] = edges[c[inner] - 2]
    for r, col, v in zip(rows.outer_row, rows.outer_col, rows.outer_value, strict=True):
        out[r, list(rows.num_cols).index(col)] = v
    return out


def exact(result: object) -> str:
    """A result compared to the bit (``repr`` of a float is exact; NaN equals NaN)."""
    return repr(result)


values = st.one_of(
    st.floats(-6, 8, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf, -50.0, 50.0]),
)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(values, values, st.integers(-1, 4), st.floats(0, 40)), min_size=1, max_size=200
    ),
    cuts=st.lists(st.integers(1, 199), max_size=4),
    timed=st.booleans(),
)
def test_binned_rows_fill_the_window_as_their_values_do(
    rows: list[tuple[float, float, int, float]], cuts: list[int], timed: bool
) -> None:
    num = np.array([[a, b] for a, b, _, _ in rows])
    cat = np.array([[c] for _, _, c, _ in rows], np.int64)
    ts = np.array([t for *_, t in rows])  # any order: late rows and earlier slots too
    spec = TimeWindowSpec(20.0, 5.0, min_events=1) if timed else CountWindowSpec(20, 5)
    raw, counted, again = (SlotWindow(PROFILE, spec) for _ in range(3))
    batch = binned(num, cat, ts)
    back = rebuilt(batch)
    bounds = [0, *sorted({c for c in cuts if c < len(rows)}), len(rows)]
    slides: list[list[object]] = [[], [], []]
    for a, b in zip(bounds, bounds[1:], strict=False):
        # Every slide's evaluation (the window as it stands at the slide) is compared.
        slides[0] += [
            (s, exact(evaluate(PROFILE, raw))) for s in raw.feed(num[a:b], cat[a:b], ts[a:b])
        ]
        part = batch.slice_rows(a, b)
        slides[1] += [
            (s, exact(evaluate(PROFILE, counted))) for s in counted.feed_binned(part, ts[a:b])
        ]
        slides[2] += [
            (s, exact(evaluate(PROFILE, again))) for s in again.feed(back[a:b], cat[a:b], ts[a:b])
        ]
    assert slides[0] == slides[1] == slides[2]
    # Counts exactly as the raw values; extremes exactly as the rebuilt values (the left
    # edges of inner bins: only outer bins' extremes are read by any statistic).
    mine, theirs = counted.state_dict(), again.state_dict()
    assert mine.keys() == theirs.keys()
    for key in mine:
        assert np.array_equal(mine[key], theirs[key]), key
    for key in ("num", "cat", "slot_events", "ts_min", "ts_max", "slot_id"):
        assert np.array_equal(mine[key], raw.state_dict()[key]), key
    assert exact(evaluate(PROFILE, counted)) == exact(evaluate(PROFILE, raw))


def test_codes_that_do_not_fit_the_profile_are_refused() -> None:
    num = np.array([[0.1, 0.2]])
    rows = binned(num, np.array([[1]]), np.array([1.0]))
    bad = BinnedRows(
        np.array([[250, 1, 1]], np.uint8), rows.num_cols, rows.cat_cols,
        rows.outer_row, rows.outer_col, rows.outer_value,
    )  # fmt: skip
    win = SlotWindow(PROFILE, CountWindowSpec(20, 5))
    with pytest.raises(ValueError, match="out of range"):
        list(win.feed_binned(bad, np.array([1.0])))
    assert win.events == 0
    lost = BinnedRows(
        rows.codes, rows.num_cols, rows.cat_cols, np.array([3], np.int32),
        np.array([0], np.int32), np.array([99.0]),
    )  # fmt: skip
    with pytest.raises(ValueError, match="outside"):
        list(win.feed_binned(lost, np.array([1.0])))
