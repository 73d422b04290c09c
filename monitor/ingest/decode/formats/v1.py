"""KServe v1 bodies: ``{"instances": [...]}`` requests and ``{"predictions": [...]}``
responses, as tensors, one per feature.

Positional instances (``[[6.8, 2.8], ...]``) are one ``[N,F]`` tensor named ``instances``:
the topic's ``tensors: {instances: [...]}`` names its columns, else the model's features in
configured order. Object instances (``[{"age": 41, ...}, ...]``) give a column per key
(a key absent from a row is missing there). Predictions are ``[N]`` scores or labels, or
``[N,K]`` class probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import repeat
from typing import Any

import numpy as np

from monitor.ingest.decode.formats.tensors import BYTES, Inference, Malformed, Tensor
from monitor.ingest.decode.schema import ModelSchema, Reason
from monitor.ingest.decode.values import type_name

__all__ = ["inference_from_v1"]

_NUMBERS = frozenset({int, float, bool, type(None)})


def inference_from_v1(
    body: dict[str, Any], ms: ModelSchema, tensors: Mapping[str, tuple[str, ...]]
) -> Inference:
    """A v1 request or response body (already parsed) for model ``ms``."""
    if "instances" in body:
        rows = body["instances"]
        if type(rows) is not list or not rows:
            raise Malformed(Reason.no_payload, "instances is empty or not an array")
        if all(type(r) is dict for r in rows):
            return Inference(True, _object_columns(rows, ms), id=_id(body))
        names = tensors.get("instances") or ms.order
        return Inference(True, _positional_columns(rows, names, ms), id=_id(body))
    preds = body.get("predictions")
    if type(preds) is not list or not preds:
        raise Malformed(Reason.no_payload, "neither instances nor predictions")
    values = _array(preds, "predictions")
    if values.dtype.kind in "biuf":
        return Inference(False, [Tensor("predictions", "FP64", values)], id=_id(body))
    if values.ndim != 1 or not set(map(type, preds)) <= {str}:
        raise Malformed(Reason.bad_datatype, "predictions are neither numbers nor labels")
    return Inference(False, [Tensor("predictions", BYTES, values)], id=_id(body))


def _object_columns(rows: list[dict[str, Any]], ms: ModelSchema) -> list[Tensor]:
    out = []
    for name in (*ms.numeric, *ms.categorical):
        col = list(map(dict.get, rows, repeat(name)))
        if col.count(None) == len(col):
            continue
        out.append(_feature(name, col, name in ms.numeric))
    known = len(out)
    if known == 0:
        raise Malformed(Reason.no_payload, "no monitored feature in any instance")
    return out


def _positional_columns(rows: list[Any], names: tuple[str, ...], ms: ModelSchema) -> list[Tensor]:
    if not all(type(r) is list for r in rows):
        raise Malformed(Reason.wrong_type, "instances mix arrays and other values")
    width = len(rows[0])
    if not names or any(len(r) != width for r in rows) or width != len(names):
        raise Malformed(
            Reason.bad_shape,
            f"instances have {width} columns, {len(names)} features are configured "
            "(name them in order under the topic's `tensors: {instances: [...]}`)",
        )
    grid = np.empty((len(rows), width), dtype=object)
    try:
        grid[:] = rows
    except ValueError:  # nested arrays inside a row
        raise Malformed(Reason.wrong_type, "instance values are nested arrays") from None
    numeric = set(ms.numeric)
    return [_feature(n, grid[:, j].tolist(), n in numeric) for j, n in enumerate(names)]


def _feature(name: str, col: list[Any], numeric: bool) -> Tensor:
    if numeric:
        if not set(map(type, col)) <= _NUMBERS:
            bad = next(v for v in col if type(v) not in _NUMBERS)
            raise Malformed(
                Reason.wrong_type, f"feature {name!r}: expected a number, got {type_name(bad)}"
            )
        return Tensor(name, "FP64", np.array(col, dtype=np.float64))
    if not set(map(type, col)) <= {str, int, bool, type(None)}:
        raise Malformed(Reason.wrong_type, f"feature {name!r}: expected a category")
    text = [
        v
        if type(v) is str or v is None
        else ("true" if v is True else "false" if v is False else str(v))
        for v in col
    ]
    return Tensor(name, BYTES, np.array(text, dtype=object))


def _array(values: list[Any], what: str) -> np.ndarray:
    try:
        arr = np.asarray(values)
    except ValueError:
        raise Malformed(Reason.bad_shape, f"{what} are ragged") from None
    if arr.ndim > 2:
        raise Malformed(Reason.bad_shape, f"{what} have {arr.ndim} dimensions")
    return arr


def _id(body: dict[str, Any]) -> str | None:
    value = body.get("id")
    return value if type(value) is str and value else None
