r"""Drift tests between a reference profile and a window, for all features at once.

Let ``p_i`` (reference) and ``q_i`` (window) be the shares of non-missing values in cell
``i``. Cells are, for numeric features, the fine bins of the profile (KS, Wasserstein) or
the ``psi_buckets`` equal-frequency buckets made by merging them (PSI, KL, JS: coarse
buckets keep these statistics stable on windows of a few thousand events, where most fine
bins hold a handful of values); for categorical features, the vocabulary, ``__other__`` and
``__unseen__``.

Epsilon policy: for PSI and KL, every share is floored at :math:`\varepsilon = 10^{-4}` of
the mass and the floored vector renormalised, :math:`\tilde p_i = \max(p_i, \varepsilon) /
\sum_j \max(p_j, \varepsilon)`. Hence ``PSI = KL(p~||q~) + KL(q~||p~)`` and both stay finite
when a window cell is empty. JS needs no floor.

* **PSI** :math:`\sum_i (\tilde q_i - \tilde p_i) \ln(\tilde q_i / \tilde p_i)` (Yurdakul,
  2018, "Statistical properties of population stability index").
* **KL** :math:`D(\tilde p \| \tilde q) = \sum_i \tilde p_i \ln(\tilde p_i / \tilde q_i)`,
  natural log, reference first (Kullback and Leibler, 1951); equals
  ``scipy.stats.entropy(p~, q~)``.
* **JS distance** :math:`\sqrt{(D(p\|m) + D(q\|m)) / (2 \ln 2)}`, ``m = (p + q) / 2``, in
  [0, 1] (Endres and Schindelin, 2003); equals
  ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.
* **KS** :math:`D = \max_i |F_i - G_i|` over the cumulative fine-bin shares (Smirnov,
  1939), computed exactly as :math:`\max_i |c_i n_2 - d_i n_1| / (n_1 n_2)`. On binned data
  it equals ``scipy.stats.ks_2samp``. On continuous data the binned statistic is a lower
  bound: :math:`0 \le D_{\text{raw}} - D \le \max_i p_i`, because both empirical CDFs are
  monotone inside a bin; with equal-frequency reference bins :math:`\max_i p_i \le 1/b +
  1/n_1`, i.e. at most 0.01 (+1/n) with the default 100 bins. p-value: see
  :func:`ks_p_values`.
* **Wasserstein-1** :math:`\int |F(x) - G(x)| dx` between the binned distributions, each bin's
  mass placed at its midpoint, the outer bins' at the observed minimum and maximum of each
  side (finite values; a one-bin feature at the midrange) (Villani, 2009, for the
  definition; Ramdas et al., 2017, for the CDF form); equals
  ``scipy.stats.wasserstein_distance(u, v, p, q)`` on those points. The exported
  ``wasserstein`` score is normalised by the reference standard deviation (raw distance when
  that is 0).
* **Chi-square** test of homogeneity on the 2 x K table after dropping categories empty on
  both sides, Yates-corrected when K = 2 (Pearson, 1900; Yates, 1934); equals
  ``scipy.stats.chi2_contingency``. p-value from the chi-square distribution with K - 1
  degrees of freedom (``p = 1`` when K = 1).
* **Missing ratio**: the window's missing share minus the reference's; drifted when it
  exceeds ``thresholds.missing_ratio``.

A feature has ``enough_data`` when both the reference and the window hold a non-missing
value; otherwise its scores are NaN and only the missing-ratio check can flag it (an
all-missing window is exactly what that check is for).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from monitor.stats import kernels
from monitor.stats.kernels import _categorical_stats, _ks_exact_sf, _numeric_stats
from monitor.stats.layout import Layout, layout_of
from monitor.stats.profile import FeatureKind, ReferenceProfile
from monitor.stats.window import SlotWindow, WindowCounts

EPSILON = 1e-4
KS_EXACT_MAX_N = 10_000  # as scipy.stats.ks_2samp(method="auto")
SMIRNOV_MAX_N = 10_000  # above it scipy.special.smirnov takes ~0.1 s per call


@dataclass(frozen=True)
class DriftThresholds:
    """Thresholds per test; ``None`` means the test is reported but never flags."""

    psi: float | None = 0.2
    ks: float | None = None
    ks_p_value: float | None = 0.001
    kl: float | None = None
    js: float | None = 0.1
    wasserstein: float | None = None
    chi2_p_value: float | None = 0.001
    missing_ratio: float | None = 0.1


@dataclass(frozen=True)
class DriftTest:
    """One registered test: which kinds it applies to and which thresholds it reads."""

    name: str
    kinds: frozenset[FeatureKind]
    score_key: str | None  # threshold on the score; crossed when score > threshold
    p_value_key: str | None  # threshold on the p-value; crossed when p < threshold


_BOTH = frozenset(FeatureKind)
REGISTRY: Mapping[str, DriftTest] = {
    t.name: t
    for t in (
        DriftTest("psi", _BOTH, "psi", None),
        DriftTest("ks", frozenset({FeatureKind.NUMERIC}), "ks", "ks_p_value"),
        DriftTest("kl", _BOTH, "kl", None),
        DriftTest("js", _BOTH, "js", None),
        DriftTest("wasserstein", frozenset({FeatureKind.NUMERIC}), "wasserstein", None),
        DriftTest("chi2", frozenset({FeatureKind.CATEGORICAL}), None, "chi2_p_value"),
    )
}
TESTS: tuple[str, ...] = tuple(REGISTRY)


@dataclass(frozen=True)
class FeatureResult:
    """Outcome of one feature's tests in one evaluation."""

    name: str
    kind: FeatureKind
    n: int
    missing_ratio: float
    scores: Mapping[str, float]
    p_values: Mapping[str, float]
    crossed: tuple[str, ...]
    drifted: bool
    enough_data: bool


