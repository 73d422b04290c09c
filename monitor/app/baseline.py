"""``driftmon baseline``: build a reference profile from a JSON-lines or CSV file.

JSON lines hold events in the daemon's event format (field names of the first configured
topic); every event is taken as the requested model's, so the ``model`` field is optional. CSV
files hold one column per monitored feature (``prediction`` / ``prediction.<class>``
columns included); empty cells are missing values.

Reference performance: for a model with a ``performance`` section, the metrics on the
file's labelled predictions (and, for classifiers, the isotonic calibration estimation
needs) are stored in the profile JSON under ``performance``. Labels come inline (a
``label`` field next to the prediction, a ``label`` CSV column) or, in JSON lines, as
label events joined to their prediction by ``id`` (the first label of an id wins).
Label events are not part of the feature profile.

False-alarm budget: for a model with ``alert.false_alarms_per_month``, the calibration of
the new profile is stored in the profile JSON under ``calibration``
(:func:`calibrate_reference`), so the daemon and ``replay`` start without computing it as
long as the profile and every budget parameter are unchanged (a digest of both decides).
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monitor.app.replay import iter_chunks
from monitor.config import Config
from monitor.errors import ConfigError, ConfigProblem, ProfileError
from monitor.ingest.decode import decode_batch
from monitor.model.budget import ModelCalibration, calibrate_model
from monitor.model.performance import label_only_rows, performance_spec, prediction_names
from monitor.model.reference_file import ReferenceFile
from monitor.performance import ReferencePerformance, encode_labels
from monitor.pipeline import schema_for
from monitor.stats import FeatureKind, ReferenceProfile, build_profile

logger = logging.getLogger(__name__)


def _kinds(config: Config, model: str) -> dict[str, FeatureKind]:
    if model not in config.models:
        known = ", ".join(sorted(config.models))
        raise ConfigError(
            [ConfigProblem("models", f"no model named {model!r}", f"configured models: {known}")]
        )
    return {name: FeatureKind(kind) for name, kind in config.models[model].feature_kinds().items()}


class _Labelled:
    """Predictions and labels of a baseline file, paired inline or by id."""

    def __init__(self, prediction_index: Sequence[int]) -> None:
        self.index = np.asarray(prediction_index, dtype=np.int64)
        self.pairs: list[tuple[np.ndarray, Any]] = []  # inline
        self.by_id: dict[str, np.ndarray] = {}  # predictions with an id and no label
        self.labels: dict[str, Any] = {}  # label events, first one per id

    def add(self, numeric: np.ndarray, labels: Sequence[Any] | None, ids: Sequence[Any]) -> None:
        if not self.index.size:
            return
        pred = numeric[:, self.index]
        ok = np.isfinite(pred).all(axis=1).tolist()
        for row, good in enumerate(ok):
            label = labels[row] if labels is not None else None
            if good and label is not None:
                self.pairs.append((pred[row], label))
            elif good and ids[row] is not None:
                self.by_id.setdefault(ids[row], pred[row])
            elif label is not None and ids[row] is not None:
                self.labels.setdefault(ids[row], label)

    def rows(self) -> tuple[np.ndarray, list[Any]]:
        pairs = self.pairs + [
            (pred, self.labels[i]) for i, pred in self.by_id.items() if i in self.labels
        ]
        width = max(1, int(self.index.size))
        pred = np.array([p for p, _ in pairs], dtype=np.float64).reshape(len(pairs), width)
        return pred, [label for _, label in pairs]


def _from_jsonl(
    config: Config, model: str, path: Path, labelled: _Labelled
) -> tuple[dict[str, object], int]:
    schema = schema_for(config, None, bound_model=model)
    columns = schema.models[model]
    numeric: list[np.ndarray] = []
    categorical: list[list[str | None]] = [[] for _ in columns.categorical_names]
    rejected = 0
    for chunk in iter_chunks(path):
        kafka_ts = np.zeros(len(chunk))
        decoded = decode_batch(chunk, kafka_ts, schema)
        rejected += len(decoded.rejected)
        got = decoded.models.get(model)
        if got is None or len(got.ts) == 0:
            continue
        labelled.add(got.numeric, got.labels, got.ids)
        label_only = label_only_rows(got, labelled.index.tolist())
        if label_only is not None:
            got = got.take(np.flatnonzero(~label_only))
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


def _from_csv(
    kinds: dict[str, FeatureKind], path: Path, labelled: _Labelled
) -> tuple[dict[str, object], int]:
    numeric: dict[str, list[float]] = {n: [] for n, k in kinds.items() if k is FeatureKind.NUMERIC}
    categorical: dict[str, list[str | None]] = {
        n: [] for n, k in kinds.items() if k is FeatureKind.CATEGORICAL
    }
    rejected = 0
    labels: list[Any] = []
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
            labels.append(_csv_label(row.get("label")))
    data: dict[str, object] = {n: np.asarray(v, dtype=np.float64) for n, v in numeric.items()}
    data.update(categorical)
    columns = [np.asarray(v, dtype=np.float64) for v in numeric.values()]
    matrix = np.column_stack(columns) if columns else np.empty((len(labels), 0))
    labelled.add(matrix, labels, [None] * len(labels))
    return {name: data[name] for name in kinds}, rejected


def _csv_label(cell: str | None) -> Any:
    """A CSV cell as the JSON value a label event would carry (numbers as numbers)."""
    text = (cell or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


def build_baseline(config: Config, model: str, input_path: Path) -> tuple[ReferenceProfile, int]:
    """The profile of ``model`` from a file; returns it with the number of rejected rows."""
    profile, _, rejected = build_reference(config, model, input_path)
    return profile, rejected


def build_reference(
    config: Config, model: str, input_path: Path
) -> tuple[ReferenceProfile, ReferencePerformance | None, int]:
    """The profile of ``model`` and, for a model with a ``performance`` section whose file
    carries labelled predictions, its reference performance; plus the rejected rows."""
    kinds = _kinds(config, model)
    if not input_path.exists():
        raise ProfileError(f"{input_path}: no such file")
    model_config = config.models[model]
    numeric_names = [n for n, k in kinds.items() if k is FeatureKind.NUMERIC]
    labelled = _Labelled([numeric_names.index(n) for n in prediction_names(model_config)])
    if input_path.suffix.lower() == ".csv":
        data, rejected = _from_csv(kinds, input_path, labelled)
    else:
        data, rejected = _from_jsonl(config, model, input_path, labelled)
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
    return profile, _reference_performance(config, model, labelled), rejected


def _reference_performance(
    config: Config, model: str, labelled: _Labelled
) -> ReferencePerformance | None:
    model_config = config.models[model]
    if model_config.performance is None:
        return None
    predictions, raw = labelled.rows()
    # Calibrate for estimation whenever the task allows, so it can be switched on later.
    spec = performance_spec(model_config, estimation=True)
    labels = encode_labels(raw, spec)
    if not np.isfinite(labels).any():
        logger.warning(
            "no labelled predictions in the baseline file: the profile has no reference "
            "performance",
            extra={"model": model, "labels": len(raw)},
        )
        return None
    try:
        return ReferencePerformance.build(spec, predictions, labels)
    except ValueError as exc:
        logger.warning(
            "cannot calibrate performance estimation on the baseline file",
            extra={"model": model, "error": str(exc)},
        )
        return ReferencePerformance.build(performance_spec(model_config), predictions, labels)


def calibrate_reference(
    config: Config, model: str, profile: ReferenceProfile
) -> ModelCalibration | None:
    """The false-alarm budget calibration of a new profile (``None`` without a budget)."""
    model_config = config.models[model]
    if not model_config.alert.has_budget:
        return None
    return calibrate_model(model_config, profile)


def save_reference(
    path: Path,
    profile: ReferenceProfile,
    performance: ReferencePerformance | None,
    calibration: ModelCalibration | None = None,
) -> None:
    """Write the profile JSON (atomically), with the reference performance under
    ``performance`` and the budget calibration under ``calibration`` when there are
    ones; profile readers ignore the extra keys."""
    ReferenceFile(path).write(profile, performance, calibration)
