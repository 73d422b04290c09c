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
  1/n_1`, i.e. at most 0.01 (+1/n) with the default 100 bins. p-value: scipy's from
  :func:`ks_p_values`; :func:`evaluate` reports ``laws.ks_p_value_decided``, scipy's value
  where it is cheap, for ``n_e < 200`` or where the ``ks_p_value`` decision depends on
  it, else the Stephens-corrected limit within a factor 1.5 of it (same decisions).
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

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from itertools import repeat
from operator import getitem
from typing import Literal

import numpy as np

from monitor.stats import evaluation_kernel as ek
from monitor.stats import kernels
from monitor.stats.evaluation_kernel import _evaluate_model
from monitor.stats.kernels import _categorical_stats, _numeric_stats_shared
from monitor.stats.laws import KS_EXACT_MAX_N as KS_EXACT_MAX_N  # this module's API too
from monitor.stats.laws import SMIRNOV_MAX_N as SMIRNOV_MAX_N
from monitor.stats.laws import chi2_p_values as chi2_p_values
from monitor.stats.laws import ks_p_values as ks_p_values
from monitor.stats.layout import Layout, layout_of
from monitor.stats.profile import FeatureKind, ReferenceProfile
from monitor.stats.sequential_plan import DEFAULT_THRESHOLD as SEQUENTIAL_DEFAULT
from monitor.stats.window import SlotWindow, WindowCounts

EPSILON = 1e-4
#: The compiled kernels behind :func:`evaluate`, :func:`numeric_statistics` and
#: :func:`categorical_statistics` (calibration), with every kernel they call compiled into
#: them: one signature each, whatever tests a config selects (the plan picks the work at
#: run time). Warm-up compiles these; a warm-up that compiles only what a config needs
#: takes ``EVALUATION_KERNELS`` for any model and the other two only with a budget.
EVALUATION_KERNELS = (_evaluate_model,)
CALIBRATION_KERNELS = (_numeric_stats_shared, _categorical_stats)


@dataclass(frozen=True)
class DriftThresholds:
    """Thresholds per test; ``None`` means the test is reported but never flags.

    The one home of the threshold keys and their defaults: the config's ``thresholds``
    sections are generated from these fields (:data:`THRESHOLD_SCALES` says how each is
    bounded). Every field is a key of a registered test or the missing-ratio check.
    """

    psi: float | None = 0.2
    ks: float | None = None
    ks_p_value: float | None = 0.001
    kl: float | None = None
    js: float | None = 0.1
    wasserstein: float | None = None
    chi2_p_value: float | None = 0.001
    cusum: float | None = SEQUENTIAL_DEFAULT
    bin_cusum: float | None = SEQUENTIAL_DEFAULT
    missing_ratio: float | None = 0.1


@dataclass(frozen=True)
class DriftTest:
    """One registered test: which kinds it applies to, which thresholds it reads, and
    whether a model runs it when its config names no tests."""

    name: str
    kinds: frozenset[FeatureKind]
    score_key: str | None  # threshold on the score; crossed when score > threshold
    p_value_key: str | None  # threshold on the p-value; crossed when p < threshold
    selected_by_default: bool = False
    #: A sequential detector (:mod:`monitor.stats.sequential`), not a window statistic.
    sequential: bool = False

    @property
    def has_p_value(self) -> bool:
        """Whether the test yields a p-value (exported next to its score)."""
        return self.p_value_key is not None

    @property
    def primary_key(self) -> str:
        """The threshold key the test is judged by first: its p-value's when it has one,
        else its score's (the key a false-alarm budget calibrates)."""
        key = self.p_value_key or self.score_key
        if key is None:
            raise ValueError(f"drift test {self.name!r} reads no threshold")
        return key


_BOTH = frozenset(FeatureKind)
_NUMERIC = frozenset({FeatureKind.NUMERIC})
_CATEGORICAL = frozenset({FeatureKind.CATEGORICAL})
#: The drift-test catalogue, in canonical order: everything else about which tests exist,
#: where they apply and which thresholds they read is derived from it.
REGISTRY: Mapping[str, DriftTest] = {
    t.name: t
    for t in (
        DriftTest("psi", _BOTH, "psi", None, selected_by_default=True),
        DriftTest("ks", _NUMERIC, "ks", "ks_p_value", selected_by_default=True),
        DriftTest("kl", _BOTH, "kl", None),
        DriftTest("js", _BOTH, "js", None, selected_by_default=True),
        DriftTest("wasserstein", _NUMERIC, "wasserstein", None),
        DriftTest("chi2", _CATEGORICAL, None, "chi2_p_value", selected_by_default=True),
        DriftTest("cusum", _NUMERIC, "cusum", None, sequential=True),
        DriftTest("bin_cusum", _BOTH, "bin_cusum", None, sequential=True),
    )
}
TESTS: tuple[str, ...] = tuple(REGISTRY)
#: The tests a model runs when its config names none (with a budget: and the sequential).
DEFAULT_TESTS: tuple[str, ...] = tuple(n for n, t in REGISTRY.items() if t.selected_by_default)
#: The tests decided on window slides, and the sequential detectors.
WINDOW_TESTS: tuple[str, ...] = tuple(n for n, t in REGISTRY.items() if not t.sequential)
SEQUENTIAL_TESTS: tuple[str, ...] = tuple(n for n, t in REGISTRY.items() if t.sequential)

#: The threshold of the missing-ratio check, which is not a test: window missing share
#: minus the reference's.
MISSING_RATIO_KEY = "missing_ratio"
#: How a threshold key's value reads: ``score`` (>= 0, crossed above), ``p_value`` (in
#: (0, 1), crossed below) or ``share`` (a share difference in [0, 1], crossed above).
ThresholdScale = Literal["score", "p_value", "share"]


def _threshold_scale(key: str) -> ThresholdScale:
    if any(t.p_value_key == key for t in REGISTRY.values()):
        return "p_value"
    if any(t.score_key == key for t in REGISTRY.values()):
        return "score"
    if key == MISSING_RATIO_KEY:
        return "share"
    raise ValueError(f"threshold {key!r} belongs to no registered test")


#: Every threshold key in ``DriftThresholds`` order, with its scale.
THRESHOLD_SCALES: Mapping[str, ThresholdScale] = {
    f.name: _threshold_scale(f.name) for f in fields(DriftThresholds)
}


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class DriftResult:
    """Outcome of one evaluation of one model's window."""

    model: str
    window_events: int
    features: tuple[FeatureResult, ...]

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drifted)


# ---------------------------------------------------------------------------- statistics


def numeric_statistics(lay: Layout, counts: WindowCounts) -> np.ndarray:
    """Kernel output (features x ``kernels.NUM_COLUMNS``) for the numeric features."""
    out = np.empty((lay.n_numeric, kernels.NUM_COLUMNS))
    _numeric_stats_shared(
        lay.ref_num, counts.numeric, lay.n_bins, lay.bucket, lay.n_buckets, lay.mids,
        lay.ref_points, lay.first_edge, lay.last_edge, counts.numeric_low.reshape(1, -1),
        counts.numeric_high.reshape(1, -1), lay.scale, EPSILON, out,
    )  # fmt: skip
    return out


def categorical_statistics(lay: Layout, counts: WindowCounts) -> np.ndarray:
    """Kernel output (features x ``kernels.CAT_COLUMNS``) for the categorical features."""
    out = np.empty((lay.n_categorical, kernels.CAT_COLUMNS))
    _categorical_stats(lay.ref_cat, counts.categorical, lay.n_cats, EPSILON, out)
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
    return tuple(t for t in chosen if kind in REGISTRY[t].kinds and not REGISTRY[t].sequential)


# ---------------------------------------------------------------------------- evaluation

_SCORE_VALUE = {
    "psi": ek.V_PSI,
    "ks": ek.V_KS,
    "kl": ek.V_KL,
    "js": ek.V_JS,
    "wasserstein": ek.V_WASSERSTEIN,
    "chi2": ek.V_CHI2,
}
_P_VALUE = {"ks": ek.V_KS_P, "chi2": ek.V_CHI2_P}


class _CrossedNames(dict[int, tuple[str, ...]]):
    """One feature's ``crossed`` tuple for each bit mask of hit checks, built on first use."""

    def __init__(self, names: tuple[str, ...]) -> None:
        super().__init__({0: ()})
        self.names = names

    def __missing__(self, mask: int) -> tuple[str, ...]:
        crossed = self[mask] = tuple(n for i, n in enumerate(self.names) if mask >> i & 1)
        return crossed


@dataclass(frozen=True)
class _Plan:
    """What to compute and check for one (profile, tests, thresholds): kernel-ready
    arrays and per-feature constants, built once and reused while the arguments compare
    equal to the snapshots taken of them."""

    tests: object
    thresholds: object
    names: tuple[str, ...]
    kinds: tuple[FeatureKind, ...]
    score_keys: tuple[tuple[str, ...], ...]
    p_keys: tuple[tuple[str, ...], ...]
    crossed: tuple[_CrossedNames, ...]
    plan: np.ndarray  # see evaluation_kernel._evaluate_model
    limits: np.ndarray
    ks_limit: np.ndarray  # per feature: its ks_p_value threshold, NaN for none
    score_width: int
    p_width: int


#: What each test needs computed (``evaluation_kernel.NEED_*`` bits): a feature pays for its
#: selected tests only.
_NEEDS = {
    "psi": ek.NEED_DIV,
    "kl": ek.NEED_DIV,
    "js": ek.NEED_DIV,
    "ks": ek.NEED_KS | ek.NEED_KS_P,
    "wasserstein": ek.NEED_W1,
    "chi2": ek.NEED_CHI2,
}


def _needs(tests: Sequence[str]) -> int:
    bits = 0
    for t in tests:
        bits |= _NEEDS[t]
    return bits


def _snapshot(arg: object) -> object:
    """A copy of a ``tests``/``thresholds`` argument that compares equal to it until it
    is mutated (lists are copied; tuples, strings and frozen thresholds are immutable)."""
    if isinstance(arg, Mapping):
        return {k: list(v) if isinstance(v, list) else v for k, v in arg.items()}
    return list(arg) if isinstance(arg, list) else arg


def _build_plan(
    profile: ReferenceProfile,
    tests: Mapping[str, Sequence[str]] | Sequence[str],
    thresholds: DriftThresholds | Mapping[str, DriftThresholds],
) -> _Plan:
    numeric_rows = {n: i for i, n in enumerate(profile.numeric_names)}
    categorical_rows = {n: i for i, n in enumerate(profile.categorical_names)}
    default_th = DriftThresholds()
    kinds: list[FeatureKind] = []
    score_keys: list[tuple[str, ...]] = []
    p_keys: list[tuple[str, ...]] = []
    crossed: list[_CrossedNames] = []
    rows: list[tuple[int, list[int], list[int], list[int], list[float]]] = []
    needs: list[int] = []
    ks_limit: list[float] = []
    for name in profile.features:
        if name in numeric_rows:
            kind, row = FeatureKind.NUMERIC, numeric_rows[name]
        else:
            kind, row = FeatureKind.CATEGORICAL, len(numeric_rows) + categorical_rows[name]
        th = thresholds.get(name, default_th) if isinstance(thresholds, Mapping) else thresholds
        chosen = _tests_for(name, kind, tests)
        with_p = tuple(t for t in chosen if t in _P_VALUE)
        # checks in the order the crossed tuple lists them: per test, score then p-value
        checks: list[tuple[str, int, float]] = []
        for t in chosen:
            spec = REGISTRY[t]
            for key, col in (
                (spec.score_key, _SCORE_VALUE[t]),
                (spec.p_value_key, _P_VALUE.get(t)),
            ):
                limit = None if key is None else getattr(th, key)
                if key is not None and col is not None and limit is not None:
                    checks.append((key, col, float(limit)))
        if th.missing_ratio is not None:
            checks.append((MISSING_RATIO_KEY, ek.V_MISSING, float(th.missing_ratio)))
        needs.append(_needs(chosen))
        ks_limit.append(next((c[2] for c in checks if c[1] == ek.V_KS_P), np.nan))
        kinds.append(kind)
        score_keys.append(chosen)
        p_keys.append(with_p)
        crossed.append(_CrossedNames(tuple(c[0] for c in checks)))
        rows.append(
            (
                row,
                [_SCORE_VALUE[t] for t in chosen],
                [_P_VALUE[t] for t in with_p],
                [c[1] for c in checks],
                [c[2] for c in checks],
            )
        )
    ws = max((len(r[1]) for r in rows), default=0)
    wp = max((len(r[2]) for r in rows), default=0)
    wc = max((len(r[3]) for r in rows), default=0)
    if wc > 62:
        raise ValueError("at most 62 threshold checks per feature")
    h = ek.PLAN_HEAD
    plan = np.zeros((len(rows), h + ws + wp + wc), np.int64)
    limits = np.full((len(rows), wc), np.nan)
    for i, (row, s, p, c, lim) in enumerate(rows):
        plan[i, :h] = row, len(s), len(p), len(c), needs[i]
        plan[i, h : h + len(s)] = s
        plan[i, h + ws : h + ws + len(p)] = p
        plan[i, h + ws + wp : h + ws + wp + len(c)] = c
        limits[i, : len(lim)] = lim
    return _Plan(
        tests=_snapshot(tests),
        thresholds=_snapshot(thresholds),
        names=tuple(profile.features),
        kinds=tuple(kinds),
        score_keys=tuple(score_keys),
        p_keys=tuple(p_keys),
        crossed=tuple(crossed),
        plan=plan,
        limits=limits,
        ks_limit=np.array(ks_limit, np.float64),
        score_width=ws,
        p_width=wp,
    )


def _plan_for(
    profile: ReferenceProfile,
    tests: Mapping[str, Sequence[str]] | Sequence[str],
    thresholds: DriftThresholds | Mapping[str, DriftThresholds],
) -> _Plan:
    """The cached plan for these arguments. Looked up by identity, confirmed by equality
    with the snapshot taken when it was built (a cheap C-level compare: unchanged entries
    are the same objects), so an argument mutated in place gets a fresh plan."""
    cache = profile._cache.setdefault("plans", {})  # noqa: SLF001 - the profile's memo slot
    key = (id(tests), id(thresholds))
    plan: _Plan | None = cache.get(key)
    if plan is None or plan.tests != tests or plan.thresholds != thresholds:
        plan = _build_plan(profile, tests, thresholds)
        if len(cache) >= 16:
            cache.clear()
        cache[key] = plan
    return plan


# The slot descriptors of FeatureResult's fields, in field order: ``__set__`` stores a value
# the way the dataclass ``__init__`` does (through ``object.__setattr__``), frozen or not.
_SLOTS = tuple(getattr(FeatureResult, f.name) for f in fields(FeatureResult))


def _feature_results(
    plan: _Plan, info: np.ndarray, scores: np.ndarray, p_values: np.ndarray
) -> tuple[FeatureResult, ...]:
    """The ``FeatureResult`` of every feature from the kernel's outputs.

    Built column-wise with C-level iteration (``map`` over builtins) instead of a Python
    loop calling the dataclass ``__init__``: the objects are created empty and each field
    stored into all of them through its slot descriptor, exactly the values ``__init__``
    would set, so fields, equality, ``repr``, immutability and pickling are those of an
    ordinary instance. Per feature this makes the object and its ``scores`` and
    ``p_values`` dicts, nothing else.
    """
    t = len(plan.names)
    n, missing_ratio, enough, masks = info.T.tolist()
    mask = list(map(int, masks))
    columns = (
        plan.names,
        plan.kinds,
        list(map(int, n)),
        missing_ratio,
        list(map(dict, map(zip, plan.score_keys, scores.tolist()))),
        list(map(dict, map(zip, plan.p_keys, p_values.tolist()))),
        list(map(getitem, plan.crossed, mask)),
        list(map(bool, mask)),
        list(map(bool, enough)),
    )
    objects = tuple(map(object.__new__, repeat(FeatureResult, t)))
    for slot, column in zip(_SLOTS, columns, strict=True):
        deque(map(slot.__set__, objects, column), maxlen=0)
    return objects


def evaluate(
    profile: ReferenceProfile,
    window: SlotWindow | WindowCounts,
    *,
    tests: Mapping[str, Sequence[str]] | Sequence[str] = TESTS,
    thresholds: DriftThresholds | Mapping[str, DriftThresholds] = DriftThresholds(),
) -> DriftResult:
    """Run the selected tests on every feature: statistics, p-values and threshold checks
    of all features in one kernel call, computing only what the selected tests need.

    ``tests``: names for every feature (each runs where it applies), or a mapping from
    feature name to names (features absent from it run every applicable test).
    ``thresholds``: one set for all features, or per feature (absent ones use defaults).
    What to compute and check is derived once per (profile, tests, thresholds) and cached
    on the profile.

    >>> from monitor.stats import CountWindowSpec, build_profile
    >>> x = np.linspace(0.0, 1.0, 1000)
    >>> profile = build_profile("m", {"x": x}, {"x": FeatureKind.NUMERIC}, bins=10)
    >>> window = SlotWindow(profile, CountWindowSpec(events=500, slide=500))
    >>> for _ in window.feed(x[500:, None] + 0.5, np.zeros((500, 0), np.int64)):
    ...     result = evaluate(profile, window, tests=["psi", "ks"])
    >>> f = result.features[0]
    >>> round(f.scores["ks"], 3), f.p_values["ks"] < 1e-10, f.crossed
    (0.899, True, ('psi', 'ks_p_value'))
    >>> result.drifted_features
    ('x',)
    """
    lay = layout_of(profile)
    plan = _plan_for(profile, tests, thresholds)
    if isinstance(window, SlotWindow):
        events, win_num, low, high, win_cat = window._sketch()  # noqa: SLF001
    else:
        events, win_num, win_cat = window.events, window.numeric, window.categorical
        low, high = window.numeric_low.reshape(1, -1), window.numeric_high.reshape(1, -1)
    t = len(plan.names)
    info = np.empty((t, 4))
    scores = np.empty((t, plan.score_width))
    p_values = np.empty((t, plan.p_width))
    _evaluate_model(
        lay.ref_num, win_num, lay.n_bins, lay.bucket, lay.n_buckets, lay.mids,
        lay.ref_points, lay.first_edge, lay.last_edge, lay.scale, low, high, lay.ref_cat,
        win_cat, lay.n_cats, lay.ref_missing_ratio, events, EPSILON, plan.plan,
        plan.limits, plan.ks_limit, info, scores, p_values,
    )  # fmt: skip
    return DriftResult(profile.model, events, _feature_results(plan, info, scores, p_values))
