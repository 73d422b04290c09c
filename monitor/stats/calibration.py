r"""False-alarm budgets: per-test critical values from "at most B false alarms a month".

Fixed thresholds mean different things at different window sizes: with no shift at all the
expected PSI of a window of ``N`` events against a reference of ``M`` is about
:math:`(B - 1)(1/N + 1/M)` over ``B`` buckets (Yurdakul, 2018), so ``psi: 0.2`` is
hopelessly lax at ``N = 100,000`` and fires on noise at ``N = 200``; and testing 20 features
every few seconds turns a per-test level of 0.001 into dozens of false alarms a day.
:func:`calibrate` turns a budget into one critical value per feature and test instead.

The budget
----------
Let ``E`` be the evaluations in a month (30 days): ``events_per_second x 2,592,000 /
slide`` for a count window, or given directly. A false alarm is a confirmed alert
(``min_features`` features drifted in ``consecutive`` evaluations in a row) while nothing
changed. Every confirmed alarm needs at least one evaluation that flags, so

.. math:: \text{false alarms per month} \le L \cdot \alpha_{\text{eval}}

where ``L`` is the number of *looks* and :math:`\alpha_{\text{eval}}` the probability that
one evaluation flags any feature. Two dependence models are offered:

* ``"union"`` (default): ``L = E``. A union bound over every evaluation: it holds whatever
  the dependence between overlapping windows, and gives no credit for ``consecutive``
  (``P(k in a row) <= P(one)``). The price is small: a factor of ``window / slide`` in
  :math:`\alpha` moves a chi-square critical value at :math:`10^{-9}` by a few percent.
* ``"effective"``: ``L = E x min(1, slide / window)``, the number of disjoint windows in a
  month. Windows that share most of their events give nearly the same statistic, so an
  excursion of the stream is counted once per window length rather than once per slide.
  ``consecutive`` is credited only for the windows among ``k`` consecutive ones that share
  no event, ``j = 1 + floor((k - 1) slide / window)``: their statistics are independent,
  so :math:`\alpha_{\text{eval}} = (B / L)^{1/j}`. Caution: at the very small levels a
  budget implies, exceedances of overlapping windows stop clustering (for a correlation
  :math:`\rho < 1` between neighbours, :math:`P(X_2 > u \mid X_1 > u) \to 0` as ``u``
  grows), so this model can undercount looks by up to ``window / slide``; use it when the
  detection delay matters more than the guarantee.

Multiple features
-----------------
One evaluation runs ``m`` thresholded checks (every selected test of every feature, plus
the missing-ratio check). ``correction="bonferroni"`` gives each :math:`\alpha_{\text{eval}}
/ m`, which bounds the family-wise rate whatever the dependence between tests (tests of one
feature are strongly correlated, which makes it conservative). ``"bh"`` applies
Benjamini-Hochberg at level :math:`\alpha_{\text{eval}}` to the calibrated p-values of each
evaluation (:meth:`Calibration.apply`); under the complete null it has the same family-wise
rate and it flags more features when several drift together. BH is a procedure, not a
fixed threshold, so :meth:`Calibration.thresholds` always returns the Bonferroni critical
values (BH's first step); only :meth:`Calibration.apply` gives BH's extra power.

Null distributions
------------------
For every feature the window's and the reference's cell counts are redrawn ``draws``
times from the reference profile's own cell probabilities (multinomial draws of the
non-missing window count ``Binomial(N, 1 - r)`` and, for a finite reference, of its ``M``
values), and the real statistics kernels of :mod:`monitor.stats.drift` run on them, so the
simulated statistics are exactly the binned statistics ``evaluate`` computes (PSI buckets,
epsilon floor, Yates correction and all). Only the window's extreme values, which place the
outer bins' mass for Wasserstein, are modelled: each outer bin gets an exponential tail fitted
to the reference's extreme (``scale = (edge - extreme) / H_m`` for ``m`` reference values
in the bin), and the window's extreme is that tail's maximum over the window's values in
the bin.

The levels a budget implies (around :math:`10^{-9}` per test) are far beyond what a few
thousand draws can see, so the tail is a fitted distribution: a scaled chi-square
:math:`a \chi^2_\nu` whose mean and variance match the draws (``a = var / (2 mean)``,
``nu = 2 mean^2 / var``), fitted to PSI, KL, chi-square and to the *squares* of the JS
distance, the KS distance and Wasserstein (their square root laws have Gaussian tails).
This is the sample-size-aware chi-square law: as ``N`` and ``M`` grow it tends to the
asymptotic forms, which are computed alongside,

* PSI :math:`\approx (1/N + 1/M)\,\chi^2_{B-1}`, mean :math:`(B - 1)(1/N + 1/M)`,
* KL :math:`\approx \tfrac12 (1/N + 1/M)\,\chi^2_{B-1}`,
* JS distance squared :math:`\approx (1/N + 1/M)\,\chi^2_{B-1} / (8 \ln 2)`,
* Pearson's chi-square :math:`\approx \chi^2_{K-1}`,

and the critical value is the largest of the fitted one, the asymptotic one and the largest
simulated value (``method`` records which won). Pearson's statistic has a heavier tail than
any chi-square law when a category is rare (one cell with an expectation of 1 observed 10
times adds 81): its critical value ``c`` also accounts for single rare cells, solving
``fitted_sf(c) + sum_i P(Poisson(l_i) >= l_i + sqrt(c l_i (N + M) / M)) = alpha``. KS is
thresholded on its p-value, which ``evaluate`` computes from the continuous law; on binned
data the statistic can only be smaller (see :mod:`monitor.stats.drift`), so the p-value is
conservative and the critical p-value is the level itself. The missing-ratio check uses the
binomial law: the window's missing count exceeds its ``1 - alpha/2`` quantile at the
reference rate's ``1 - alpha/2`` upper confidence bound (Clopper-Pearson) with probability
at most ``alpha``.

Calibration is seeded and runs once per profile (start-up or profile build); the result
serialises to JSON (:meth:`Calibration.to_json`) to be stored with the profile or in the
checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from numba import njit

from monitor.stats import kernels
from monitor.stats.drift import (
    DEFAULT_TESTS,
    REGISTRY,
    TESTS,
    THRESHOLD_SCALES,
    DriftResult,
    DriftThresholds,
    FeatureResult,
    categorical_statistics,
    numeric_statistics,
)
from monitor.stats.layout import Layout, layout_of
from monitor.stats.profile import FeatureKind, NumericProfile, ReferenceProfile
from monitor.stats.window import WindowCounts

__all__ = [
    "CALIBRATION_SCHEMA_VERSION",
    "SECONDS_PER_MONTH",
    "Budget",
    "Calibration",
    "CriticalValue",
    "calibrate",
]

CALIBRATION_SCHEMA_VERSION = 1
SECONDS_PER_MONTH = 30 * 86_400


def _special() -> Any:
    """``scipy.special``, imported on first use: scipy (and ``scipy.optimize`` below) cost
    most of a second of every start-up, and only a false-alarm budget needs them."""
    from scipy import special

    return special


Correction = Literal["bonferroni", "bh"]
Dependence = Literal["union", "effective"]

#: Power applied to a statistic before the scaled chi-square fit.
_POWER = {"psi": 1, "kl": 1, "chi2": 1, "js": 2, "wasserstein": 2}
_NUM_COL = {"psi": kernels.NUM_PSI, "kl": kernels.NUM_KL, "js": kernels.NUM_JS,
            "wasserstein": kernels.NUM_W1_NORMED}  # fmt: skip
_CAT_COL = {"psi": kernels.CAT_PSI, "kl": kernels.CAT_KL, "js": kernels.CAT_JS,
            "chi2": kernels.CAT_CHI2}  # fmt: skip
_EMPTY_THRESHOLDS = DriftThresholds(**{key: None for key in THRESHOLD_SCALES})


# --------------------------------------------------------------------------- the budget


@dataclass(frozen=True)
class Budget:
    """A false-alarm budget and what driftmon knows about the stream it applies to.

    Give either ``events_per_second`` (evaluations a month follow from the slide) or
    ``evaluations_per_month``. For a time window use :meth:`for_time_window`.

    >>> b = Budget(1.0, window_events=10_000, slide_events=2_000, events_per_second=1_000)
    >>> b.evaluations_per_month_value
    1296000.0
    >>> b.looks
    1296000.0
    """

    false_alarms_per_month: float
    window_events: int
    slide_events: int
    events_per_second: float | None = None
    evaluations_per_month: float | None = None
    consecutive: int = 1
    correction: Correction = "bonferroni"
    dependence: Dependence = "union"

    def __post_init__(self) -> None:
        if not self.false_alarms_per_month > 0:
            raise ValueError("false_alarms_per_month must be > 0")
        if self.window_events < 1 or self.slide_events < 1:
            raise ValueError("window_events and slide_events must be >= 1")
        if (self.events_per_second is None) == (self.evaluations_per_month is None):
            raise ValueError("give exactly one of events_per_second and evaluations_per_month")
        rate = self.events_per_second or self.evaluations_per_month
        if rate is None or not rate > 0:
            raise ValueError("the event or evaluation rate must be > 0")
        if self.consecutive < 1:
            raise ValueError("consecutive must be >= 1")
        if self.correction not in ("bonferroni", "bh"):
            raise ValueError("correction must be 'bonferroni' or 'bh'")
        if self.dependence not in ("union", "effective"):
            raise ValueError("dependence must be 'union' or 'effective'")

    @classmethod
    def for_time_window(
        cls,
        false_alarms_per_month: float,
        *,
        seconds: float,
        slide_seconds: float,
        events_per_second: float,
        **kwargs: Any,
    ) -> Budget:
        """A budget for a time window, at an expected event rate (sets ``N = rate x seconds``)."""
        return cls(
            false_alarms_per_month,
            window_events=max(1, round(events_per_second * seconds)),
            slide_events=max(1, round(events_per_second * slide_seconds)),
            evaluations_per_month=SECONDS_PER_MONTH / slide_seconds,
            **kwargs,
        )

    @property
    def evaluations_per_month_value(self) -> float:
        if self.evaluations_per_month is not None:
            return float(self.evaluations_per_month)
        assert self.events_per_second is not None  # noqa: S101 - checked in __post_init__
        return self.events_per_second * SECONDS_PER_MONTH / self.slide_events

    @property
    def looks(self) -> float:
        """Evaluations a month counted against the budget (see the module docstring)."""
        evaluations = self.evaluations_per_month_value
        if self.dependence == "union":
            return evaluations
        return evaluations * min(1.0, self.slide_events / self.window_events)

    @property
    def independent_in_a_row(self) -> int:
        """``j``: windows among ``consecutive`` in a row that share no event ("effective")."""
        if self.dependence == "union":
            return 1
        return 1 + (self.consecutive - 1) * self.slide_events // self.window_events

    @property
    def alpha_evaluation(self) -> float:
        """Probability allowed for one evaluation to flag any feature."""
        base = min(1.0, self.false_alarms_per_month / self.looks)
        return float(base ** (1.0 / self.independent_in_a_row))

    def to_json(self) -> dict[str, Any]:
        return {
            "false_alarms_per_month": self.false_alarms_per_month,
            "window_events": self.window_events,
            "slide_events": self.slide_events,
            "events_per_second": self.events_per_second,
            "evaluations_per_month": self.evaluations_per_month,
            "consecutive": self.consecutive,
            "correction": self.correction,
            "dependence": self.dependence,
        }


# --------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class CriticalValue:
    """Critical value of one test of one feature.

    ``critical`` is on the scale of the ``DriftThresholds`` field ``key``: a score for
    psi/kl/js/wasserstein/missing_ratio (flag when above), a p-value for ks and chi2 (flag
    when below). ``statistic`` is the critical value of the statistic itself.
    """

    key: str
    critical: float
    statistic: float
    alpha: float
    method: str  # "fitted", "asymptotic", "simulated_max", "p_value", "binomial"
    scale: float = math.nan  # fitted a in a * chi2(nu), on statistic ** power
    dof: float = math.nan
    power: int = 1
    null_mean: float = math.nan  # mean of the simulated statistic
    expected: float = math.nan  # asymptotic mean (psi: (B - 1)(1/N + 1/M))
    rare: tuple[tuple[float, float], ...] = ()  # chi2: (expected count, variance factor)

    def p_value(self, value: float) -> float:
        """The calibrated null probability of a value at least as extreme as ``value``."""
        if not math.isfinite(value):
            return math.nan
        if self.method == "p_value":
            return value  # the test's own p-value (ks)
        if self.key == "missing_ratio":
            return 1.0 if value < self.critical else self.alpha  # a threshold, not a law
        x = max(value, 0.0) ** self.power
        p = float(_special().chdtrc(self.dof, x / self.scale)) if self.scale > 0 else 1.0
        if self.rare:
            p += _rare_cells_sf(value, self.rare)
        return min(1.0, p)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key, "critical": self.critical, "alpha": self.alpha,
            "method": self.method, "power": self.power,
        }  # fmt: skip
        for name in ("statistic", "scale", "dof", "null_mean", "expected"):
            value = getattr(self, name)
            if math.isfinite(value):
                out[name] = value
        if self.rare:
            out["rare"] = [list(r) for r in self.rare]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CriticalValue:
        return cls(
            key=str(data["key"]),
            critical=float(data["critical"]),
            statistic=float(data.get("statistic", math.nan)),
            alpha=float(data["alpha"]),
            method=str(data["method"]),
            scale=float(data.get("scale", math.nan)),
            dof=float(data.get("dof", math.nan)),
            power=int(data.get("power", 1)),
            null_mean=float(data.get("null_mean", math.nan)),
            expected=float(data.get("expected", math.nan)),
            rare=tuple((float(a), float(b)) for a, b in data.get("rare", [])),
        )


@dataclass(frozen=True)
class Calibration:
    """Per-feature, per-test critical values meeting a false-alarm budget."""

    model: str
    budget: Budget
    alpha_evaluation: float
    alpha_test: float
    checks_per_evaluation: int
    window_events: int
    reference_events: Mapping[str, int]  # per feature (non-missing); 0 = exact reference
    draws: int
    seed: int
    features: Mapping[str, Mapping[str, CriticalValue]]  # feature -> key -> calibration
    profile_created_at: str = ""
    created_at: str = field(
        default_factory=lambda: (
            datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        )
    )

    def thresholds(self) -> dict[str, DriftThresholds]:
        """``DriftThresholds`` per feature for ``evaluate`` (Bonferroni critical values).

        Checks that were not calibrated are off (``None``): a budget replaces every raw
        threshold of the features it covers.
        """
        out: dict[str, DriftThresholds] = {}
        for name, tests in self.features.items():
            out[name] = replace(_EMPTY_THRESHOLDS, **{key: t.critical for key, t in tests.items()})
        return out

    def threshold_values(self) -> dict[str, dict[str, float]]:
        """Feature -> threshold key -> value (the alerting / metrics shape)."""
        return {n: {k: t.critical for k, t in ts.items()} for n, ts in self.features.items()}

    def p_values(self, result: DriftResult) -> dict[tuple[str, str], float]:
        """Calibrated null p-value of every calibrated check in one evaluation."""
        out: dict[tuple[str, str], float] = {}
        for feature in result.features:
            tests = self.features.get(feature.name, {})
            for key, cal in tests.items():
                if key == "missing_ratio":
                    value = feature.missing_ratio - self._ref_missing(feature.name)
                    out[(feature.name, key)] = cal.alpha if value > cal.critical else 1.0
                    continue
                test = key.removesuffix("_p_value")
                value = (
                    feature.p_values.get(test, math.nan)
                    if cal.method == "p_value"
                    else feature.scores.get(test, math.nan)
                )
                if feature.enough_data and math.isfinite(value):
                    out[(feature.name, key)] = cal.p_value(value)
        return out

    def _ref_missing(self, name: str) -> float:
        return self._missing_ratios.get(name, 0.0)

    @property
    def _missing_ratios(self) -> dict[str, float]:
        return {n: t["missing_ratio"].expected for n, t in self.features.items()
                if "missing_ratio" in t}  # fmt: skip

    def apply(self, result: DriftResult) -> DriftResult:
        """Re-decide ``crossed``/``drifted`` of an evaluation with this calibration.

        Bonferroni: the same decisions as ``evaluate`` with :meth:`thresholds`. BH: every
        calibrated p-value of the evaluation goes through Benjamini-Hochberg at
        ``alpha_evaluation``; a feature drifts when any of its checks is rejected.
        """
        if self.budget.correction == "bh":
            rejected = _benjamini_hochberg(self.p_values(result), self.alpha_evaluation)
        else:
            rejected = {
                (f.name, key)
                for f in result.features
                for key in self.features.get(f.name, {})
                if self._crosses(f, key)
            }
        features: list[FeatureResult] = []
        for f in result.features:
            crossed = tuple(k for k in self.features.get(f.name, {}) if (f.name, k) in rejected)
            features.append(replace(f, crossed=crossed, drifted=bool(crossed)))
        return replace(result, features=tuple(features))

    def _crosses(self, f: FeatureResult, check: str) -> bool:
        name = f.name
        cal = self.features[name][check]
        if check == "missing_ratio":
            return f.missing_ratio - self._ref_missing(name) > cal.critical
        if not f.enough_data:
            return False
        test = check.removesuffix("_p_value")
        if check.endswith("_p_value"):
            return f.p_values.get(test, math.nan) < cal.critical
        return f.scores.get(test, math.nan) > cal.critical

    # -- JSON ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready document (no NaN), read back by :meth:`from_json`."""
        return {
            "schema_version": CALIBRATION_SCHEMA_VERSION,
            "model": self.model,
            "created_at": self.created_at,
            "profile_created_at": self.profile_created_at,
            "budget": self.budget.to_json(),
            "alpha_evaluation": self.alpha_evaluation,
            "alpha_test": self.alpha_test,
            "looks_per_month": self.budget.looks,
            "checks_per_evaluation": self.checks_per_evaluation,
            "window_events": self.window_events,
            "reference_events": dict(self.reference_events),
            "draws": self.draws,
            "seed": self.seed,
            "features": {
                name: {key: t.to_json() for key, t in tests.items()}
                for name, tests in self.features.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Calibration:
        """Read :meth:`to_json`'s document; ``ValueError`` if it is of another version."""
        if data.get("schema_version") != CALIBRATION_SCHEMA_VERSION:
            raise ValueError(
                f"calibration schema version {data.get('schema_version')!r} is not supported "
                f"(expected {CALIBRATION_SCHEMA_VERSION}); recalibrate"
            )
        b = data["budget"]
        return cls(
            model=str(data["model"]),
            budget=Budget(**b),
            alpha_evaluation=float(data["alpha_evaluation"]),
            alpha_test=float(data["alpha_test"]),
            checks_per_evaluation=int(data["checks_per_evaluation"]),
            window_events=int(data["window_events"]),
            reference_events={k: int(v) for k, v in data["reference_events"].items()},
            draws=int(data["draws"]),
            seed=int(data["seed"]),
            features={
                name: {key: CriticalValue.from_json(t) for key, t in tests.items()}
                for name, tests in data["features"].items()
            },
            profile_created_at=str(data.get("profile_created_at", "")),
            created_at=str(data["created_at"]),
        )


def _benjamini_hochberg(pvals: Mapping[tuple[str, str], float], level: float) -> set[Any]:
    items = sorted(pvals.items(), key=lambda kv: kv[1])
    m = len(items)
    last = -1
    for i, (_, p) in enumerate(items):
        if p <= level * (i + 1) / m:
            last = i
    return {k for k, _ in items[: last + 1]}


# --------------------------------------------------------------------------- simulation


@njit(cache=True, nogil=True)
def _multinomial(
    seed: int, n: np.ndarray, p: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    # (i8, i8[:, ::1], f8[:, ::1], i8[:, :, ::1])
    """``out[r, f] ~ Multinomial(n[r, f], p[f])`` by conditional binomials, seeded."""
    np.random.seed(seed)
    draws, features, cells = out.shape
    for r in range(draws):
        for f in range(features):
            rem = n[r, f]
            left = 1.0
            for i in range(cells):
                pi = p[f, i]
                if rem == 0 or pi <= 0.0:
                    out[r, f, i] = 0
                    continue
                if pi >= left:
                    out[r, f, i] = rem
                    rem = 0
                    continue
                x = np.random.binomial(rem, pi / left)
                out[r, f, i] = x
                rem -= x
                left -= pi


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum(axis=1, keepdims=True).astype(np.float64)
    shares: np.ndarray = np.divide(counts, total, out=np.zeros(counts.shape), where=total > 0)
    return shares


def _draw_counts(
    rng: np.random.Generator,
    ref: np.ndarray,
    window_n: np.ndarray,
    reference_n: np.ndarray,
    draws: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Window and reference counts (draws x features x cells) from the reference shares."""
    p = np.ascontiguousarray(_shares(ref))
    f, k = ref.shape
    win = np.zeros((draws, f, k), np.int64)
    _multinomial(int(rng.integers(2**31)), np.ascontiguousarray(window_n), p, win)
    refs = np.broadcast_to(ref, (draws, f, k)).copy()
    finite = reference_n > 0
    if finite.any():
        sub = np.zeros((draws, int(finite.sum()), k), np.int64)
        n_ref = np.ascontiguousarray(np.broadcast_to(reference_n[finite], (draws, sub.shape[1])))
        _multinomial(int(rng.integers(2**31)), n_ref, np.ascontiguousarray(p[finite]), sub)
        refs[:, finite] = sub
    return win, refs


def _tile(a: np.ndarray, draws: int) -> np.ndarray:
    return np.ascontiguousarray(np.tile(a, (draws,) + (1,) * (a.ndim - 1)))


def _outer_extremes(
    rng: np.random.Generator, profile: ReferenceProfile, lay: Layout, win: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated window minimum and maximum per draw and numeric feature (module doc)."""
    draws = win.shape[0]
    low = np.zeros((draws, lay.n_numeric))
    high = np.zeros((draws, lay.n_numeric))
    for i, name in enumerate(profile.numeric_names):
        f = profile.features[name]
        assert isinstance(f, NumericProfile)  # noqa: S101 - narrowing for mypy
        k = int(lay.n_edges[i])
        if not math.isfinite(f.min) or k == 0:
            low[:, i] = f.min if math.isfinite(f.min) else 0.0
            high[:, i] = f.max if math.isfinite(f.max) else 0.0
            continue
        for side, edge, extreme, cell, out, sign in (
            ("low", f.edges[0], f.min, 0, low, -1.0),
            ("high", f.edges[-1], f.max, k, high, 1.0),
        ):
            del side
            m = max(int(f.counts[cell]), 1)
            scale = abs(extreme - edge) / (math.log(m) + 0.5772156649 + 0.5 / m)
            n_in = np.maximum(win[:, i, cell], 1)
            u = rng.random(draws)
            # max of n Exp(1) values: -log(1 - U^(1/n))
            depth = -np.log1p(-np.power(u, 1.0 / n_in))
            out[:, i] = edge + sign * scale * depth
    return low, high


def _simulate(
    profile: ReferenceProfile, window_events: int, reference_n: np.ndarray, draws: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Kernel outputs (draws x features x columns) for numeric and categorical features."""
    lay = layout_of(profile)
    rng = np.random.default_rng(seed)
    miss = lay.ref_missing_ratio
    nf, nc = lay.n_numeric, lay.n_categorical
    present = rng.binomial(window_events, 1.0 - miss, size=(draws, nf + nc)).astype(np.int64)
    num_out = np.empty((draws, nf, kernels.NUM_COLUMNS))
    cat_out = np.empty((draws, nc, kernels.CAT_COLUMNS))
    if nf:
        win, refs = _draw_counts(rng, lay.ref_num, present[:, :nf], reference_n[:nf], draws)
        low, high = _outer_extremes(rng, profile, lay, win)
        tiled = replace(
            lay,
            n_numeric=draws * nf,
            n_edges=_tile(lay.n_edges, draws),
            n_bins=_tile(lay.n_bins, draws),
            ref_num=refs.reshape(draws * nf, -1),
            bucket=_tile(lay.bucket, draws),
            n_buckets=_tile(lay.n_buckets, draws),
            mids=_tile(lay.mids, draws),
            ref_points=_tile(lay.ref_points, draws),
            first_edge=_tile(lay.first_edge, draws),
            last_edge=_tile(lay.last_edge, draws),
            scale=_tile(lay.scale, draws),
        )
        counts = WindowCounts(
            events=window_events,
            numeric=np.concatenate(
                (win.reshape(draws * nf, -1), np.zeros((draws * nf, 1), np.int64)), axis=1
            ),
            numeric_low=low.reshape(-1),
            numeric_high=high.reshape(-1),
            categorical=np.zeros((0, lay.cat_width), np.int64),
        )
        num_out = numeric_statistics(tiled, counts).reshape(draws, nf, -1)
    if nc:
        win, refs = _draw_counts(rng, lay.ref_cat, present[:, nf:], reference_n[nf:], draws)
        tiled = replace(
            lay, n_categorical=draws * nc, n_cats=_tile(lay.n_cats, draws),
            ref_cat=refs.reshape(draws * nc, -1),
        )  # fmt: skip
        counts = WindowCounts(
            events=window_events,
            numeric=np.zeros((0, lay.num_width), np.int64),
            numeric_low=np.zeros(0),
            numeric_high=np.zeros(0),
            categorical=np.concatenate(
                (win.reshape(draws * nc, -1), np.zeros((draws * nc, 1), np.int64)), axis=1
            ),
        )
        cat_out = categorical_statistics(tiled, counts).reshape(draws, nc, -1)
    return num_out, cat_out


# --------------------------------------------------------------------------- critical values


def _rare_cells_sf(value: float, rare: Sequence[tuple[float, float]]) -> float:
    """Union bound: P(one rare cell alone pushes Pearson's statistic above ``value``)."""
    total = 0.0
    for lam, factor in rare:
        x = lam + math.sqrt(max(value, 0.0) * lam * factor)
        total += float(_special().pdtrc(math.ceil(x) - 1, lam))  # P(Poisson(lam) >= ceil(x))
    return total


def _fit(x: np.ndarray) -> tuple[float, float, float]:
    """Scaled chi-square ``a chi2(nu)`` with the mean and variance of ``x``: (a, nu, mean)."""
    x = x[np.isfinite(x)]
    if x.size < 2:
        return math.nan, math.nan, math.nan
    mean, var = float(x.mean()), float(x.var(ddof=1))
    if not mean > 0 or not var > 0:
        return 0.0, 1.0, mean
    return var / (2.0 * mean), 2.0 * mean * mean / var, mean


def _score_calibration(
    test: str, stats: np.ndarray, alpha: float, cells: int, inv_n: float
) -> CriticalValue:
    power = _POWER[test]
    finite = stats[np.isfinite(stats)]
    a, nu, _ = _fit(finite**power)
    fitted = a * float(_special().chdtri(nu, alpha)) if a > 0 else 0.0
    dof = max(cells - 1, 1)
    asym = {
        "psi": inv_n * float(_special().chdtri(dof, alpha)),
        "kl": 0.5 * inv_n * float(_special().chdtri(dof, alpha)),
        "js": inv_n * float(_special().chdtri(dof, alpha)) / (8.0 * math.log(2.0)),
    }.get(test, 0.0)
    expected = {"psi": dof * inv_n, "kl": 0.5 * dof * inv_n}.get(test, math.nan)
    simulated = float(finite.max() ** power) if finite.size else 0.0
    best, method = max((fitted, "fitted"), (asym, "asymptotic"), (simulated, "simulated_max"))
    crit = best ** (1.0 / power)
    return CriticalValue(
        key=REGISTRY[test].primary_key, critical=crit, statistic=crit, alpha=alpha, method=method,
        scale=a, dof=nu, power=power,
        null_mean=float(finite.mean()) if finite.size else math.nan, expected=expected,
    )  # fmt: skip


def _chi2_calibration(
    stats: np.ndarray, alpha: float, ref_counts: np.ndarray, window_n: float, reference_n: int
) -> CriticalValue:
    finite = stats[np.isfinite(stats)]
    a, nu, mean = _fit(finite)
    p = ref_counts / max(ref_counts.sum(), 1)
    cells = int(np.count_nonzero(ref_counts))
    dof = max(cells - 1, 1)
    factor = (window_n + reference_n) / reference_n if reference_n > 0 else 1.0
    lam = window_n * p
    rare = tuple((float(x), factor) for x in lam[(lam > 0) & (lam < 5.0)])

    def sf(c: float) -> float:
        tail = float(_special().chdtrc(nu, c / a)) if a > 0 else 0.0
        return tail + (_rare_cells_sf(c, rare) if rare else 0.0)

    asym = float(_special().chdtri(dof, alpha))
    fitted = a * float(_special().chdtri(nu, alpha)) if a > 0 else 0.0
    method = "fitted"
    crit = fitted
    if rare:
        hi = max(fitted, asym, 1.0)
        while sf(hi) > alpha:
            hi *= 2.0
        from scipy import optimize  # see _special

        crit = float(optimize.brentq(lambda c: sf(c) - alpha, 0.0, hi, xtol=1e-9 * hi))
        method = "fitted+rare_cells"
    simulated = float(finite.max()) if finite.size else 0.0
    crit, method = max((crit, method), (asym, "asymptotic"), (simulated, "simulated_max"))
    # evaluate() thresholds the p-value from chi2(K' - 1): the same cut on that scale.
    p_crit = float(_special().chdtrc(dof, crit))
    return CriticalValue(
        key=REGISTRY["chi2"].primary_key, critical=p_crit, statistic=crit, alpha=alpha,
        method=method, scale=a, dof=nu, null_mean=mean, expected=float(dof), rare=rare,
    )  # fmt: skip


def _missing_calibration(
    ratio: float, n_window: int, n_reference_total: int, alpha: float
) -> CriticalValue:
    """Critical window-minus-reference missing ratio (module doc: binomial law)."""
    missing = round(ratio * n_reference_total)
    if n_reference_total > 0 and missing < n_reference_total:
        upper = float(
            _special().betaincinv(missing + 1, n_reference_total - missing, 1 - alpha / 2)
        )
    else:
        upper = 1.0 if n_reference_total > 0 else ratio
    # smallest k with P(X > k) <= alpha / 2 for X ~ Binomial(n_window, upper)
    lo, hi = 0, n_window
    while lo < hi:
        mid = (lo + hi) // 2
        if float(_special().bdtrc(mid, n_window, upper)) <= alpha / 2:
            hi = mid
        else:
            lo = mid + 1
    crit = min(1.0, lo / n_window) - ratio
    return CriticalValue(
        key="missing_ratio", critical=max(crit, 0.0), statistic=lo, alpha=alpha,
        method="binomial", expected=ratio,
    )  # fmt: skip


def _selected(
    profile: ReferenceProfile, tests: Mapping[str, Sequence[str]] | Sequence[str]
) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for name, f in profile.features.items():
        kind = FeatureKind.NUMERIC if isinstance(f, NumericProfile) else FeatureKind.CATEGORICAL
        chosen = tests.get(name, TESTS) if isinstance(tests, Mapping) else tests
        unknown = [t for t in chosen if t not in REGISTRY]
        if unknown:
            raise ValueError(f"unknown drift test(s) {unknown}; valid: {', '.join(TESTS)}")
        # sequential tests have thresholds of their own (monitor.stats.sequential_calibration)
        out[name] = tuple(
            t for t in chosen if kind in REGISTRY[t].kinds and not REGISTRY[t].sequential
        )
    return out


def calibrate(
    profile: ReferenceProfile,
    budget: Budget,
    *,
    tests: Mapping[str, Sequence[str]] | Sequence[str] = DEFAULT_TESTS,
    missing_ratio: bool = True,
    reference_events: int | None = None,
    draws: int = 1000,
    seed: int = 0,
    sequential_checks: float = 0,
) -> Calibration:
    """Critical values of every selected test of every feature for ``budget``.

    ``tests`` as in :func:`~monitor.stats.drift.evaluate` (the model's ``tests``; each runs
    where it applies); ``missing_ratio`` adds the missing-ratio check to each feature.
    ``reference_events``: the reference's sample size; ``None`` uses each feature's
    non-missing count in the profile, ``0`` treats the reference as the exact distribution.
    ``sequential_checks``: the sequential tests sharing the budget, counted in window
    checks (:meth:`monitor.stats.budget_split.BudgetSplit.window_equivalents`; sequential
    tests named in ``tests`` are left to :mod:`monitor.stats.sequential_calibration`).
    Seeded: the same inputs give the same critical values.

    Examples
    --------
    >>> import numpy as np
    >>> from monitor.stats import FeatureKind, build_profile
    >>> rng = np.random.default_rng(0)
    >>> p = build_profile("m", {"x": rng.normal(size=50_000)}, {"x": FeatureKind.NUMERIC})
    >>> b = Budget(1.0, window_events=10_000, slide_events=1_000, events_per_second=100)
    >>> cal = calibrate(p, b, tests=["psi"], draws=300)
    >>> t = cal.features["x"]["psi"]
    >>> round(t.expected, 5)  # (B - 1)(1/N + 1/M), B = 10 buckets
    0.00108
    >>> 0.005 < cal.thresholds()["x"].psi < 0.05
    True
    """
    if draws < 50:
        raise ValueError("draws must be >= 50 for a stable fit")
    chosen = _selected(profile, tests)
    checks = sum(len(t) for t in chosen.values()) + (len(chosen) if missing_ratio else 0)
    if checks + sequential_checks == 0:
        raise ValueError("no test to calibrate")
    alpha_eval = budget.alpha_evaluation
    alpha = alpha_eval / (checks + sequential_checks)
    n = budget.window_events
    names = [*profile.numeric_names, *profile.categorical_names]
    ref_n = np.array(
        [(profile.features[x].n if reference_events is None else reference_events) for x in names],
        np.int64,
    )
    lay = layout_of(profile)
    num_out, cat_out = _simulate(profile, n, ref_n, draws, seed)
    features: dict[str, dict[str, CriticalValue]] = {}
    for j, name in enumerate(names):
        f = profile.features[name]
        numeric = isinstance(f, NumericProfile)
        i = j if numeric else j - lay.n_numeric
        ratio = float(lay.ref_missing_ratio[j])
        window_n = n * (1.0 - ratio)
        m_j = int(ref_n[j])
        inv_n = 1.0 / max(window_n, 1.0) + (1.0 / m_j if m_j > 0 else 0.0)
        cells = int(lay.n_buckets[i]) if numeric else int(np.count_nonzero(f.counts))
        out: dict[str, CriticalValue] = {}
        for test in chosen[name]:
            key = REGISTRY[test].primary_key
            if test == "ks":
                out[key] = CriticalValue(
                    key=key, critical=alpha, statistic=math.nan, alpha=alpha, method="p_value"
                )
            elif test == "chi2":
                out[key] = _chi2_calibration(
                    cat_out[:, i, kernels.CAT_CHI2], alpha, f.counts, window_n, int(ref_n[j])
                )
            else:
                column = (num_out[:, i, _NUM_COL[test]] if numeric
                          else cat_out[:, i, _CAT_COL[test]])  # fmt: skip
                out[key] = _score_calibration(test, column, alpha, cells, inv_n)
        if missing_ratio:
            out["missing_ratio"] = _missing_calibration(ratio, n, f.n + f.missing, alpha)
        features[name] = out
    return Calibration(
        model=profile.model,
        budget=budget,
        alpha_evaluation=alpha_eval,
        alpha_test=alpha,
        checks_per_evaluation=checks,
        window_events=n,
        reference_events={x: int(v) for x, v in zip(names, ref_n, strict=True)},
        draws=draws,
        seed=seed,
        features={x: features[x] for x in profile.features},
        profile_created_at=profile.created_at,
    )
