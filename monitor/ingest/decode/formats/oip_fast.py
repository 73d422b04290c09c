"""The fast path of ``oip`` JSON: a batch's requests (and responses) decoded tensor by
tensor across messages, one numpy conversion per tensor name per batch.

Model servers send the same tensors in every request, so the messages of a batch are
grouped by their tensors' names and datatypes, and each tensor's ``data`` arrays of a
group are joined and converted at once. Only the regular case is taken: flat data whose
lengths add up, numbers for numeric datatypes, strings for ``BYTES``, shapes ``[N]`` or
``[N,F]`` agreeing within a message. Anything else (nested data, a bad shape, a binary
extension body, a message that is not a JSON object) goes to the per-message path
(:mod:`.inference`), which gives the same columns and the specific rejection reasons;
tests/unit/formats/test_oip.py checks that both paths agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from monitor.ingest.decode.coded import Coded, Values
from monitor.ingest.decode.columns import REQUEST, RESPONSE, WHOLE, ModelColumns
from monitor.ingest.decode.formats.inference import MAX_KEY_CHARS
from monitor.ingest.decode.formats.rows import categories
from monitor.ingest.decode.formats.tensors import BYTES, NUMERIC_DATATYPES
from monitor.ingest.decode.schema import DecodeSchema, ModelSchema

__all__ = ["fast_oip_json"]

_NAME_TYPE = itemgetter("name", "datatype")
_SHAPE = itemgetter("shape")
_DATA = itemgetter("data")
_ROWS = itemgetter(0)
_WIDTH = itemgetter(1)
_KNOWN = frozenset(NUMERIC_DATATYPES) | {BYTES}


class _Irregular(Exception):
    """A group the fast path does not take: its messages go the per-message way."""


def fast_oip_json(
    payloads: Sequence[bytes | None], kafka_ts: np.ndarray, schema: DecodeSchema
) -> tuple[list[ModelColumns], list[int]]:
    """Columns of the regular messages of a batch bound to one model, and the indices of
    the messages left to the per-message path."""
    if schema.bound_model is None:
        raise ValueError("the fast path reads topics bound to one model")
    ms = schema.models[schema.bound_model]
    bodies, where, slow = _parse(payloads, schema.max_message_bytes)
    groups: dict[tuple[bool, tuple[tuple[str, str], ...]], list[int]] = {}
    for k, body in enumerate(bodies):
        key = "inputs" if "inputs" in body else "outputs" if "outputs" in body else None
        specs = body.get(key) if key is not None else None
        try:
            if type(specs) is not list or not specs:
                raise TypeError
            sig = tuple(map(_NAME_TYPE, specs))
        except (TypeError, KeyError):
            slow.append(where[k])
            continue
        groups.setdefault((key == "inputs", sig), []).append(k)
    out = []
    for (is_request, sig), members in groups.items():
        cols: ModelColumns | None
        try:
            if is_request:
                cols = _requests(bodies, members, sig, ms, schema, where, kafka_ts)
            else:
                cols = _responses(bodies, members, sig, ms, schema, where, kafka_ts)
        except (_Irregular, KeyError, TypeError, ValueError):
            slow.extend(where[k] for k in members)
            continue
        if cols is not None:
            out.append(cols)
    return out, sorted(slow)


def _parse(
    payloads: Sequence[bytes | None], limit: int
) -> tuple[list[dict[str, Any]], list[int], list[int]]:
    loads = orjson.loads
    try:
        if payloads and max(map(len, payloads)) <= limit:  # type: ignore[arg-type]
            bodies = list(map(loads, payloads))  # type: ignore[arg-type]
            if set(map(type, bodies)) == {dict}:
                return bodies, list(range(len(payloads))), []
    except (TypeError, orjson.JSONDecodeError):
        pass
    bodies, where, slow = [], [], []
    for i, payload in enumerate(payloads):
        try:
            if payload is None or len(payload) > limit:
                raise TypeError
            body = loads(payload)
        except (TypeError, orjson.JSONDecodeError):
            slow.append(i)
            continue
        if type(body) is dict:
            bodies.append(body)
            where.append(i)
        else:
            slow.append(i)
    return bodies, where, slow


def _tensor(
    specs: list[Any], datatype: str, rows: list[int] | None
) -> tuple[np.ndarray, list[int]]:
    """One tensor of every message of a group: values ``(sum of rows) x width`` and the
    rows of each message."""
    if datatype not in _KNOWN:
        raise _Irregular
    shapes = list(map(_SHAPE, specs))
    datas = list(map(_DATA, specs))
    if set(map(type, shapes)) != {list} or set(map(type, datas)) != {list}:
        raise _Irregular
    dims = set(map(len, shapes))
    if dims == {1}:
        width = 1
    elif dims == {2}:
        widths = set(map(_WIDTH, shapes))
        if len(widths) != 1:
            raise _Irregular
        width = widths.pop()
    else:
        raise _Irregular
    counts = list(map(_ROWS, shapes))
    if rows is not None and counts != rows:
        raise _Irregular
    # Exact types: numpy would take a JSON `true` as the row count 1.
    if set(map(type, counts)) != {int} or type(width) is not int or width < 1:
        raise _Irregular
    sizes = np.array(counts)
    if sizes.min() < 1:
        raise _Irregular
    flat = list(chain.from_iterable(datas))
    if len(flat) != int(sizes.sum()) * width:
        raise _Irregular  # nested data, or a shape its data does not fill
    if datatype == BYTES:
        if not set(map(type, flat)) <= {str}:
            raise _Irregular
        values = np.array(flat, dtype=object)
    else:
        values = np.asarray(flat)
        if values.dtype.kind not in "biuf":
            raise _Irregular
    return values.reshape(-1, width), counts


def _frame(
    bodies: list[dict[str, Any]],
    members: list[int],
    counts: list[int],
    ms: ModelSchema,
    where: list[int],
) -> tuple[np.ndarray, list[Values], np.ndarray, Coded, Coded]:
    """Empty columns for a group's rows, and their messages, row keys and versions (as
    tables of the messages' values: :class:`~monitor.ingest.decode.coded.Coded`)."""
    total = sum(counts)
    sizes = np.array(counts, dtype=np.int64)
    message = np.repeat(np.arange(len(members), dtype=np.int64), sizes)
    msgs = np.array([where[k] for k in members], dtype=np.int64)[message]
    ids = [_text(bodies[k].get("id")) for k in members]
    if max(map(_length, ids)) > MAX_KEY_CHARS:  # the per-message path rejects it
        raise _Irregular
    rows = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    keys = Coded(ids, message, rows)
    versions = Coded([_text(bodies[k].get("model_version")) for k in members], message)
    numeric = np.full((total, len(ms.numeric_names)), np.nan)
    categorical: list[Values] = [[None] * total for _ in ms.categorical_names]
    return numeric, categorical, msgs, keys, versions


