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

from monitor.app.message_files import InputFormat, decoded_chunks
from monitor.app.rejections import RejectionLog, RejectionSummary
from monitor.app.replay import note_rejections
from monitor.config import Config
from monitor.config.base import nearest
from monitor.errors import ConfigProblem, ProfileError, UsageError
from monitor.ingest.decode import Reason
from monitor.model.budget import ModelCalibration, calibrate_model
from monitor.model.performance import label_only_rows, performance_spec, prediction_names
from monitor.model.reference_file import ReferenceFile
from monitor.performance import ReferencePerformance, encode_labels
from monitor.pipeline import schema_for
from monitor.stats import FeatureKind, ReferenceProfile, build_profile

logger = logging.getLogger(__name__)


def _kinds(config: Config, model: str) -> dict[str, FeatureKind]:
    if model not in config.models:
        hint = nearest(model, sorted(config.models), "configured models")
        raise UsageError(ConfigProblem("--model", f"no model named {model!r} in the config", hint))
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
    config: Config,
    model: str,
    path: Path,
    labelled: _Labelled,
    rejections: RejectionSummary,
    messages: tuple[InputFormat, str | None] = ("lines", None),
) -> tuple[dict[str, object], int]:
    """The feature columns of a file of messages (JSON lines, or length-delimited with
    ``messages``: the input format and the topic whose format reads them) and the number
    of label-only events (which are not profiled); rejected lines go into ``rejections``."""
    schema = schema_for(config, messages[1], bound_model=model)
    columns = schema.models[model]
    numeric: list[np.ndarray] = []
    categorical: list[list[str | None]] = [[] for _ in columns.categorical_names]
    log = RejectionLog()
    labels_only = 0
    for got, rejected, numbers in decoded_chunks(config, model, path, *messages):
        if rejected:
            note_rejections(rejected, numbers, rejections, log)
        if got is None or len(got.ts) == 0:
            continue
        labelled.add(got.numeric, got.labels, got.ids)
        label_only = label_only_rows(got, labelled.index.tolist())
        if label_only is not None:
            labels_only += int(label_only.sum())
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
    return data, labels_only


def _from_csv(
    kinds: dict[str, FeatureKind], path: Path, labelled: _Labelled, rejections: RejectionSummary
) -> dict[str, object]:
    numeric: dict[str, list[float]] = {n: [] for n, k in kinds.items() if k is FeatureKind.NUMERIC}
    categorical: dict[str, list[str | None]] = {
        n: [] for n, k in kinds.items() if k is FeatureKind.CATEGORICAL
    }
    labels: list[Any] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header: Sequence[str] = reader.fieldnames or []
        absent = [name for name in kinds if name not in header]
        if absent:
            raise ProfileError(
                f"{path}: CSV has no column(s) {', '.join(absent)}; "
                f"expected one column per feature: {', '.join(kinds)} (comma-separated, "
                f"the header first; its header reads {', '.join(map(repr, header)) or 'nothing'})"
            )
        for row in reader:
            parsed: dict[str, float] = {}
            bad: tuple[Reason, str] | None = None
            for name in numeric:
                cell = (row.get(name) or "").strip()
                if not cell:
                    parsed[name] = math.nan
                    continue
                try:
                    value = float(cell)
                except ValueError:
                    bad = Reason.wrong_type, f"column {name!r}: {cell[:40]!r} is not a number"
                    break
                if not math.isfinite(value):
                    bad = Reason.non_finite, f"column {name!r}: {cell!r} is not finite"
                    break
                parsed[name] = value
            if bad is not None:
                rejections.add(str(bad[0]), reader.line_num, bad[1])
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
    return {name: data[name] for name in kinds}


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
    return profile, rejected.total


def build_reference(
    config: Config,
    model: str,
    input_path: Path,
    messages: tuple[InputFormat, str | None] = ("lines", None),
) -> tuple[ReferenceProfile, ReferencePerformance | None, RejectionSummary]:
    """The profile of ``model`` and, for a model with a ``performance`` section whose file
    carries labelled predictions, its reference performance; plus the rejected rows (per
    reason, with the first examples' line numbers). ``messages``: how a non-CSV file
    holds its messages and which topic's format reads them (``message_files``)."""
    kinds = _kinds(config, model)
    if not input_path.exists():
        raise ProfileError(f"{input_path}: no such file")
    model_config = config.models[model]
    numeric_names = [n for n, k in kinds.items() if k is FeatureKind.NUMERIC]
    labelled = _Labelled([numeric_names.index(n) for n in prediction_names(model_config)])
    rejections = RejectionSummary(str(input_path))
    labels_only = 0
    if input_path.suffix.lower() == ".csv":
        data = _from_csv(kinds, input_path, labelled, rejections)
    else:
        data, labels_only = _from_jsonl(config, model, input_path, labelled, rejections, messages)
    rows = max((len(v) for v in data.values()), default=0)  # type: ignore[arg-type]
    if rows == 0:
        raise ProfileError(
            f"{input_path}: no valid events for model {model!r}: "
            + _why_empty(rejections, labels_only)
        )
    _warn_empty_features(model, input_path, data)
    profile = build_profile(
        model,
        data,  # type: ignore[arg-type]
        kinds,
        bins=model_config.bins,
        max_categories=model_config.max_categories,
        psi_buckets=model_config.psi_buckets,
        source=input_path.name,
    )
    return profile, _reference_performance(config, model, labelled), rejections


def _why_empty(rejections: RejectionSummary, labels_only: int) -> str:
    """Why a file gave no rows to profile, for the error message."""
    parts = []
    if rejections.total:
        parts.append(
            f"{rejections.total} event(s) rejected ({rejections.why()}; first: "
            f"{rejections.first_example()})"
        )
    if labels_only:
        parts.append(f"{labels_only} label event(s) without features or prediction")
    if not parts:
        return "the file holds no events"
    return " and ".join(parts)


def _warn_empty_features(model: str, path: Path, data: dict[str, object]) -> None:
    """A configured feature no row carries is a naming or schema problem: say so now,
    before the daemon reports the feature absent from every window."""
    for name, values in data.items():
        if isinstance(values, np.ndarray):
            empty = not np.isfinite(values).any()
        else:
            empty = all(v is None for v in values)  # type: ignore[attr-defined]
        if empty:
            logger.warning(
                "configured feature has no values in the training file",
                extra={
                    "model": model,
                    "feature": name,
                    "file": str(path),
                    "hint": "check the feature name against the events' keys (or the CSV "
                    "header); the profile records it as always missing",
                },
            )


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