@dataclass(frozen=True)
class DriftResult:
    """Outcome of one evaluation of one model's window."""

    model: str
    window_events: int
    features: tuple[FeatureResult, ...]

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drifted)


# ---------------------------------------------------------------------------- p-values


def ks_p_values(d: np.ndarray, num: np.ndarray, n1: np.ndarray, n2: np.ndarray) -> np.ndarray:
    """Two-sided p-values of the two-sample KS test, as ``scipy.stats.ks_2samp``.

    ``max(n1, n2) <= 10000``: the exact distribution (kernel ``_ks_exact_sf``).
    Otherwise the one-sample distribution of D at ``n_e = round(n1 n2 / (n1 + n2))`` that
    scipy uses (``kstwo``). scipy evaluates it with methods that cost 20-100 ms per call at
    these sizes (Durbin's matrix algorithm, or the exact Smirnov sum), far too slow for a
    per-slide evaluation, so:

    * for ``n_e <= 10,000``, scipy's own closed forms wherever scipy uses them:
      ``2 * smirnov(n_e, D)`` for ``n_e D^2 >= 2.2`` (``>= 4`` when ``n_e <= 140``), 0 above
      ``n_e D^2 = 370``, and the Ruben-Gambino forms at the ends: the same numbers;
    * elsewhere, the Kolmogorov limit with Stephens' (1970) finite-n correction,
      ``Q(D (sqrt(n_e) + 0.12 + 0.11 / sqrt(n_e)))``: within 0.005 absolute of scipy where
      ``p > 0.02`` (0.02 for ``n_e < 1000``), and within 10 % relative below that down to
      ``p = 1e-10`` for ``n_e > 10,000`` (e.g. 0.00105 for 0.001), and below 1e-9 where scipy
      is below 1e-10. Features flagged at the usual
      thresholds are the same as scipy's (checked in the tests and the benchmark).
    """
    p = np.full(d.shape, np.nan)
    ok = np.isfinite(d)
    exact = ok & (np.maximum(n1, n2) <= KS_EXACT_MAX_N)
    if exact.any():
        a = n1[exact].astype(np.int64)
        b = n2[exact].astype(np.int64)
        g = np.gcd(a, b)
        h = np.rint(num[exact] / g).astype(np.int64)  # D * lcm(n1, n2), an exact integer
        out = np.empty(a.size)
        _ks_exact_sf(np.ascontiguousarray(a), np.ascontiguousarray(b), h, out)
        p[exact] = out
    asym = ok & ~(exact & np.isfinite(p))
    if asym.any():
        p[asym] = _kolmogorov_sf(d[asym], np.rint(n1[asym] * n2[asym] / (n1[asym] + n2[asym])))
    result: np.ndarray = np.clip(p, 0.0, 1.0)
    return result