def _requests(
    bodies: list[dict[str, Any]],
    members: list[int],
    sig: tuple[tuple[str, str], ...],
    ms: ModelSchema,
    schema: DecodeSchema,
    where: list[int],
    kafka_ts: np.ndarray,
) -> ModelColumns:
    specs = [bodies[k]["inputs"] for k in members]
    num_at = {n: j for j, n in enumerate(ms.numeric)}
    cat_at = {n: j for j, n in enumerate(ms.categorical)}
    columns: list[tuple[str, np.ndarray, str]] = []
    unknown = 0
    counts: list[int] | None = None
    for j, (name, datatype) in enumerate(sig):
        # every tensor is checked, as the per-message path does, monitored or not
        values, counts = _tensor([s[j] for s in specs], datatype, counts)
        names = schema.tensors.get(name)
        if names is None and name not in num_at and name not in cat_at:
            unknown += values.size
            continue
        names = names or (name,)
        if values.shape[1] != len(names):
            raise _Irregular
        monitored = [n for n in names if n in num_at or n in cat_at]
        unknown += values.shape[0] * (len(names) - len(monitored))
        for c, feature in enumerate(names):
            if feature in num_at or feature in cat_at:
                columns.append((feature, values[:, c], datatype))
    if counts is None:  # a group has at least one tensor
        raise _Irregular
    numeric, categorical, msgs, keys, versions = _frame(bodies, members, counts, ms, where)
    for feature, column, datatype in columns:
        if feature in num_at:
            if datatype == BYTES or (column.dtype.kind == "f" and np.isinf(column).any()):
                raise _Irregular
            numeric[:, num_at[feature]] = column
        else:
            categorical[cat_at[feature]] = categories(column)
    half = REQUEST if ms.prediction is not None else WHOLE
    return ModelColumns(
        numeric, categorical, kafka_ts[msgs], keys, msgs, unknown, versions,
        halves=np.full(len(keys), half, dtype=np.int8), pair_keys=keys,
    )  # fmt: skip


def _responses(
    bodies: list[dict[str, Any]],
    members: list[int],
    sig: tuple[tuple[str, str], ...],
    ms: ModelSchema,
    schema: DecodeSchema,
    where: list[int],
    kafka_ts: np.ndarray,
) -> ModelColumns | None:
    if ms.prediction is None:
        return None
    names = [n for n, _ in sig]
    wanted = schema.prediction_output
    j = 0 if wanted is None else names.index(wanted) if wanted in names else -1
    if j < 0:
        raise _Irregular
    datatype = sig[j][1]
    outputs = [bodies[k]["outputs"] for k in members]
    values, counts = _tensor([o[j] for o in outputs], datatype, None)
    for other, (_, other_type) in enumerate(sig):  # checked as the per-message path does
        if other != j:
            _tensor([o[other] for o in outputs], other_type, counts)
    numeric, categorical, msgs, keys, versions = _frame(bodies, members, counts, ms, where)
    first = len(ms.numeric)
    if ms.prediction == "probabilities":
        if values.shape[1] != len(ms.classes) or datatype == BYTES:
            raise _Irregular
        numeric[:, first:] = values
    elif values.shape[1] != 1:
        raise _Irregular
    elif ms.prediction == "numeric":
        if datatype == BYTES:
            raise _Irregular
        numeric[:, first] = values[:, 0]
    else:
        categorical[-1] = categories(values[:, 0])
    if np.isinf(numeric).any():
        raise _Irregular
    return ModelColumns(
        numeric, categorical, kafka_ts[msgs], keys, msgs, 0, versions,
        halves=np.full(len(keys), RESPONSE, dtype=np.int8), pair_keys=keys,
    )  # fmt: skip


def _length(value: str | None) -> int:
    return 0 if value is None else len(value)


def _text(value: Any) -> str | None:
    if type(value) is str:
        return value or None
    return str(value) if type(value) is int else None
