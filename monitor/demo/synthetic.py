"""A seeded synthetic fraud model: realistic features, a prediction, and injectable drift.

Used by ``driftmon demo``, the end-to-end tests and the benchmarks. Eight numeric and four
categorical features plus a numeric prediction; ``drift=True`` shifts exactly the features
listed in :data:`DRIFTED_FEATURES` (and, through them, the prediction).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

if TYPE_CHECKING:
    from monitor.stats import ReferenceProfile

MODEL = "fraud"
NUMERIC = (
    "amount",
    "age",
    "account_age_days",
    "items",
    "hour",
    "distance_km",
    "velocity_1h",
    "credit_score",
)
CATEGORICAL = ("country", "device", "payment_method", "merchant_category")
DRIFTED_FEATURES = ("amount", "country", "device", "prediction")

_COUNTRIES = ("US", "DE", "GB", "FR", "BR", "IN", "JP", "ES", "IT", "NL")
_COUNTRY_P = np.array([0.30, 0.15, 0.12, 0.10, 0.08, 0.08, 0.06, 0.05, 0.03, 0.03])
_COUNTRY_P_DRIFT = np.array([0.15, 0.10, 0.08, 0.07, 0.30, 0.12, 0.06, 0.05, 0.04, 0.03])
_DEVICES = ("mobile", "desktop", "tablet")
_DEVICE_P = np.array([0.6, 0.3, 0.1])
_PAYMENTS = ("card", "paypal", "transfer", "wallet")
_PAYMENT_P = np.array([0.55, 0.2, 0.15, 0.1])
_MERCHANTS = tuple(f"mcc_{i:02d}" for i in range(20))
_MERCHANT_P = np.arange(20, 0, -1) / np.arange(20, 0, -1).sum()


@dataclass
class Columns:
    """One generated batch as columns (numeric float64 arrays, categorical string arrays)."""

    numeric: dict[str, np.ndarray]
    categorical: dict[str, np.ndarray]
    prediction: np.ndarray

    def __len__(self) -> int:
        return len(self.prediction)


def generate(rng: np.random.Generator, n: int, *, drift: bool = False) -> Columns:
    """``n`` events; with ``drift`` the features in :data:`DRIFTED_FEATURES` shift."""
    amount = rng.lognormal(mean=3.6 + (0.5 if drift else 0.0), sigma=0.9, size=n)
    age = np.clip(np.round(rng.normal(41, 12, n)), 18, 90)
    account_age = rng.exponential(400.0, n)
    items = rng.poisson(2.2, n).astype(np.float64) + 1.0
    hour = rng.integers(0, 24, n).astype(np.float64)
    distance = (rng.pareto(2.5, n) + 1.0) * 3.0
    velocity = rng.gamma(2.0, 1.5, n)
    credit = np.clip(rng.normal(680, 60, n), 300, 850)
    country = rng.choice(np.array(_COUNTRIES), n, p=_COUNTRY_P_DRIFT if drift else _COUNTRY_P)
    device = rng.choice(np.array(_DEVICES), n, p=_DEVICE_P)
    if drift:  # a device type never seen in training shows up
        device = np.where(rng.random(n) < 0.12, "smart_tv", device)
    payment = rng.choice(np.array(_PAYMENTS), n, p=_PAYMENT_P)
    merchant = rng.choice(np.array(_MERCHANTS), n, p=_MERCHANT_P)
    logit = -4.0 + 0.6 * np.log(amount) - 0.002 * account_age + 0.15 * velocity
    prediction = 1.0 / (1.0 + np.exp(-logit))
    return Columns(
        numeric={
            "amount": amount,
            "age": age,
            "account_age_days": account_age,
            "items": items,
            "hour": hour,
            "distance_km": distance,
            "velocity_1h": velocity,
            "credit_score": credit,
        },
        categorical={
            "country": country,
            "device": device,
            "payment_method": payment,
            "merchant_category": merchant,
        },
        prediction=prediction,
    )


def to_events(
    columns: Columns, *, start_ts: float, step_seconds: float, id_offset: int = 0
) -> Iterator[bytes]:
    """Serialise a batch as event-format JSON messages."""
    numeric = {k: v.tolist() for k, v in columns.numeric.items()}
    categorical = {k: v.tolist() for k, v in columns.categorical.items()}
    prediction = columns.prediction.tolist()
    for i in range(len(columns)):
        features: dict[str, object] = {k: round(v[i], 4) for k, v in numeric.items()}
        features.update({k: v[i] for k, v in categorical.items()})
        yield orjson.dumps(
            {
                "model": MODEL,
                "id": f"req-{id_offset + i}",
                "ts": round(start_ts + i * step_seconds, 3),
                "features": features,
                "prediction": round(prediction[i], 5),
            }
        )


def model_config_yaml(reference: str, *, events: int = 20000, slide: int = 2000) -> str:
    """The ``models:`` entry that monitors this synthetic model (YAML, indented for `models:`)."""
    lines = [
        f"  {MODEL}:",
        f"    reference: {reference}",
        f"    window: {{events: {events}, slide: {slide}}}",
        "    features:",
    ]
    lines += [f"      {name}: {{type: numeric}}" for name in NUMERIC]
    lines += [f"      {name}: {{type: categorical}}" for name in CATEGORICAL]
    lines += [
        "    prediction: {type: numeric}",
        "    tests: [psi, ks, js, chi2]",
        "    thresholds: {psi: 0.2, ks_p_value: 0.001, js: 0.1, chi2_p_value: 0.001}",
        "    alert: {min_features: 1, consecutive: 2, cooldown_seconds: 3600}",
    ]
    return "\n".join(lines) + "\n"


def reference_profile(
    seed: int = 7, rows: int = 50_000, source: str = "synthetic"
) -> ReferenceProfile:
    """The reference profile of the synthetic model: ``rows`` undrifted events."""
    from monitor.stats import FeatureKind, build_profile

    cols = generate(np.random.default_rng(seed), rows)
    data: dict[str, Any] = dict(cols.numeric)
    data.update({k: v.tolist() for k, v in cols.categorical.items()})
    data["prediction"] = cols.prediction
    kinds = {n: FeatureKind.NUMERIC for n in NUMERIC}
    kinds.update({n: FeatureKind.CATEGORICAL for n in CATEGORICAL})
    kinds["prediction"] = FeatureKind.NUMERIC
    return build_profile(MODEL, data, kinds, source=source)
