"""Seeded scenario streams: 20 monitored columns of mixed types, with and without drift.

Eleven numeric features (Gaussian noise, heavy tails, log-normal, discrete counts, rounded
values, a 1 % missing rate, gamma, bimodal, uniform), eight categorical ones (from 2 to 40
categories, several rare ones at 0.1-0.5 %), and a numeric prediction computed from three
features. Every scenario draws its own reference (100,000 rows by default) and its stream
from independent seeds; a drift scenario changes the stream at ``change_at``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUMERIC = ("n00", "n01", "n02", "t03", "ln04", "poi05", "rnd06", "miss07", "gam08", "bim09",
           "uni10", "prediction")  # fmt: skip
CATEGORICAL = ("c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7")
#: Numeric features shifted by the mean-shift scenarios, in order (1, 3 or 10 of them).
SHIFTED = ("n00", "t03", "poi05", "gam08", "n01", "ln04", "rnd06", "bim09", "n02", "uni10")


def _zipf(k: int, s: float = 1.1) -> np.ndarray:
    p = 1.0 / np.arange(1, k + 1) ** s
    return p / p.sum()


_CAT_P = {
    "c0": np.array([0.6, 0.3, 0.1]),
    "c1": _zipf(10),
    "c2": _zipf(40, 1.4),  # long tail of rare categories
    "c3": np.full(5, 0.2),
    "c4": np.array([0.95, 0.05]),
    "c5": np.r_[np.full(15, 0.99 / 15), np.full(5, 0.002)],  # five categories at 0.2 %
    "c6": _zipf(8, 0.7),
    "c7": np.array([0.4, 0.3, 0.2, 0.1]),
}
#: Population standard deviation of each shiftable feature (for shifts in sd units).
_SD = {
    "n00": 1.0, "n01": 1.0, "n02": 1.0, "t03": float(np.sqrt(2.5 / 0.5)),
    "ln04": float(np.sqrt((np.e**0.36 - 1) * np.e**0.36)), "poi05": float(np.sqrt(2.0)),
    "rnd06": 10.0, "miss07": 1.0, "gam08": float(np.sqrt(2.0)), "bim09": float(np.sqrt(1 + 2.25)),
    "uni10": float(np.sqrt(1 / 12)),
}  # fmt: skip


@dataclass
class Change:
    """What happens to the stream from ``change_at`` on."""

    mean_shift: float = 0.0  # in sd units
    features: tuple[str, ...] = ()
    variance: float = 1.0  # sd multiplier
    ramp_events: int = 0  # gradual: the shift grows linearly over this many events
    new_category: float = 0.0  # share of a never-seen category in c2
    missing_to: float | None = None  # miss07's missing rate after the change
    prediction_shift: float = 0.0  # logit shift of the prediction only


def draw(rng: np.random.Generator, n: int, change: Change | None = None, start: int = 0
         ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``n`` rows (numeric float64 with NaN, categorical int64 codes with -1 missing).

    ``start``: index of the first row relative to the change (negative: before it).
    """
    cols: dict[str, np.ndarray] = {
        "n00": rng.normal(size=n), "n01": rng.normal(size=n), "n02": rng.normal(size=n),
        "t03": rng.standard_t(2.5, n), "ln04": rng.lognormal(0.0, 0.6, n),
        "poi05": rng.poisson(2.0, n).astype(np.float64),
        "rnd06": np.round(rng.normal(50.0, 10.0, n)), "miss07": rng.normal(size=n),
        "gam08": rng.gamma(2.0, 1.0, n),
        "bim09": np.where(rng.random(n) < 0.5, -1.5, 1.5) + rng.normal(size=n),
        "uni10": rng.random(n),
    }  # fmt: skip
    pos = start + np.arange(n)
    after = pos >= 0
    c = change or Change()
    if change is not None and after.any():
        factor = np.where(after, 1.0, 0.0)
        if c.ramp_events:
            factor = np.clip((pos + 1) / c.ramp_events, 0.0, 1.0) * after
        for f in c.features:
            mean = float(np.mean(cols[f]))
            if c.variance != 1.0:
                cols[f] = np.where(after, mean + (cols[f] - mean) * c.variance, cols[f])
            cols[f] = cols[f] + c.mean_shift * _SD[f] * factor
    miss_rate = np.where(after & (c.missing_to is not None), c.missing_to or 0.0, 0.01)
    cols["miss07"][rng.random(n) < miss_rate] = np.nan
    logit = 0.8 * cols["n00"] + 0.4 * (cols["gam08"] - 2.0) - 0.5 * cols["n01"]
    logit = logit + rng.normal(0.0, 0.5, n) + c.prediction_shift * after
    cols["prediction"] = 1.0 / (1.0 + np.exp(-logit))
    num = np.column_stack([cols[k] for k in NUMERIC])
    cat = np.empty((n, len(CATEGORICAL)), np.int64)
    for j, name in enumerate(CATEGORICAL):
        p = _CAT_P[name]
        cat[:, j] = rng.choice(p.size, n, p=p)
    if c.new_category:
        new = after & (rng.random(n) < c.new_category)
        cat[new, CATEGORICAL.index("c2")] = _CAT_P["c2"].size  # a code never seen before
    cat[rng.random((n, len(CATEGORICAL))) < 0.002] = -1  # a little missingness everywhere
    return num, cat


@dataclass
class Scenario:
    name: str
    change: Change | None
    truth: tuple[str, ...]
    before: int  # events before the change (stream starts with an empty window)
    after: int


def scenarios(quick: bool, stationary_events: int) -> list[Scenario]:
    pre, post = (20_000, 40_000) if quick else (30_000, 70_000)
    out = [Scenario("stationary", None, (), stationary_events, 0)]
    for shift in (0.1, 0.25, 0.5):
        for k in (1, 3, 10):
            feats = SHIFTED[:k]
            truth = (*feats, "prediction") if {"n00", "gam08", "n01"} & set(feats) else feats
            out.append(Scenario(f"mean {shift} sd x{k}", Change(shift, feats), truth, pre, post))
    out += [
        Scenario("variance x1.5 x3", Change(0.0, SHIFTED[:3], variance=1.5),
                 (*SHIFTED[:3], "prediction"), pre, post),
        Scenario("gradual 0.5 sd over 100k x3", Change(0.5, SHIFTED[:3], ramp_events=100_000),
                 (*SHIFTED[:3], "prediction"), pre, 120_000),
        Scenario("new category 2%", Change(new_category=0.02), ("c2",), pre, post),
        Scenario("missing 1%->10%", Change(missing_to=0.10), ("miss07",), pre, post),
        Scenario("prediction only", Change(prediction_shift=0.5), ("prediction",), pre, post),
    ]  # fmt: skip
    return out
