"""Configs, profiles and events for the many-models benchmarks (one place, several users).

``N`` models with the same ``features`` numeric features, all reading one reference file,
and events spread over them in a shuffled order (every model's events interleaved).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson

from monitor.stats import FeatureKind, build_profile


def model_names(models: int) -> list[str]:
    return [f"m{k:04d}" for k in range(models)]


def write_profile(path: Path, features: int) -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    data: dict[str, Any] = {f"x{j}": rng.normal(0, 1, n) for j in range(features)}
    data["prediction"] = rng.random(n)
    build_profile("bench", data, dict.fromkeys(data, FeatureKind.NUMERIC), source="bench").save(
        path
    )


def config_text(
    directory: Path,
    models: int,
    features: int,
    *,
    window: int,
    slide: int,
    tests: str = "[psi, ks, js]",
    kafka: str = "",
    http_port: int = 0,
) -> str:
    """A config of ``models`` models sharing ``directory / "ref.json"``."""
    reference = directory / "ref.json"
    feature_lines = "".join(f"      x{j}: {{type: numeric}}\n" for j in range(features))
    body = (
        f"    reference: {reference}\n"
        f"    window: {{events: {window}, slide: {slide}}}\n"
        f"    features:\n{feature_lines}"
        f"    prediction: {{type: numeric}}\n"
        f"    tests: {tests}\n"
    )
    series = models * (features + 1) * 3 * 2
    sections = "".join(f"  {name}:\n{body}" for name in model_names(models))
    return (
        f"{kafka}http: {{host: 127.0.0.1, port: {http_port}}}\n"
        f"limits: {{max_series: {max(series, 10_000)}}}\n"
        f"models:\n{sections}"
    )


def events(n: int, models: int, features: int, seed: int) -> list[bytes]:
    """``n`` events, model of each drawn uniformly (so every batch mixes all models)."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 1.0, (n, features)).round(4).tolist()
    prediction = rng.random(n).round(5).tolist()
    which = rng.integers(0, models, n).tolist()
    names = model_names(models)
    keys = [f"x{j}" for j in range(features)]
    return [
        orjson.dumps(
            {
                "model": names[which[i]],
                "ts": 1.7e9 + i * 0.001,
                "id": f"r{i}",
                "features": dict(zip(keys, values[i], strict=True)),
                "prediction": prediction[i],
            }
        )
        for i in range(n)
    ]