def _kolmogorov_sf(x: np.ndarray, n: np.ndarray) -> np.ndarray:
    sq = np.sqrt(n)
    out = special.kolmogorov(x * (sq + 0.12 + 0.11 / sq))  # Stephens (1970)
    t = n * x
    nx2 = t * x
    # scipy's closed forms where scipy uses them, except that 2 * smirnov(n, x) costs about
    # 0.1 s per call for n_e > 10,000, so there the corrected limit above is kept.
    closed = (nx2 >= np.where(n <= 140, 4.0, 2.2)) | (x >= 0.5)
    use = closed & (n <= SMIRNOV_MAX_N) & (nx2 < 370.0)
    if use.any():
        out[use] = 2.0 * special.smirnov(n[use], x[use])
    out = np.where((n > 140) & (nx2 >= 370.0), 0.0, out)
    with np.errstate(over="ignore", under="ignore"):
        ruben_hi = 2.0 * (1.0 - np.minimum(x, 1.0)) ** n
    out = np.where(t >= n - 1, ruben_hi, out)
    out = np.where(t <= 0.5, 1.0, out)
    out = np.where(x >= 1.0, 0.0, out)
    clipped: np.ndarray = np.clip(out, 0.0, 1.0)
    return clipped


# ---------------------------------------------------------------------------- statistics


def numeric_statistics(lay: Layout, counts: WindowCounts) -> np.ndarray:
    """Kernel output (features x ``kernels.NUM_COLUMNS``) for the numeric features."""
    win = np.ascontiguousarray(counts.numeric[:, :-1])
    rows = np.arange(lay.n_numeric)
    k = lay.n_edges
    pts = lay.mids.copy()
    lo, hi = counts.numeric_low, counts.numeric_high
    seen = np.isfinite(lo)
    lo, hi = np.where(seen, lo, 0.0), np.where(seen, hi, 0.0)
    one = k == 0
    lower = np.where(seen, np.minimum(lo, lay.first_edge), lay.first_edge)
    upper = np.where(seen, np.maximum(hi, lay.last_edge), lay.last_edge)
    pts[rows, 0] = np.where(one, np.where(seen, 0.5 * (lo + hi), lay.first_edge), lower)
    pts[rows, k] = np.where(one, pts[rows, 0], upper)
    tail = np.arange(pts.shape[1])[None, :] > k[:, None]
    pts = np.where(tail, pts[rows, k][:, None], pts)
    out = np.empty((lay.n_numeric, kernels.NUM_COLUMNS))
    _numeric_stats(
        lay.ref_num, win, lay.n_bins, lay.bucket, lay.n_buckets, lay.ref_points,
        np.ascontiguousarray(pts), lay.scale, EPSILON, out,
    )  # fmt: skip
    return out


def categorical_statistics(lay: Layout, counts: WindowCounts) -> np.ndarray:
    """Kernel output (features x ``kernels.CAT_COLUMNS``) for the categorical features."""
    out = np.empty((lay.n_categorical, kernels.CAT_COLUMNS))
    win = np.ascontiguousarray(counts.categorical[:, :-1])
    _categorical_stats(lay.ref_cat, win, lay.n_cats, EPSILON, out)
    return out


