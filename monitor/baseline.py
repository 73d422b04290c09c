"""``driftmon baseline``: build a reference profile from a JSON-lines or CSV file.

JSON lines hold events in the daemon's event format (field names of the first configured
topic); every event is taken as the requested model's, so the ``model`` field is optional. CSV
files hold one column per monitored feature (``prediction`` / ``prediction.<class>``
columns included); empty cells are missing values.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from monitor.config import Config
from monitor.decode import decode_batch
from monitor.errors import ConfigError, ConfigProblem, ProfileError
from monitor.pipeline import schema_for
from monitor.replay import iter_chunks
from monitor.stats import FeatureKind, ReferenceProfile, build_profile

logger = logging.getLogger(__name__)


def _kinds(config: Config, model: str) -> dict[str, FeatureKind]:
    if model not in config.models:
        known = ", ".join(sorted(config.models))
        raise ConfigError(
            [ConfigProblem("models", f"no model named {model!r}", f"configured models: {known}")]
        )
    return {name: FeatureKind(kind) for name, kind in config.models[model].feature_kinds().items()}


def _from_jsonl(config: Config, model: str, path: Path) -> tuple[dict[str, object], int]:
    schema = schema_for(config, None, bound_model=model)
    columns = schema.models[model]
    numeric: list[np.ndarray] = []
    categorical: list[list[str | None]] = [[] for _ in columns.categorical_names]
    rejected = 0
    for chunk in iter_chunks(path):
        decoded = decode_batch(chunk, np.zeros(len(chunk)), schema)
        rejected += len(decoded.rejected)
        got = decoded.models.get(model)
        if got is None:
            continue
        numeric.append(got.numeric)
        for j, values in enumerate(got.categorical):
            categorical[j].extend(values)
    data: dict[str, object] = {}
    matrix = (
        np.concatenate(numeric, axis=0)
        if numeric
        else np.empty((0, len(columns.numeric_names)), dtype=np.float64)
    )
    for i, name in enumerate(columns.numeric_names):
        data[name] = matrix[:, i]
    for j, name in enumerate(columns.categorical_names):
        data[name] = categorical[j]
    return data, rejected


def _from_csv(kinds: dict[str, FeatureKind], path: Path) -> tuple[dict[str, object], int]:
    numeric: dict[str, list[float]] = {n: [] for n, k in kinds.items() if k is FeatureKind.NUMERIC}
    categorical: dict[str, list[str | None]] = {
        n: [] for n, k in kinds.items() if k is FeatureKind.CATEGORICAL
    }
    rejected = 0
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header: Sequence[str] = reader.fieldnames or []
        absent = [name for name in kinds if name not in header]
        if absent:
            raise ProfileError(
                f"{path}: CSV has no column(s) {', '.join(absent)}; "
                f"expected one column per feature: {', '.join(kinds)}"
            )
        for row in reader:
            parsed: dict[str, float] = {}
            ok = True
            for name in numeric:
                cell = (row.get(name) or "").strip()
                if not cell:
                    parsed[name] = math.nan
                    continue
                try:
                    value = float(cell)
                except ValueError:
                    ok = False
                    break
                if not math.isfinite(value):
                    ok = False
                    break
                parsed[name] = value
            if not ok:
                rejected += 1
                continue
            for name, value in parsed.items():
                numeric[name].append(value)
            for name in categorical:
                cell = row.get(name)
                categorical[name].append(cell if cell not in (None, "") else None)
    data: dict[str, object] = {n: np.asarray(v, dtype=np.float64) for n, v in numeric.items()}
    data.update(categorical)
    return {name: data[name] for name in kinds}, rejected


def build_baseline(config: Config, model: str, input_path: Path) -> tuple[ReferenceProfile, int]:
    """The profile of ``model`` from a file; returns it with the number of rejected rows."""
    kinds = _kinds(config, model)
    if not input_path.exists():
        raise ProfileError(f"{input_path}: no such file")
    if input_path.suffix.lower() == ".csv":
        data, rejected = _from_csv(kinds, input_path)
    else:
        data, rejected = _from_jsonl(config, model, input_path)
    rows = max((len(v) for v in data.values()), default=0)  # type: ignore[arg-type]
    if rows == 0:
        raise ProfileError(f"{input_path}: no valid events for model {model!r}")
    model_config = config.models[model]
    profile = build_profile(
        model,
        data,  # type: ignore[arg-type]
        kinds,
        bins=model_config.bins,
        max_categories=model_config.max_categories,
        psi_buckets=model_config.psi_buckets,
        source=input_path.name,
    )
    return profile, rejected
