"""An :class:`~.tensors.Inference` onto one model's columns, and a batch's blocks into
:class:`~monitor.ingest.decode.columns.ModelColumns`.

A request fills the feature columns: a tensor of shape ``[N]`` or ``[N,1]`` named like a
monitored feature is that feature; a ``[N,F]`` tensor listed under ``tensors`` gives one
feature per column; other tensors are counted as unknown features. A response fills the
prediction columns from one output (``prediction_output``, else the first): ``[N]`` a
score or a label, ``[N,K]`` the probabilities of the configured ``classes`` in order. A
batch request of N rows becomes N rows with ids ``<request id>:<row>`` (kept as the
message's id plus row numbers: :class:`~monitor.ingest.decode.coded.Coded`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from monitor.ingest.decode.coded import Coded
from monitor.ingest.decode.columns import REQUEST, RESPONSE, WHOLE, ModelColumns
from monitor.ingest.decode.formats.tensors import BYTES, Inference, Malformed, Tensor
from monitor.ingest.decode.schema import ModelSchema, Reason

__all__ = ["Block", "assemble", "block_of", "categories"]


@dataclass(frozen=True, slots=True)
class Block:
    """The rows one message gives one model."""

    msg: int
    numeric: np.ndarray
    categorical: list[list[str | None]]
    half: int
    id: str | None
    pair_key: str | None
    version: str | None
    unknown: int = 0
    #: Event time of the rows; ``None``: the message's Kafka timestamp.
    ts: float | None = None

    @property
    def rows(self) -> int:
        return int(self.numeric.shape[0])


def block_of(
    inf: Inference,
    ms: ModelSchema,
    tensors: Mapping[str, tuple[str, ...]],
    prediction_output: str | None,
    msg: int,
    pair_key: str | None,
    ts: float | None = None,
) -> Block | None:
    """The rows of ``inf`` for model ``ms``; ``None`` for a response of a model whose
    prediction is not monitored (it has nothing to add)."""
    if not inf.tensors:
        what = "inputs" if inf.is_request else "outputs"
        raise Malformed(Reason.no_payload, f"no {what}")
    n = inf.tensors[0].rows
    if n == 0:
        raise Malformed(Reason.no_payload, f"tensor {inf.tensors[0].name!r} has no rows")
    for t in inf.tensors:
        if t.rows != n:
            raise Malformed(
                Reason.bad_shape,
                f"tensor {t.name!r} has {t.rows} rows, {inf.tensors[0].name!r} has {n}",
            )
    numeric = np.full((n, len(ms.numeric_names)), np.nan)
    categorical: list[list[str | None]] = [[None] * n for _ in ms.categorical_names]
    if inf.is_request:
        unknown = _features(inf.tensors, ms, tensors, numeric, categorical)
        half = REQUEST if ms.prediction is not None else WHOLE
    else:
        if ms.prediction is None:
            return None
        _prediction(_output(inf.tensors, prediction_output), ms, numeric, categorical)
        unknown, half = 0, RESPONSE
    row_id = inf.id or pair_key
    return Block(msg, numeric, categorical, half, row_id, pair_key, inf.version, unknown, ts)


def _features(
    inputs: Sequence[Tensor],
    ms: ModelSchema,
    tensors: Mapping[str, tuple[str, ...]],
    numeric: np.ndarray,
    categorical: list[list[str | None]],
) -> int:
    num_at = {name: j for j, name in enumerate(ms.numeric)}
    cat_at = {name: j for j, name in enumerate(ms.categorical)}
    unknown = 0
    for t in inputs:
        names = tensors.get(t.name)
        if names is None:
            if t.name not in num_at and t.name not in cat_at:
                unknown += t.rows * t.width
                continue
            names = (t.name,)
        if t.width != len(names):
            raise Malformed(
                Reason.bad_shape,
                f"tensor {t.name!r} has {t.width} columns, expected {len(names)}"
                + ("" if t.name in tensors else " (map its columns under the topic's `tensors`)"),
            )
        values = t.values.reshape(t.rows, len(names))
        for j, name in enumerate(names):
            if name in num_at:
                numeric[:, num_at[name]] = _numbers(t, values[:, j], name)
            elif name in cat_at:
                categorical[cat_at[name]] = categories(values[:, j])
            else:
                unknown += t.rows
    return unknown


def _output(outputs: Sequence[Tensor], name: str | None) -> Tensor:
    if name is None:
        return outputs[0]
    for t in outputs:
        if t.name == name:
            return t
    listed = ", ".join(repr(t.name) for t in outputs[:8])
    raise Malformed(Reason.bad_shape, f"no output {name!r} (outputs: {listed})")


def _prediction(
    t: Tensor, ms: ModelSchema, numeric: np.ndarray, categorical: list[list[str | None]]
) -> None:
    first = len(ms.numeric)
    if ms.prediction == "probabilities":
        k = len(ms.classes)
        if t.width != k:
            raise Malformed(
                Reason.bad_shape, f"output {t.name!r} has {t.width} columns, not {k} classes"
            )
        probs = t.values.reshape(t.rows, k)
        for j in range(k):
            numeric[:, first + j] = _numbers(t, probs[:, j], f"prediction.{ms.classes[j]}")
        return
    if t.width != 1:
        raise Malformed(Reason.bad_shape, f"output {t.name!r} has {t.width} columns, expected 1")
    column = t.values.reshape(t.rows)
    if ms.prediction == "numeric":
        numeric[:, first] = _numbers(t, column, "prediction")
    else:
        categorical[-1] = categories(column)


def _numbers(t: Tensor, column: np.ndarray, name: str) -> np.ndarray:
    if t.datatype == BYTES:
        raise Malformed(Reason.bad_datatype, f"feature {name!r}: tensor {t.name!r} is BYTES")
    # NaN is a missing value (raw contents have no null); infinity is not a value
    if column.dtype.kind == "f" and np.isinf(column).any():
        raise Malformed(Reason.non_finite, f"feature {name!r}: infinity")
    return column


def categories(column: np.ndarray) -> list[str | None]:
    """Category strings by the native format's rules (bools true/false, numbers as text)."""
    if column.dtype.kind == "O":
        out: list[str | None] = column.tolist()
        return out
    if column.dtype.kind == "b":
        return np.where(column, "true", "false").tolist()  # type: ignore[no-any-return]
    if column.dtype.kind == "f":
        return [repr(v) for v in column.tolist()]
    return column.astype(str).tolist()  # type: ignore[no-any-return]