def _tests_for(
    name: str, kind: FeatureKind, tests: Mapping[str, Sequence[str]] | Sequence[str]
) -> tuple[str, ...]:
    chosen = tests.get(name, TESTS) if isinstance(tests, Mapping) else tests
    unknown = [t for t in chosen if t not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown drift test(s) {unknown}; valid: {', '.join(TESTS)}")
    if isinstance(tests, Mapping) and name in tests:
        wrong = [t for t in chosen if kind not in REGISTRY[t].kinds]
        if wrong:
            raise ValueError(f"test(s) {wrong} do not apply to {kind} feature {name!r}")
    return tuple(t for t in chosen if kind in REGISTRY[t].kinds)


def evaluate(
    profile: ReferenceProfile,
    window: SlotWindow | WindowCounts,
    *,
    tests: Mapping[str, Sequence[str]] | Sequence[str] = TESTS,
    thresholds: DriftThresholds | Mapping[str, DriftThresholds] = DriftThresholds(),
) -> DriftResult:
    """Run the selected tests on every feature: one kernel call per feature kind.

    ``tests``: names for every feature (each runs where it applies), or a mapping from
    feature name to names (features absent from it run every applicable test).
    ``thresholds``: one set for all features, or per feature (absent ones use defaults).
    """
    lay = layout_of(profile)
    counts = window.counts() if isinstance(window, SlotWindow) else window
    num = numeric_statistics(lay, counts)
    cat = categorical_statistics(lay, counts)
    ks_p = ks_p_values(
        num[:, kernels.NUM_KS_D], num[:, kernels.NUM_KS_NUM],
        num[:, kernels.NUM_N_REF], num[:, kernels.NUM_N_WIN],
    )  # fmt: skip
    chi_p = np.where(
        cat[:, kernels.CAT_DOF] > 0,
        special.chdtrc(np.maximum(cat[:, kernels.CAT_DOF], 1), cat[:, kernels.CAT_CHI2]),
        np.where(np.isnan(cat[:, kernels.CAT_DOF]), np.nan, 1.0),
    )
    events = counts.events
    miss = np.concatenate(
        (counts.numeric[:, -1], counts.categorical[:, -1])
    ) / events if events else np.full(lay.n_numeric + lay.n_categorical, np.nan)  # fmt: skip
    # Python floats from here on: indexing numpy scalars per feature costs more than the maths
    num_rows, cat_rows = num.tolist(), cat.tolist()
    ks_list, chi_list, miss_list = ks_p.tolist(), chi_p.tolist(), miss.tolist()
    ref_miss = lay.ref_missing_ratio.tolist()
    chosen_by_kind: dict[FeatureKind, tuple[str, ...]] = {}
    per_feature = isinstance(tests, Mapping)
    default_th = DriftThresholds()
    results: list[FeatureResult] = []
    numeric_names = profile.numeric_names
    row_of = {n: (FeatureKind.NUMERIC, i) for i, n in enumerate(numeric_names)}
    row_of.update(
        {n: (FeatureKind.CATEGORICAL, i) for i, n in enumerate(profile.categorical_names)}
    )
    for name in profile.features:
        kind, i = row_of[name]
        th = thresholds.get(name, default_th) if isinstance(thresholds, Mapping) else thresholds
        if kind is FeatureKind.NUMERIC:
            row, col = num_rows[i], _NUM_SCORE
            pv = {"ks": ks_list[i]}
            n = int(row[kernels.NUM_N_WIN])
            mr, ref_mr = miss_list[i], ref_miss[i]
        else:
            row, col = cat_rows[i], _CAT_SCORE
            pv = {"chi2": chi_list[i]}
            n = int(row[kernels.CAT_N_WIN])
            j = lay.n_numeric + i
            mr, ref_mr = miss_list[j], ref_miss[j]
        if per_feature:
            chosen = _tests_for(name, kind, tests)
        else:
            if kind not in chosen_by_kind:
                chosen_by_kind[kind] = _tests_for(name, kind, tests)
            chosen = chosen_by_kind[kind]
        scores = {t: row[col[t]] for t in chosen}
        p_values = {t: pv[t] for t in chosen if t in pv}
        enough = bool(n > 0 and math.isfinite(row[0]))
        crossed: list[str] = []
        for t in chosen:
            spec = REGISTRY[t]
            if spec.score_key is not None:
                limit = getattr(th, spec.score_key)
                if limit is not None and enough and scores[t] > limit:
                    crossed.append(spec.score_key)
            if spec.p_value_key is not None:
                limit = getattr(th, spec.p_value_key)
                if limit is not None and enough and p_values[t] < limit:
                    crossed.append(spec.p_value_key)
        if th.missing_ratio is not None and mr - ref_mr > th.missing_ratio:
            crossed.append("missing_ratio")
        results.append(
            FeatureResult(
                name, kind, n, mr, scores, p_values, tuple(crossed), bool(crossed), enough
            )
        )
    return DriftResult(profile.model, events, tuple(results))


_NUM_SCORE = {
    "psi": kernels.NUM_PSI,
    "ks": kernels.NUM_KS_D,
    "kl": kernels.NUM_KL,
    "js": kernels.NUM_JS,
    "wasserstein": kernels.NUM_W1_NORMED,
}
_CAT_SCORE = {
    "psi": kernels.CAT_PSI,
    "kl": kernels.CAT_KL,
    "js": kernels.CAT_JS,
    "chi2": kernels.CAT_CHI2,
}
