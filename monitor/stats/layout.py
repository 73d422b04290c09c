"""Kernel-ready arrays derived once from a reference profile (private)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from monitor.stats.bin_grid import BinGrid, build_grid
from monitor.stats.binning import padded_width
from monitor.stats.profile import CategoricalProfile, NumericProfile, ReferenceProfile


@dataclass(frozen=True)
class Layout:
    """Features x bins arrays for the kernels; row order = profile order per kind."""

    n_numeric: int
    n_categorical: int
    num_width: int  # max bins + 1 (missing column)
    cat_width: int  # max categories + 2 + 1 (missing column)
    padded_edges: np.ndarray  # (F, P) edges padded with +inf to binning.padded_width
    n_edges: np.ndarray  # (F,)
    n_bins: np.ndarray  # (F,) = n_edges + 1
    ref_num: np.ndarray  # (F, num_width - 1) reference counts
    bucket: np.ndarray  # (F, num_width - 1) PSI bucket of each fine bin
    n_buckets: np.ndarray  # (F,)
    mids: np.ndarray  # (F, num_width - 1) support points; outer ones filled per window
    ref_points: np.ndarray  # (F, num_width - 1)
    first_edge: np.ndarray  # (F,) e0 (or the reference midpoint for one-bin features)
    last_edge: np.ndarray  # (F,)
    scale: np.ndarray  # (F,) reference std, 1 where it is 0 or undefined
    ref_missing_ratio: np.ndarray  # (F + C,) in profile order of kinds
    n_cats: np.ndarray  # (C,) K + 2
    ref_cat: np.ndarray  # (C, cat_width - 1)
    grid: BinGrid  # per numeric feature, the cell table that finds a value's bin


def psi_buckets(counts: np.ndarray, buckets: int) -> np.ndarray:
    """Bucket of each fine bin: ``floor(buckets * C_{i-1} / n)``, renumbered 0, 1, ...

    ``C_{i-1}`` is the reference count below bin ``i``, so buckets are equal-frequency to
    within one fine bin, and never empty because every fine bin has reference mass.
    """
    n = int(counts.sum())
    if n == 0:
        return np.zeros(counts.size, np.int64)
    below = np.concatenate(([0], np.cumsum(counts)[:-1]))
    raw = (buckets * below) // n
    return np.unique(raw, return_inverse=True)[1].astype(np.int64)


def _build(profile: ReferenceProfile) -> Layout:
    nums = [f for f in profile.features.values() if isinstance(f, NumericProfile)]
    cats = [f for f in profile.features.values() if isinstance(f, CategoricalProfile)]
    nf, nc = len(nums), len(cats)
    bmax = max((f.edges.size + 1 for f in nums), default=1)
    p = padded_width(bmax - 1)
    padded = np.full((nf, p), math.inf)
    n_edges = np.zeros(nf, np.int64)
    ref_num = np.zeros((nf, bmax), np.int64)
    bucket = np.zeros((nf, bmax), np.int64)
    n_buckets = np.zeros(nf, np.int64)
    mids = np.zeros((nf, bmax))
    ref_points = np.zeros((nf, bmax))
    first = np.zeros(nf)
    last = np.zeros(nf)
    scale = np.ones(nf)
    for i, f in enumerate(nums):
        k = f.edges.size
        padded[i, :k] = f.edges
        n_edges[i] = k
        ref_num[i, : k + 1] = f.counts
        b = psi_buckets(f.counts, profile.psi_buckets)
        bucket[i, : k + 1] = b
        n_buckets[i] = int(b.max()) + 1
        centre = 0.5 * (f.min + f.max) if math.isfinite(f.min) else 0.0
        if k == 0:
            first[i] = last[i] = centre
            mids[i, 0] = ref_points[i, 0] = centre
        else:
            first[i], last[i] = f.edges[0], f.edges[-1]
            mids[i, 1:k] = 0.5 * (f.edges[:-1] + f.edges[1:])
            mids[i, 0], mids[i, k] = first[i], last[i]
            ref_points[i, : k + 1] = mids[i, : k + 1]
            if math.isfinite(f.min):
                ref_points[i, 0] = min(f.min, first[i])
                ref_points[i, k] = max(f.max, last[i])
        # pad unused columns with the last point so the arrays stay sorted
        mids[i, k + 1 :] = mids[i, k]
        ref_points[i, k + 1 :] = ref_points[i, k]
        if math.isfinite(f.std) and f.std > 0:
            scale[i] = f.std
    kmax = max((len(f.categories) + 2 for f in cats), default=1)
    n_cats = np.array([len(f.categories) + 2 for f in cats], np.int64)
    ref_cat = np.zeros((nc, kmax), np.int64)
    for i, c in enumerate(cats):
        ref_cat[i, : c.counts.size] = c.counts
    ratio = np.array(
        [f.missing / (f.n + f.missing) if f.n + f.missing else 0.0 for f in nums + cats]
    )
    return Layout(
        nf, nc, bmax + 1, kmax + 1, padded, n_edges, n_edges + 1, ref_num, bucket, n_buckets,
        mids, ref_points, first, last, scale, ratio, n_cats, ref_cat,
        build_grid(padded, n_edges),
    )  # fmt: skip


def layout_of(profile: ReferenceProfile) -> Layout:
    """The profile's layout, built on first use and cached on the (immutable) profile."""
    cache = profile._cache  # noqa: SLF001 - the profile's own memo slot
    cached = cache.get("layout")
    if cached is None:
        cached = cache["layout"] = _build(profile)
    assert isinstance(cached, Layout)  # noqa: S101 - narrowing for mypy
    return cached
