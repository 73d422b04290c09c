"""Tables of the sequential detectors (:mod:`monitor.stats.sequential`): the normal
scores of the reference cells, the likelihood-ratio scale of each CUSUM side, the floored
reference shares of ``bin_cusum``, built once per profile."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from monitor.stats.binning import padded_width
from monitor.stats.profile import NumericProfile, ReferenceProfile

#: The sequential tests, in registry order.
SEQUENTIAL_TESTS = ("cusum", "bin_cusum")
#: Reference values of the location and scale CUSUMs (in standard units of the score):
#: a CUSUM with reference value ``k`` is optimal for a shift of ``2 k``; 0.05 keeps 0.1 sd
#: shifts detectable, larger ones are found the faster anyway.
K_LOCATION = 0.05
K_SCALE = 0.1
#: A second location pair for large shifts (optimal near 0.5 sd), found in a few hundred
#: events where the 0.05 pair needs twice as many.
K_LOCATION_FAST = 0.25
#: A third pair between them (optimal near 0.25 sd), where neither of the others has much
#: drift: the three approximate a likelihood ratio for an unknown shift size.
K_LOCATION_MID = 0.125
#: Reference value of the tail sides, on the standardised sum of the location and scale
#: scores: mass moving out into one tail (a minority of events far out on one side, as a
#: mixture or a contamination makes) raises both scores at once, and this side gains about
#: twice the drift per event of either alone there (a 10 % mixture at +2 sd: 0.032 against
#: 0.016 location and 0.020 scale, in log-likelihood ratio).
K_TAIL = 0.15
#: Mixture weight of the recent data in ``bin_cusum``'s alternative, and its memory.
MIXTURE = 0.5
EWMA_WEIGHT = 1.0 / 200.0
#: Floor of a reference share in ``bin_cusum`` (as the window tests' epsilon policy).
EPSILON = 1e-4
#: Sides of ``cusum``: location up, location down, scale up, scale down, then location up
#: and down with ``K_LOCATION_FAST``, then with ``K_LOCATION_MID``, then the upper and the
#: lower tail (``K_TAIL``).
SIDES = 10
#: Earlier layouts of ``SequentialDetectors.stats`` (columns -> where each went): six sides
#: (before the middle pair) and eight (before the tail sides), each then ``bin_cusum``.
#: A side that did not exist starts from 0, as after an alarm.
OLD_LAYOUTS = {7: (0, 1, 2, 3, 4, 5, SIDES), 9: (0, 1, 2, 3, 4, 5, 6, 7, SIDES)}
#: Thresholds without a budget (log-likelihood-ratio units: average run length to a false
#: alarm of at least ``e**20``, 485 million events, per detector).
DEFAULT_THRESHOLD = 20.0
#: Detector columns of ``SequentialDetectors.stats``: the cusum sides, then bin_cusum.
BIN = SIDES


def _ndtri(u: np.ndarray) -> np.ndarray:
    from scipy import special  # imported on first use: most configs never need it

    out: np.ndarray = special.ndtri(u)
    return out


def normal_scores(p: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Location and scale scores of the cells with shares ``p`` (mean 0, variance 1 under
    ``p``; see the module docstring). Quantiles are clipped to ``[0.5/n, 1 - 0.5/n]``."""
    p = np.asarray(p, np.float64)
    cum = np.concatenate(([0.0], np.cumsum(p)))
    cum /= cum[-1] if cum[-1] > 0 else 1.0
    eps = 0.5 / max(n, 1)
    z = _ndtri(np.clip(cum, eps, 1.0 - eps))
    phi = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    mid = 0.5 * (z[:-1] + z[1:])
    width = np.diff(cum)
    s = np.where(width > 1e-12, (phi[:-1] - phi[1:]) / np.maximum(width, 1e-300), mid)
    loc = _standardised(s, p)
    return loc, _standardised(loc * loc, p)


