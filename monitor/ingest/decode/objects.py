"""The object paths: msgspec's typed codec first, then the general orjson path.

:func:`decode_objects` runs the typed codec (:mod:`~monitor.ingest.decode.typed`) chunk by
chunk and hands what it refuses to the general path here: orjson to dicts, routed by
model, every value checked. The general path classifies every reject reason, so whatever
the faster paths are unsure about ends up here. Columns are pulled out with C-level
``map`` calls over the event dicts, never a Python step per value on clean data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from datetime import tzinfo
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from monitor.ingest.decode.columns import DecodedBatch, ModelColumns, merge_models
from monitor.ingest.decode.schema import DecodeSchema, EventFields, ModelSchema, Reason, Rejection
from monitor.ingest.decode.typed import codec_for
from monitor.ingest.decode.values import (
    EMPTY,
    NO_PAYLOAD,
    NUMERIC_TYPES,
    Bad,
    categorical_column,
    event_times,
    numeric_column,
    optional_strings,
    probability_objects,
    type_name,
)

__all__ = ["chunks", "decode_chunk", "decode_objects"]

_NON_FINITE_RE = re.compile(rb"(?:^|[\[:,])\s*-?(?:NaN|Infinity)\s*(?:$|[\],}])")


def decode_objects(
    payloads: Sequence[bytes | None], kafka_ts: np.ndarray, schema: DecodeSchema
) -> DecodedBatch:
    """The object paths: msgspec's typed decoder, then orjson for what it refuses."""
    rejected: list[Rejection] = []
    parts: dict[str, list[ModelColumns]] = {}
    codec = codec_for(schema)
    # Work in chunks so the decoded objects are still in cache when the columns are pulled
    # out (and freed while hot).
    for start, stop in chunks(payloads):
        chunk = payloads[start:stop]
        if codec is None:
            cols = decode_chunk(chunk, range(start, start + len(chunk)), kafka_ts, schema, rejected)
        else:
            cols, slow = codec.decode_chunk(chunk, start, kafka_ts, rejected)
            if slow:
                rest = decode_chunk(
                    [payloads[i] for i in slow], slow, kafka_ts, schema, rejected, codec.observe
                )
                cols = merge_models(cols, rest)
                codec.rebuild_if_learned()
        for name, c in cols.items():
            parts.setdefault(name, []).append(c)
    return DecodedBatch({name: ModelColumns.concat(cols) for name, cols in parts.items()}, rejected)


_CHUNK = 512
#: A chunk also ends once its payloads reach this many bytes: a parsed message can take
#: tens of times its size in Python objects (a 1 MiB array of ``{}`` is ~60 MiB), so hostile
#: traffic must not be parsed a whole fetch at a time.
_CHUNK_BYTES = 4 << 20


