r"""Sequential drift detectors: CUSUMs that look at every event, not at window slides.

Two tests, per feature, run by :class:`SequentialDetectors` over each batch's columns in
one Numba kernel (rows in order, features inside: the state is a few numbers a feature):

``cusum`` (numeric features): ten one-sided CUSUMs (Page, 1954) on the value
standardised by the reference. Standardising is by *normal scores of the reference
cells*: a value in fine bin ``c`` (reference share ``p_c``, cumulative share ``a_c`` below
it) scores the conditional mean of a standard normal over the bin's quantile range,

.. math:: s_c = \frac{\varphi(\Phi^{-1}(a_c)) - \varphi(\Phi^{-1}(a_c + p_c))}{p_c},

recentred and rescaled so that :math:`\sum_c p_c s_c = 0` and :math:`\sum_c p_c s_c^2 =
1` exactly under the reference. This is robust to any reference law (heavy tails, skew,
ties of a count feature: a value's score never exceeds the reference's extreme bins),
unlike ``(x - mean) / sd``. The scale score is :math:`t_c = (s_c^2 - 1)` standardised the
same way. The sides are location up/down (increments :math:`\pm s_c - k_\mu`), scale
up/down (:math:`\pm t_c - k_\sigma`) and location up/down again with a larger reference
value, for large shifts, and with one between (``K_LOCATION``, ``K_SCALE``,
``K_LOCATION_FAST``, ``K_LOCATION_MID``): the three location pairs approximate a
likelihood ratio for a shift of unknown size (a 0.25 sd shift gives the 0.25 pair no drift).
The last two sides watch one tail each: the standardised sums ``t_c + s_c`` (upper) and
``t_c - s_c`` (lower) less ``K_TAIL``, for mass moving out into one tail (a mixture, a
contamination), which moves location and scale together and gives neither alone much drift.

``bin_cusum`` (numeric and categorical): a CUSUM of multinomial log-likelihood ratios
over the reference cells (the fine bins; the vocabulary, ``__other__`` and ``__unseen__``),
:math:`\log(q_{t,c} / \tilde p_c)` for the event's cell ``c``, against the reference shares
:math:`\tilde p` (floored at ``EPSILON`` and renormalised, so an unseen category scores
finitely) and an alternative that is a mixture towards the recent data,
:math:`q_t = (1 - \lambda) \tilde p + \lambda r_t`, where :math:`r_t` is an exponentially
weighted average (weight ``EWMA_WEIGHT``, about ``1 / EWMA_WEIGHT`` = 200 events of memory:
a longer memory lets the reference's own sampling error build up into long excursions) of the
cell indicators *before* event ``t``, started at :math:`\tilde p`. Because :math:`q_t` is
predictable, :math:`e^{S}` of every excursion is a non-negative martingale under the
reference (the adaptive CUSUM of Lorden and Pollak, 2005), so any change of shape that
moves mass between cells is detected, and the false-alarm rate is controlled the same way
as for the CUSUMs above.

Every increment is put on the log-likelihood-ratio scale: a side's increments ``x_c`` are
multiplied by the :math:`\theta > 0` solving :math:`\sum_c p_c e^{\theta x_c} = 1` (computed
exactly from the reference), so :math:`e^{\theta x}` is a likelihood ratio and the average
run length to a false alarm of a threshold ``h`` is at least :math:`e^h` (Lorden, 1971).
:mod:`monitor.stats.sequential_calibration` turns a false-alarm budget into ``h``.

Re-arm: a CUSUM that crosses ``h`` raises an alarm and restarts from 0 at once, so a
change that persists alarms again after about ``h / drift`` events, and a false alarm is
followed by a fresh detector (the renewal that makes ``ARL = E[time between alarms]``).
The ``bin_cusum`` alternative keeps its memory of the recent data across an alarm.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from numba import njit

from monitor.stats.sequential_plan import (  # this module's API too
    BIN as BIN,
)
from monitor.stats.sequential_plan import (
    DEFAULT_THRESHOLD as DEFAULT_THRESHOLD,
)
from monitor.stats.sequential_plan import (
    EPSILON as EPSILON,
)
from monitor.stats.sequential_plan import (
    EWMA_WEIGHT as EWMA_WEIGHT,
)
from monitor.stats.sequential_plan import (
    K_LOCATION as K_LOCATION,
)
from monitor.stats.sequential_plan import (
    K_SCALE as K_SCALE,
)
from monitor.stats.sequential_plan import (
    K_TAIL as K_TAIL,
)
from monitor.stats.sequential_plan import (
    MIXTURE as MIXTURE,
)
from monitor.stats.sequential_plan import (
    OLD_LAYOUTS as OLD_LAYOUTS,
)
from monitor.stats.sequential_plan import (
    SEQUENTIAL_TESTS as SEQUENTIAL_TESTS,
)
from monitor.stats.sequential_plan import (
    SIDES as SIDES,
)
from monitor.stats.sequential_plan import (
    SequentialPlan as SequentialPlan,
)
from monitor.stats.sequential_plan import (
    build_plan as build_plan,
)
from monitor.stats.sequential_plan import (
    limit as limit,
)
from monitor.stats.sequential_plan import (
    lr_scale as lr_scale,
)
from monitor.stats.sequential_plan import (
    normal_scores as normal_scores,
)
from monitor.stats.sequential_plan import (
    tail_scores as tail_scores,
)

#: Alarm rows a kernel call may write (bounds a batch's chunk: 2 x features x rows).
ALARM_BUFFER = 1 << 16


# --------------------------------------------------------------------------- kernels


@cache
def cells_kernel(width: int) -> Callable[..., np.ndarray]:
    """The kernel giving features x rows cell indexes (-1 missing) of a batch:
    ``kernel(numeric, codes, edges, n_cells)`` with ``numeric`` features x rows (one
    contiguous column a feature), ``codes`` rows x features, taken as they are.

    A value's cell is the number of edges ``<= value`` (as the window bins it), found by
    the window's branch-free search over edges padded with +inf to ``width`` (a power of
    two; :func:`monitor.stats.binning.padded_width`), four rows at a time; the depth is a
    constant of the kernel so the search unrolls (see
    :func:`monitor.stats.binning.numeric_kernel`, whose reasons hold here)."""
    if width < 1 or width & (width - 1):
        raise ValueError(f"width must be a power of two, got {width}")
    depth = (width - 1).bit_length()

    @njit(cache=True, nogil=True)
    def _cells(
        numeric: np.ndarray, codes: np.ndarray, edges: np.ndarray, n_cells: np.ndarray
    ) -> np.ndarray:  # pragma: no cover - compiled
        nf, rows = numeric.shape
        nc = codes.shape[1]
        out = np.empty((nf + nc, rows), np.int32)
        for f in range(nf):
            last = n_cells[f] - 1
            e = edges[f]
            v = numeric[f]
            o = out[f]
            r = 0
            while r + 4 <= rows:
                a = v[r]
                b = v[r + 1]
                c = v[r + 2]
                d = v[r + 3]
                pa = 0
                pb = 0
                pc = 0
                pd = 0
                step = 1 << depth
                for _ in range(depth):
                    step >>= 1
                    pa += step * (e[pa + step - 1] <= a)
                    pb += step * (e[pb + step - 1] <= b)
                    pc += step * (e[pc + step - 1] <= c)
                    pd += step * (e[pd + step - 1] <= d)
                o[r] = min(pa + (e[pa] <= a), last) if a == a else -1
                o[r + 1] = min(pb + (e[pb] <= b), last) if b == b else -1
                o[r + 2] = min(pc + (e[pc] <= c), last) if c == c else -1
                o[r + 3] = min(pd + (e[pd] <= d), last) if d == d else -1
                r += 4
            while r < rows:
                a = v[r]
                pa = 0
                step = 1 << depth
                for _ in range(depth):
                    step >>= 1
                    pa += step * (e[pa + step - 1] <= a)
                o[r] = min(pa + (e[pa] <= a), last) if a == a else -1
                r += 1
        for j in range(nc):
            for r in range(rows):
                out[nf + j, r] = codes[r, j]
        return out

    return _cells


def cells_of(
    numeric: np.ndarray, codes: np.ndarray, edges: np.ndarray, n_cells: np.ndarray
) -> np.ndarray:
    """:func:`cells_kernel` for ``edges``' width; ``numeric`` rows x features."""
    kernel = cells_kernel(edges.shape[1])
    return kernel(
        np.ascontiguousarray(np.asarray(numeric, np.float64).T),
        np.ascontiguousarray(codes, np.int64), edges, n_cells,
    )  # fmt: skip


