"""The grid binning path against the binary search and ``np.searchsorted``, bit for bit."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.stats import CountWindowSpec, FeatureKind, SlotWindow, build_profile
from monitor.stats.bin_grid import MAX_CELLS, BinGrid, build_grid
from monitor.stats.binning import numeric_kernel, padded_width
from monitor.stats.slot_batch import EdgeTable, count_open_slots

# Doubles a grid rounds badly: signed zeros, subnormals, the extremes, values a few ulps
# apart, and the infinities.
_SPECIAL = [
    0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, -2.2250738585072014e-308,
    1.7976931348623157e308, -1.7976931348623157e308, 1.0, 1.0 + 2**-52, 1.0 - 2**-53,
    -1.0, 0.1, 0.30000000000000004, 1e-300, 1e300, 123456.789,
]  # fmt: skip
_finite = st.one_of(
    st.sampled_from(_SPECIAL),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(-10.0, 10.0),
    st.integers(-50, 50).map(float),
)


@st.composite
def _edges(draw: st.DrawFn) -> np.ndarray:
    """Sorted finite edges, 0 to 140 of them (often 128: a full row, no ``+inf`` padding
    after it): spread over a range (the grid's case: some duplicated, some an ulp apart),
    or drawn from a few arbitrary doubles (mostly too crowded for a grid)."""
    k = draw(st.one_of(st.integers(0, 140), st.just(128)))
    if draw(st.integers(0, 3)) == 0:
        base = draw(st.lists(_finite, min_size=min(k, 1), max_size=max(1, k // 3 + 1)))
        picked = draw(st.lists(st.sampled_from(base), min_size=k, max_size=k)) if base else []
        return np.sort(np.array(picked, np.float64))
    low = draw(_finite)
    width = draw(st.sampled_from([5e-324, 1e-300, 1e-9, 1.0, 1e6, 1e300, 1.7e308]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32)))
    shape = draw(st.sampled_from(["uniform", "normal", "grid"]))
    share = {
        "uniform": rng.random(k),
        "normal": rng.normal(0.5, 0.15, k),
        "grid": np.linspace(0.0, 1.0, k),  # on cell boundaries, where rounding bites
    }[shape]
    with np.errstate(over="ignore"):  # past the largest double: dropped below
        edges = (low + width * share).tolist()
    for i in draw(st.lists(st.integers(0, max(0, k - 1)), max_size=4)) if k else []:
        edges[i] = edges[(i + 1) % k]  # a duplicate
        edges[(i + 2) % k] = math.nextafter(edges[i], math.inf)  # an ulp apart
    found = np.sort(np.array(edges, np.float64))
    return found[np.isfinite(found)]


def _near(edges: np.ndarray, draw: st.DrawFn) -> list[float]:
    """Values on, and one ulp either side of, some edges."""
    if not edges.size:
        return []
    picked = draw(st.lists(st.sampled_from(edges.tolist()), max_size=40))
    return [
        y for x in picked for y in (x, math.nextafter(x, -math.inf), math.nextafter(x, math.inf))
    ]


@st.composite
def _case(draw: st.DrawFn) -> tuple[list[np.ndarray], np.ndarray]:
    features = [draw(_edges()) for _ in range(draw(st.integers(1, 3)))]
    extra = [math.nan, math.inf, -math.inf]
    rows = draw(st.integers(0, 300))
    columns = []
    for edges in features:
        pool = _near(edges, draw) + extra + draw(st.lists(_finite, max_size=60))
        columns.append(draw(st.lists(st.sampled_from(pool), min_size=rows, max_size=rows)))
    return features, np.array(columns, np.float64).reshape(len(features), rows).T.copy()


def _pad(features: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Edges padded as a layout pads them."""
    width = padded_width(max(e.size for e in features))
    pad = np.full((len(features), width), np.inf)
    for i, e in enumerate(features):
        pad[i, : e.size] = e
    return pad, np.array([e.size for e in features], np.int64)


def _run(values: np.ndarray, pad: np.ndarray, n_edges: np.ndarray, grid: BinGrid) -> tuple:
    f = pad.shape[0]
    out = np.zeros((f, int(n_edges.max()) + 2), np.int64)
    low, high = np.full(f, np.inf), np.full(f, -np.inf)
    numeric_kernel(pad.shape[1])(values, pad, n_edges, *grid, out, low, high)
    return out, low, high


def _no_grid(grid: BinGrid) -> BinGrid:
    return grid._replace(top=np.full(grid.top.shape, -1.0))


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.tobytes() == b.tobytes()


@settings(max_examples=300, deadline=None)
@given(_case())
def test_grid_bins_every_double_as_searchsorted_and_the_binary_search(
    case: tuple[list[np.ndarray], np.ndarray],
) -> None:
    features, values = case
    pad, n_edges = _pad(features)
    grid = build_grid(pad, n_edges)
    out, low, high = _run(values, pad, n_edges, grid)
    old_out, old_low, old_high = _run(values, pad, n_edges, _no_grid(grid))
    assert np.array_equal(out, old_out)
    assert _same_bits(low, old_low) and _same_bits(high, old_high)  # -0.0 stays -0.0
    for f, edges in enumerate(features):
        col = values[:, f]
        present = col[~np.isnan(col)]
        expect = np.bincount(
            np.searchsorted(edges, present, side="right"), minlength=edges.size + 1
        )
        assert out[f, : edges.size + 1].tolist() == expect.tolist()
        assert out[f, -1] == np.isnan(col).sum()
        finite = col[np.isfinite(col)]
        if finite.size:
            assert (low[f], high[f]) == (finite.min(), finite.max())


def test_degenerate_features_get_a_grid_that_is_exact() -> None:
    features = [
        np.zeros(0), np.array([0.5]), np.array([2.0, 2.0, 2.0]), np.array([-0.0, 0.0]),
        np.array([5e-324, 1e-323]), np.array([-1.7976931348623157e308, 1.7976931348623157e308]),
    ]  # fmt: skip
    pad, n_edges = _pad(features)
    grid = build_grid(pad, n_edges)
    assert (grid.top >= 0).all()  # all exact through a grid, none too crowded
    probes = [v for e in features for x in e for v in (x, math.nextafter(x, -1e309))]
    values = np.array(probes + [math.nan, math.inf, -math.inf, 0.0, -0.0] * 3)
    values = np.repeat(values[:, None], len(features), axis=1)
    out, _, _ = _run(values, pad, n_edges, grid)
    for f, edges in enumerate(features):
        col = values[:, f][~np.isnan(values[:, f])]
        expect = np.bincount(np.searchsorted(edges, col, side="right"), minlength=edges.size + 1)
        assert out[f, : edges.size + 1].tolist() == expect.tolist()


def test_crowded_or_nonfinite_edges_keep_the_binary_search() -> None:
    heavy = np.concatenate([np.linspace(0.0, 1e-6, 99), [1e6]])  # one far edge: 99 in a cell
    pad, n_edges = _pad([heavy, np.array([0.0, np.inf])])
    grid = build_grid(pad, n_edges)
    assert grid.top.tolist() == [-1.0, -1.0]
    normal = np.quantile(np.random.default_rng(0).normal(size=10_000), np.linspace(0.01, 0.99, 99))
    pad, n_edges = _pad([normal])
    grid = build_grid(pad, n_edges)
    cells = int(grid.top[0]) + 1
    assert grid.top[0] >= 0 and cells <= MAX_CELLS and grid.steps[0] <= 2
    assert grid.table.shape == (cells + 1,) and grid.table[-1] == 99


def test_many_windows_kernel_bins_through_grids_and_the_search_alike() -> None:
    rng = np.random.default_rng(3)
    data = {"x": rng.normal(size=2000), "z": rng.lognormal(0.0, 4.0, size=2000)}
    profile = build_profile("m", data, dict.fromkeys(data, FeatureKind.NUMERIC))
    windows = [SlotWindow(profile, CountWindowSpec(events=4000, slide=2000)) for _ in range(2)]
    lay = windows[0].layout
    assert lay.grid.top[0] >= 0 and lay.grid.top[1] < 0  # x through its grid, z searched
    for w in windows:  # open a first slot: the batched path counts into open ones
        list(w.feed(np.zeros((1, 2)), np.zeros((1, 0), np.int64), np.ones(1)))
    edges = [lay.padded_edges[f, : lay.n_edges[f]] for f in range(2)]
    picked = np.stack([rng.choice(e, 300) for e in edges], axis=1)
    values = np.concatenate([picked, np.nextafter(picked, -np.inf), rng.normal(size=(300, 2))])
    values[::17] = np.nan
    values[1::19] = np.inf
    values[2::23] = -np.inf
    parts = np.array_split(values, 2)
    counted = count_open_slots(
        EdgeTable(), windows, parts, [np.zeros((len(p), 0), np.int64) for p in parts],
        [np.ones(len(p)) for p in parts],
    )  # fmt: skip
    assert counted.ok == [True, True]
    for w, part in zip(windows, parts, strict=True):
        got = w.counts()
        for f, e in enumerate(edges):
            col = np.concatenate([[0.0], part[:, f]])
            present = col[~np.isnan(col)]
            expect = np.bincount(np.searchsorted(e, present, side="right"), minlength=e.size + 1)
            assert got.numeric[f, : e.size + 1].tolist() == expect.tolist()
            finite = col[np.isfinite(col)]
            assert (got.numeric_low[f], got.numeric_high[f]) == (finite.min(), finite.max())