def assemble(blocks: Sequence[Block], kafka_ts: np.ndarray) -> ModelColumns:
    """One model's blocks of a batch as columns (rows in message order)."""
    sizes = np.fromiter((b.rows for b in blocks), dtype=np.int64, count=len(blocks))
    block = np.repeat(np.arange(len(blocks), dtype=np.int64), sizes)
    row = np.arange(block.shape[0], dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    msgs = np.fromiter((b.msg for b in blocks), np.int64, len(blocks))[block]
    halves = np.repeat(np.fromiter((b.half for b in blocks), np.int8, len(blocks)), sizes)
    width = len(blocks[0].categorical)
    return ModelColumns(
        numeric=np.concatenate([b.numeric for b in blocks]),
        categorical=[
            list(chain.from_iterable(b.categorical[j] for b in blocks)) for j in range(width)
        ],
        ts=_times(blocks, sizes, np.asarray(kafka_ts, dtype=np.float64)[msgs]),
        ids=Coded([b.id for b in blocks], block, row),
        msg_index=msgs,
        unknown_features=sum(b.unknown for b in blocks),
        versions=Coded([b.version for b in blocks], block),
        halves=halves,
        pair_keys=Coded([b.pair_key for b in blocks], block, row),
    )


def _times(blocks: Sequence[Block], sizes: np.ndarray, kafka: np.ndarray) -> np.ndarray:
    """The Kafka timestamps, replaced where a block's envelope gives its own time."""
    own = np.fromiter((np.nan if b.ts is None else b.ts for b in blocks), np.float64, len(blocks))
    if np.isnan(own).all():
        return kafka
    rows = np.repeat(own, sizes)
    return np.where(np.isnan(rows), kafka, rows)