@njit(cache=True, nogil=True)
def run_detectors(
    cells: np.ndarray,
    increments: np.ndarray,
    reference: np.ndarray,
    cusum: np.ndarray,
    bins: np.ndarray,
    h: np.ndarray,
    mixture: float,
    weight: float,
    stats: np.ndarray,
    recent: np.ndarray,
    recent_scale: np.ndarray,
    alarms: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """Advance every detector over ``cells`` (features x rows, -1 missing), feature by
    feature (they are independent), rows in order.

    ``stats`` (features x 11: ten cusum sides, bin_cusum) and ``recent`` (features x
    cells, the EWMA of cell indicators, stored divided by ``recent_scale`` so an update
    touches one cell) are updated in place. Each crossing is written to ``alarms`` (row,
    feature, test 0 cusum / 1 bin_cusum, statistic x 1e6 rounded) and restarts that CUSUM
    at 0; ``alarms`` must hold ``2 x features x rows`` (the most there can be). Returns
    the alarms written.
    """
    features, rows = cells.shape
    n = 0
    keep = 1.0 - weight
    for f in range(features):
        if cusum[f]:
            inc = increments[f]
            limit = h[f, 0]
            s0 = stats[f, 0]
            s1 = stats[f, 1]
            s2 = stats[f, 2]
            s3 = stats[f, 3]
            s4 = stats[f, 4]
            s5 = stats[f, 5]
            s6 = stats[f, 6]
            s7 = stats[f, 7]
            s8 = stats[f, 8]
            s9 = stats[f, 9]
            r = 0
            while r < rows:
                c = cells[f, r]
                if c >= 0:
                    s0 = max(s0 + inc[0, c], 0.0)
                    s1 = max(s1 + inc[1, c], 0.0)
                    s2 = max(s2 + inc[2, c], 0.0)
                    s3 = max(s3 + inc[3, c], 0.0)
                    s4 = max(s4 + inc[4, c], 0.0)
                    s5 = max(s5 + inc[5, c], 0.0)
                    s6 = max(s6 + inc[6, c], 0.0)
                    s7 = max(s7 + inc[7, c], 0.0)
                    s8 = max(s8 + inc[8, c], 0.0)
                    s9 = max(s9 + inc[9, c], 0.0)
                    top = max(
                        max(max(max(s0, s1), max(s2, s3)), max(max(s4, s5), max(s6, s7))),
                        max(s8, s9),
                    )
                    if top > limit:
                        alarms[n, 0] = r
                        alarms[n, 1] = f
                        alarms[n, 2] = 0
                        alarms[n, 3] = round(top * 1e6)
                        n += 1
                        s0 = 0.0
                        s1 = 0.0
                        s2 = 0.0
                        s3 = 0.0
                        s4 = 0.0
                        s5 = 0.0
                        s6 = 0.0
                        s7 = 0.0
                        s8 = 0.0
                        s9 = 0.0
                r += 1
            stats[f, 0] = s0
            stats[f, 1] = s1
            stats[f, 2] = s2
            stats[f, 3] = s3
            stats[f, 4] = s4
            stats[f, 5] = s5
            stats[f, 6] = s6
            stats[f, 7] = s7
            stats[f, 8] = s8
            stats[f, 9] = s9
        if bins[f]:
            ref = reference[f]
            mine = recent[f]
            limit = h[f, 1]
            g = recent_scale[f]
            s = stats[f, BIN]
            r = 0
            while r < rows:
                c = cells[f, r]
                if c >= 0:
                    p = ref[c]
                    s = max(s + math.log((1.0 - mixture) + mixture * mine[c] * g / p), 0.0)
                    if s > limit:
                        alarms[n, 0] = r
                        alarms[n, 1] = f
                        alarms[n, 2] = 1
                        alarms[n, 3] = round(s * 1e6)
                        n += 1
                        s = 0.0
                    g *= keep
                    mine[c] += weight / g
                    if g < 1e-200:  # fold the scale into the cells before it underflows
                        for j in range(mine.shape[0]):
                            mine[j] *= g
                        g = 1.0
                r += 1
            stats[f, BIN] = s
            recent_scale[f] = g
    return n


#: What a warm-up compiles when a config runs sequential tests (and
#: ``cells_kernel(bins_width(bins))`` for the configured bins).
SEQUENTIAL_KERNELS = (run_detectors,)


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class Alarm:
    """One detector crossing: the batch row, the feature, the test and its statistic."""

    row: int
    feature: str
    test: str
    statistic: float


class SequentialDetectors:
    """The detectors of one profile and their state (see the module docstring)."""

    def __init__(self, plan: SequentialPlan) -> None:
        self.plan = plan
        features = len(plan.names)
        self.stats = np.zeros((features, SIDES + 1))
        self.recent = np.array(plan.reference, copy=True)
        self.recent_scale = np.ones(features)

    def set_thresholds(self, thresholds: Mapping[str, Mapping[str, float | None]]) -> None:
        """New thresholds (a calibration replaced the defaults); the state is kept."""
        h = np.array(self.plan.h, copy=True)
        for i, name in enumerate(self.plan.names):
            limits = thresholds.get(name, {})
            if self.plan.cusum[i]:
                h[i, 0] = limit(limits.get("cusum"))
            if self.plan.bins[i]:
                h[i, 1] = limit(limits.get("bin_cusum"))
        self.plan = self.plan.with_thresholds(h)

    def run(self, numeric: np.ndarray, codes: np.ndarray) -> list[Alarm]:
        """Advance over a batch's encoded columns (rows in order: numeric values, category
        codes, as the window takes them); the alarms, by row then feature."""
        plan = self.plan
        cells = cells_of(numeric, codes, plan.edges, plan.n_cells)
        return self.run_cells(cells)

    def run_cells(self, cells: np.ndarray) -> list[Alarm]:
        """Advance over ``cells`` (features x rows, from :func:`cells_of`)."""
        plan = self.plan
        features, rows = cells.shape
        # Alarms are bounded by 2 x features x rows: chunks keep that buffer small.
        chunk = max(64, ALARM_BUFFER // max(2 * features, 1))
        found: list[tuple[int, int, int, int]] = []
        for start in range(0, rows, chunk):
            part = np.ascontiguousarray(cells[:, start : start + chunk])
            alarms = np.empty((2 * features * part.shape[1], 4), np.int64)
            n = run_detectors(
                part, plan.increments, plan.reference, plan.cusum, plan.bins, plan.h,
                MIXTURE, EWMA_WEIGHT, self.stats, self.recent, self.recent_scale, alarms,
            )  # fmt: skip
            if n:
                alarms[:n, 0] += start
                found.extend(map(tuple, alarms[:n].tolist()))
        found.sort()
        names = plan.names
        return [Alarm(r, names[f], SEQUENTIAL_TESTS[t], x / 1e6) for r, f, t, x in found]

    def scores(self) -> dict[str, dict[str, float]]:
        """Feature -> test -> the current statistic (cusum: its largest side)."""
        out: dict[str, dict[str, float]] = {}
        top = self.stats[:, :SIDES].max(axis=1).tolist()
        binned = self.stats[:, BIN].tolist()
        for i, name in enumerate(self.plan.names):
            mine: dict[str, float] = {}
            if self.plan.cusum[i]:
                mine["cusum"] = top[i]
            if self.plan.bins[i]:
                mine["bin_cusum"] = binned[i]
            if mine:
                out[name] = mine
        return out

    def state_dict(self) -> dict[str, Any]:
        """The arrays that resume the detectors exactly."""
        return {
            "stats": self.stats.copy(),
            "recent": self.recent.copy(),
            "recent_scale": self.recent_scale.copy(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict`; ``ValueError`` when it does not fit the plan."""
        stats = np.asarray(state["stats"], np.float64)
        if stats.ndim == 2 and stats.shape[1] in OLD_LAYOUTS:  # fewer sides: new ones at 0
            moved = np.zeros((stats.shape[0], SIDES + 1))
            moved[:, list(OLD_LAYOUTS[stats.shape[1]])] = stats
            stats = moved
        recent = np.asarray(state["recent"], np.float64)
        scale = np.asarray(state["recent_scale"], np.float64)
        if (
            stats.shape != self.stats.shape
            or recent.shape != self.recent.shape
            or scale.shape != self.recent_scale.shape
            or not (np.all(np.isfinite(stats)) and np.all(stats >= 0))
            or not (np.all(np.isfinite(scale)) and np.all(scale > 0))
        ):
            raise ValueError("sequential detector state does not fit the profile")
        self.stats = np.ascontiguousarray(stats)
        self.recent = np.ascontiguousarray(recent)
        self.recent_scale = np.ascontiguousarray(scale)