def tail_scores(loc: np.ndarray, scale: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower tail scores of the cells: ``scale + loc`` and ``scale - loc``
    standardised under ``p`` (high in one tail, low in the middle and the other tail)."""
    return _standardised(scale + loc, p), _standardised(scale - loc, p)


def _standardised(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    w = p / p.sum() if p.sum() > 0 else np.full(p.shape, 1.0 / max(p.size, 1))
    mean = float(w @ x)
    sd = math.sqrt(float(w @ ((x - mean) ** 2)))
    return (x - mean) / sd if sd > 0 else np.zeros_like(x)


def lr_scale(x: np.ndarray, p: np.ndarray) -> float:
    r"""The :math:`\theta > 0` with :math:`\sum_c p_c e^{\theta x_c} = 1` (``inf`` when no
    cell of positive share can increase the CUSUM, i.e. the side can never alarm)."""
    w = p / p.sum()
    live = w > 0
    x, w = x[live], w[live]
    if x.max() <= 0 or w @ x >= 0:
        return math.inf

    def excess(theta: float) -> float:
        m = float(np.max(theta * x))
        return m + math.log(float(w @ np.exp(theta * x - m)))

    hi = 1.0
    while excess(hi) < 0:
        hi *= 2.0
    lo = 0.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if excess(mid) < 0:
            lo = mid
        else:
            hi = mid
    return hi


def _side_increments(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    theta = lr_scale(x, p)
    if not math.isfinite(theta):
        return np.full(x.shape, -1.0)  # never increases: the side cannot alarm
    out: np.ndarray = theta * x
    return out


@dataclass(frozen=True)
class SequentialPlan:
    """Kernel-ready tables of one profile's sequential detectors.

    Features are indexed as in the window's columns: numeric ones (``0..nf-1``, the
    profile's ``numeric_names``) then categorical ones. ``cusum[f]``/``bins[f]`` say which
    features run which test; ``increments`` (numeric features x sides x cells) are the
    cusum's, on the log-likelihood-ratio scale; ``reference`` (features x cells) the floored
    reference shares of ``bin_cusum``; ``h`` (features x 2) the thresholds (cusum, bin_cusum).
    """

    names: tuple[str, ...]
    n_numeric: int
    edges: np.ndarray  # numeric features x width, padded with +inf
    n_cells: np.ndarray  # features
    increments: np.ndarray  # numeric features x SIDES x cells
    reference: np.ndarray  # features x cells
    cusum: np.ndarray  # bool, features
    bins: np.ndarray  # bool, features
    h: np.ndarray  # features x 2

    @property
    def active(self) -> bool:
        return bool(self.cusum.any() or self.bins.any())

    def with_thresholds(self, h: np.ndarray) -> SequentialPlan:
        return SequentialPlan(**{**self.__dict__, "h": np.ascontiguousarray(h, np.float64)})


def build_plan(
    profile: ReferenceProfile,
    tests: Mapping[str, Sequence[str]],
    thresholds: Mapping[str, Mapping[str, float | None]],
) -> SequentialPlan:
    """The tables of ``profile``'s features running ``cusum``/``bin_cusum`` (``tests``:
    feature -> test names; ``thresholds``: feature -> test -> ``h``, ``None`` for a test
    that is computed and exported but never alarms)."""
    numeric = list(profile.numeric_names)
    names = (*numeric, *profile.categorical_names)
    cells = [len(profile.features[n].counts) for n in names]
    width = max(cells, default=1)
    nf = len(numeric)
    edge_width = padded_width(max((c - 1 for c in cells[:nf]), default=0))
    edges = np.full((nf, edge_width), np.inf)
    increments = np.zeros((nf, SIDES, width))
    reference = np.zeros((len(names), width))
    h = np.full((len(names), 2), np.inf)
    cusum = np.zeros(len(names), np.bool_)
    bins = np.zeros(len(names), np.bool_)
    for i, name in enumerate(names):
        f = profile.features[name]
        counts = np.asarray(f.counts, np.float64)
        k = counts.size
        chosen = tests.get(name, ())
        limits = thresholds.get(name, {})
        p = counts / counts.sum() if counts.sum() > 0 else np.full(k, 1.0 / k)
        if isinstance(f, NumericProfile):
            edges[i, : len(f.edges)] = f.edges
            if "cusum" in chosen and counts.sum() > 0:
                loc, scale = normal_scores(p, int(f.n))
                upper, lower = tail_scores(loc, scale, p)
                for side, x in enumerate(
                    (
                        loc - K_LOCATION, -loc - K_LOCATION, scale - K_SCALE, -scale - K_SCALE,
                        loc - K_LOCATION_FAST, -loc - K_LOCATION_FAST,
                        loc - K_LOCATION_MID, -loc - K_LOCATION_MID,
                        upper - K_TAIL, lower - K_TAIL,
                    )
                ):  # fmt: skip
                    increments[i, side, :k] = _side_increments(x, p)
                cusum[i] = True
                h[i, 0] = limit(limits.get("cusum"))
        if "bin_cusum" in chosen:
            floored = np.maximum(p, EPSILON)
            reference[i, :k] = floored / floored.sum()
            bins[i] = True
            h[i, 1] = limit(limits.get("bin_cusum"))
    return SequentialPlan(
        names=names, n_numeric=nf, edges=edges, n_cells=np.array(cells, np.int64),
        increments=increments, reference=reference, cusum=cusum, bins=bins, h=h,
    )  # fmt: skip


def limit(value: float | None) -> float:
    return math.inf if value is None else float(value)