def chunks(payloads: Sequence[bytes | None]) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` ranges of at most ``_CHUNK`` messages and about ``_CHUNK_BYTES``."""
    start, size, n = 0, 0, len(payloads)
    for i, payload in enumerate(payloads):
        size += len(payload) if payload is not None else 0
        if i + 1 - start >= _CHUNK or size >= _CHUNK_BYTES:
            yield start, i + 1
            start, size = i + 1, 0
    if start < n:
        yield start, n


def decode_chunk(
    payloads: Sequence[bytes | None],
    indices: Sequence[int],
    kafka_ts: np.ndarray,
    schema: DecodeSchema,
    rejected: list[Rejection],
    observe: Callable[[str, list[dict[str, Any]]], None] | None = None,
    *,
    top_level: bool = False,
) -> dict[str, ModelColumns]:
    """The general path: orjson to dicts, then route and validate every field.

    ``top_level``: features are keys of the event itself, not of a features object (the
    ``flat`` format); the other configured event fields are then not features.
    """
    events, ev_msg, positions = _parse(payloads, indices, schema, rejected)
    if not events:
        return {}
    groups = _route(events, ev_msg, schema, rejected, positions)
    out: dict[str, ModelColumns] = {}
    for name, (evs, msgs) in groups.items():
        if observe is not None:
            observe(name, evs)
        cols, bad = _decode_model(
            schema.models[name], schema.fields, evs, msgs, kafka_ts, schema.timezone, top_level
        )
        out[name] = cols
        for k, (reason, detail) in bad.items():
            rejected.append(Rejection(msgs[k], reason, detail, positions.get(id(evs[k]))))
    return out


def _parse(
    payloads: Sequence[bytes | None],
    indices: Sequence[int],
    schema: DecodeSchema,
    rejected: list[Rejection],
) -> tuple[list[dict[str, Any]], list[int], dict[int, int]]:
    """JSON-parse each message into event dicts, with their message index."""
    loads = orjson.loads
    max_bytes = schema.max_message_bytes
    # Fast path for clean batches: one C-level pass parses every message. Any None,
    # oversized, unparsable or non-object message sends the batch to the careful loop.
    try:
        if payloads and max(map(len, payloads)) <= max_bytes:  # type: ignore[arg-type]
            objs = list(map(loads, payloads))  # type: ignore[arg-type]
            if set(map(type, objs)) == {dict}:
                return objs, list(indices), {}
    except (TypeError, orjson.JSONDecodeError):
        pass
    events: list[dict[str, Any]] = []
    ev_msg: list[int] = []
    # Array position by id() of the event dict; only array messages pay for it.
    positions: dict[int, int] = {}
    for i, payload in zip(indices, payloads, strict=True):
        if payload is None:
            rejected.append(Rejection(i, Reason.no_payload, "message has no value"))
            continue
        if len(payload) > max_bytes:
            detail = f"{len(payload)} bytes > max_message_bytes {max_bytes}"
            rejected.append(Rejection(i, Reason.oversized, detail))
            continue
        try:
            obj = loads(payload)
        except orjson.JSONDecodeError as exc:
            rejected.append(Rejection(i, _classify(exc, payload), str(exc)[:120]))
            continue
        if type(obj) is dict:
            events.append(obj)
            ev_msg.append(i)
        elif type(obj) is list:
            if not obj:
                rejected.append(Rejection(i, Reason.no_payload, "empty array"))
                continue
            if len(obj) > schema.max_events_per_message:
                detail = f"array of {len(obj)} events > {schema.max_events_per_message}"
                rejected.append(Rejection(i, Reason.oversized, detail))
                continue
            for j, ev in enumerate(obj):
                if type(ev) is dict:
                    events.append(ev)
                    ev_msg.append(i)
                    positions[id(ev)] = j
                else:
                    detail = f"array element is {type_name(ev)}"
                    rejected.append(Rejection(i, Reason.not_object, detail, j))
        else:
            rejected.append(Rejection(i, Reason.not_object, f"message is {type_name(obj)}"))
    return events, ev_msg, positions


def _classify(exc: orjson.JSONDecodeError, payload: bytes) -> Reason:
    """orjson rejects NaN/Infinity literals and overflowing numbers: tell them apart."""
    text = str(exc)
    if "UTF-8" in text:
        return Reason.not_utf8
    if "infinity" in text.lower() or _NON_FINITE_RE.search(payload):
        return Reason.non_finite
    return Reason.not_json


def _route(
    events: list[dict[str, Any]],
    ev_msg: list[int],
    schema: DecodeSchema,
    rejected: list[Rejection],
    positions: dict[int, int],
) -> dict[str, tuple[list[dict[str, Any]], list[int]]]:
    """Group events by model; reject those without a known model."""
    models = schema.models
    if schema.bound_model is not None:
        return {schema.bound_model: (events, ev_msg)}
    (model_key,) = _own_keys(events[0], (schema.fields.model,))
    names = list(map(dict.get, events, repeat(model_key)))
    first = names[0]
    # Fast path: a topic usually carries one model.
    if type(first) is str and first in models and names.count(first) == len(names):
        return {first: (events, ev_msg)}
    groups: dict[str, tuple[list[dict[str, Any]], list[int]]] = {}
    for ev, msg, name in zip(events, ev_msg, names, strict=True):
        if type(name) is str and name in models:
            group = groups.get(name)
            if group is None:
                group = groups[name] = ([], [])
            group[0].append(ev)
            group[1].append(msg)
            continue
        if name is None:
            reason, detail = Reason.missing_model, f"no {schema.fields.model!r} field"
        elif type(name) is not str:
            reason, detail = Reason.wrong_type, f"model is {type_name(name)}, not a string"
        else:
            reason, detail = Reason.unknown_model, f"model {name[:64]!r} is not configured"
        rejected.append(Rejection(msg, reason, detail, positions.get(id(ev))))
    return groups


def _decode_model(
    ms: ModelSchema,
    fields: EventFields,
    evs: list[dict[str, Any]],
    msgs: list[int],
    kafka_ts: np.ndarray,
    zone: tzinfo | None = None,
    top_level: bool = False,
) -> tuple[ModelColumns, Bad]:
    """Columns of one model's events; ``bad`` maps row -> (reason, detail), first one wins."""
    n = len(evs)
    get = dict.get
    bad: Bad = {}
    f_feat, f_pred, f_ts, f_id, f_version, f_label = _own_keys(
        evs[0],
        (fields.features, fields.prediction, fields.ts, fields.id, fields.version, fields.label),
    )
    feats: list[Any] = evs if top_level else list(map(get, evs, repeat(f_feat)))
    preds: list[Any] = list(map(get, evs, repeat(f_pred)))
    if set(map(type, feats)) != {dict}:
        _check_payloads(feats, preds, list(map(get, evs, repeat(f_label))), bad)

    numeric = np.empty((n, len(ms.numeric_names)), dtype=np.float64)
    sample = next((f for f in feats[:16] if f), EMPTY)
    num_rows, complete_num = _rows(feats, _own_keys(sample, ms.numeric))
    if ms.numeric:
        numeric[:, : len(ms.numeric)] = _numeric_rows(num_rows, ms.numeric, bad)
    # Categoricals column by column: transposing per-event tuples costs more than the gets.
    categorical = []
    complete_cat = True
    for key in _own_keys(sample, ms.categorical):
        col = list(map(get, feats, repeat(key)))
        values, has_missing = categorical_column(col, key, bad)
        categorical.append(values)
        complete_cat = complete_cat and not has_missing

    # Every monitored key present in every event: the unknown count is a subtraction.
    # Otherwise count exactly, which costs a pass over all keys.
    total_keys = sum(map(len, feats))
    if complete_num and complete_cat and not top_level:
        unknown = total_keys - n * (len(ms.numeric) + len(ms.categorical))
    else:
        known = frozenset(ms.numeric) | frozenset(ms.categorical)
        if top_level:
            known |= frozenset(_field_names(fields))
        unknown = total_keys - sum(map(known.__contains__, chain.from_iterable(feats)))

    if ms.prediction == "numeric":
        numeric[:, len(ms.numeric)] = numeric_column(preds, "prediction", bad)
    elif ms.prediction == "categorical":
        categorical.append(categorical_column(preds, "prediction", bad)[0])
    elif ms.prediction == "probabilities":
        probs = probability_objects(preds, bad)
        for j, cls in enumerate(ms.classes, start=len(ms.numeric)):
            col = list(map(get, probs, repeat(cls)))
            numeric[:, j] = numeric_column(col, f"prediction.{cls}", bad)

    ts = event_times(list(map(get, evs, repeat(f_ts))), kafka_ts, msgs, bad, zone)
    ids = optional_strings(list(map(get, evs, repeat(f_id))))
    versions = optional_strings(list(map(get, evs, repeat(f_version))))
    label_col = list(map(get, evs, repeat(f_label)))
    labels = None if label_col.count(None) == n else label_col
    cols = ModelColumns(
        numeric, categorical, ts, ids, np.array(msgs, dtype=np.int64), unknown, versions, labels
    )
    return cols.drop_rows(bad), bad


def _field_names(fields: EventFields) -> tuple[str, ...]:
    return (fields.model, fields.ts, fields.id, fields.prediction, fields.version, fields.label)


def _check_payloads(feats: list[Any], preds: list[Any], labels: list[Any], bad: Bad) -> None:
    """Replace absent or invalid features objects by {} and record why.

    An event with a label but neither features nor a prediction is a label event (the
    performance join): accepted, with every feature missing.
    """
    for k, f in enumerate(feats):
        if type(f) is dict:
            continue
        if f is None:
            if preds[k] is None and labels[k] is None:
                bad.setdefault(k, (Reason.no_payload, NO_PAYLOAD))
        else:
            bad.setdefault(k, (Reason.wrong_type, f"features is {type_name(f)}, not an object"))
        feats[k] = EMPTY


def _own_keys(sample: dict[str, Any], names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` as the very key objects of ``sample`` where it has them.

    orjson reuses one str object per distinct key across a batch, so looking up with that
    object hits dict's identity check and never compares characters: about twice as fast
    over thousands of events whose dicts are no longer in cache.
    """
    own = {k: k for k in sample}
    return tuple(own.get(n, n) for n in names)


def _rows(feats: list[dict[str, Any]], names: tuple[str, ...]) -> tuple[list[Any], bool]:
    """Per event, the tuple of ``names`` values (one C call per event); True if no key was
    absent anywhere (absent keys fall back to ``dict.get`` per event)."""
    if not names:
        return [], True
    getter = itemgetter(*names)
    try:
        rows = list(map(getter, feats))
    except KeyError:
        return [tuple(map(d.get, names)) for d in feats], False
    return (rows if len(names) > 1 else [(v,) for v in rows]), True


def _numeric_rows(rows: list[Any], names: tuple[str, ...], bad: Bad) -> np.ndarray:
    """rows x features float64; None becomes NaN; a non-number rejects its row."""
    if not set(map(type, chain.from_iterable(rows))) <= NUMERIC_TYPES:
        blank = (None,) * len(names)
        for k, row in enumerate(rows):
            for name, v in zip(names, row, strict=True):
                if type(v) not in NUMERIC_TYPES:
                    detail = f"feature {name!r}: expected a number, got {type_name(v)}"
                    bad.setdefault(k, (Reason.wrong_type, detail))
                    rows[k] = blank
                    break
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
