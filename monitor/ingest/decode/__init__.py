"""Raw message payloads to per-model columns, plus a reason for every rejected event.

The event format is issue 3's contract (field names configurable per topic)::

    {"model": "fraud", "ts": 1764150000.25, "id": "req-81f2",
     "features": {"amount": 132.5, "country": "DE"}, "prediction": 0.87}

A message may also be a JSON array of such objects; each is accepted or rejected on its
own. Value encodings follow docs/ARCHITECTURE.md ("Feature values and encodings").

Decoding is columnar and has two paths. The fast one decodes each message with a msgspec
decoder generated from the schema (one typed Struct field per monitored feature), so type
checks happen inside the decoder and no dicts are built; the Structs of a chunk become one
numpy object matrix whose columns are the model's columns. Any message it refuses takes the
general path: orjson to dicts, grouped by model, every column pulled out with one C-level
``map`` and checked, which classifies every reject reason. Both paths give exactly the same
result (tests/unit/test_decode.py checks this); without msgspec only the general path runs.
A rejection is a value, never an exception: the valid events of the batch go on.

Example::

    >>> import numpy as np
    >>> schema = DecodeSchema(models={"fraud": ModelSchema("fraud", numeric=("amount",),
    ...                                                    categorical=("country",))})
    >>> batch = decode_batch(
    ...     [b'{"model": "fraud", "ts": 5, "features": {"amount": 1.5, "country": "DE"}}',
    ...      b'{"model": "fraud", "features": {"amount": "1.5"}}', b"{oops"],
    ...     np.zeros(3), schema)
    >>> cols = batch.models["fraud"]
    >>> cols.numeric.tolist(), cols.categorical, cols.ts.tolist()
    ([[1.5]], [['DE']], [5.0])
    >>> [(r.index, str(r.reason)) for r in batch.rejected]
    [(2, 'not_json'), (1, 'wrong_type')]
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from functools import reduce
from itertools import chain, compress, repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import orjson

from monitor.ingest.decode import scanner as jsonscan
from monitor.stats.profile import CategoryCodes

try:  # the typed fast path; without msgspec every message takes the general path
    import msgspec
except ImportError:  # pragma: no cover
    msgspec = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from monitor.config import Config

__all__ = [
    "CategoryCodes",
    "DecodeSchema",
    "DecodedBatch",
    "EventFields",
    "ModelColumns",
    "ModelSchema",
    "Reason",
    "Rejection",
    "build_decode_schema",
    "build_decode_schemas",
    "decode_batch",
]


class Reason(StrEnum):
    """Why an event was rejected: the closed label set of ``driftmon_invalid_events_total``."""

    not_json = "not_json"
    not_utf8 = "not_utf8"
    not_object = "not_object"
    missing_model = "missing_model"
    unknown_model = "unknown_model"
    wrong_type = "wrong_type"
    non_finite = "non_finite"
    oversized = "oversized"
    no_payload = "no_payload"
    bad_timestamp = "bad_timestamp"


@dataclass(frozen=True, slots=True)
class Rejection:
    """One rejected event: its message ``index`` in the batch, reason and a short detail.

    ``position`` is the event's index inside a JSON-array message, else ``None``.
    """

    index: int
    reason: Reason
    detail: str = ""
    position: int | None = None


@dataclass(frozen=True, slots=True)
class EventFields:
    """Event field names of one topic (mirrors ``kafka.topics[].fields``)."""

    model: str = "model"
    ts: str = "ts"
    id: str = "id"
    features: str = "features"
    prediction: str = "prediction"
    version: str = "version"
    label: str = "label"


PredictionKind = Literal["numeric", "categorical", "probabilities"]


@dataclass(frozen=True, slots=True)
class ModelSchema:
    """What to pull out of one model's events.

    ``numeric`` and ``categorical`` name the keys of the features object, in monitored
    order. The prediction, when monitored, is appended after them: a numeric prediction as
    the last numeric column ``prediction``, a categorical one as the last categorical
    column, probabilities as one numeric column ``prediction.<class>`` per class.
    """

    name: str
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    prediction: PredictionKind | None = None
    classes: tuple[str, ...] = ()
    #: One per ``categorical_names`` column: decode this model's categories to codes
    #: (``ModelColumns.codes``) instead of strings. Set once the reference is known.
    codes: tuple[CategoryCodes, ...] | None = None

    @property
    def numeric_names(self) -> tuple[str, ...]:
        """Monitored numeric feature names, i.e. the columns of ``ModelColumns.numeric``."""
        if self.prediction == "numeric":
            return (*self.numeric, "prediction")
        if self.prediction == "probabilities":
            return (*self.numeric, *(f"prediction.{c}" for c in self.classes))
        return self.numeric

    @property
    def categorical_names(self) -> tuple[str, ...]:
        """Monitored categorical feature names, i.e. ``ModelColumns.categorical`` order."""
        if self.prediction == "categorical":
            return (*self.categorical, "prediction")
        return self.categorical


@dataclass(frozen=True, slots=True)
class DecodeSchema:
    """Everything decode needs for the messages of one topic."""

    models: Mapping[str, ModelSchema]
    fields: EventFields = EventFields()
    #: Every event of the topic belongs to this model (the ``model`` field is not read).
    bound_model: str | None = None
    max_message_bytes: int = 1_048_576
    #: Longest JSON array accepted as one message; longer ones are rejected as oversized.
    max_events_per_message: int = 10_000


@dataclass(frozen=True, slots=True)
class ModelColumns:
    """The accepted events of one model in one batch, as columns (rows in arrival order)."""

    #: rows x len(numeric_names), float64, NaN where missing.
    numeric: np.ndarray
    #: One list per categorical feature (categorical_names order), ``None`` where missing.
    categorical: list[list[str | None]]
    #: Event time per row, float64 epoch seconds (the Kafka timestamp when absent).
    ts: np.ndarray
    ids: list[str | None]
    #: Index of each row's message in the batch, int64.
    msg_index: np.ndarray
    #: Keys of features objects that are not monitored (ignored), over the model's events.
    unknown_features: int = 0
    versions: list[str | None] = field(default_factory=list)
    #: Raw label values per row, or ``None`` when no event carried one.
    labels: list[Any] | None = None
    #: rows x len(categorical_names) int64 category codes (-1 missing) when the schema
    #: gives ``codes``; ``categorical`` is then empty.
    codes: np.ndarray | None = None

    @property
    def rows(self) -> int:
        """Number of accepted events."""
        return len(self.ts)


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """Result of :func:`decode_batch`."""

    models: dict[str, ModelColumns]
    rejected: list[Rejection]

    @property
    def accepted(self) -> int:
        """Events accepted over all models."""
        return sum(c.rows for c in self.models.values())

    def reason_counts(self) -> dict[Reason, int]:
        """Rejected events per reason (only reasons that occurred)."""
        counts: dict[Reason, int] = {}
        for rej in self.rejected:
            counts[rej.reason] = counts.get(rej.reason, 0) + 1
        return counts


def build_decode_schema(
    config: Config,
    topic: str,
    kinds: Mapping[str, Mapping[str, Literal["numeric", "categorical"]]] | None = None,
) -> DecodeSchema:
    """The decode schema of one configured topic.

    ``kinds`` optionally gives, per model, the feature kinds read from its reference profile
    (for models configured with a profile file and no ``features``). Prediction columns are
    taken from the config either way.
    """
    conf = config.topic(topic)
    models: dict[str, ModelSchema] = {}
    for name, model in config.models.items():
        feats = dict(kinds[name]) if kinds and name in kinds else model.feature_kinds()
        pred = model.prediction
        # The prediction columns come from the prediction spec, not from the features object.
        for key in [k for k in feats if k == "prediction" or k.startswith("prediction.")]:
            if pred is not None:
                del feats[key]
        models[name] = ModelSchema(
            name=name,
            numeric=tuple(k for k, v in feats.items() if v == "numeric"),
            categorical=tuple(k for k, v in feats.items() if v == "categorical"),
            prediction=pred.type if pred else None,
            classes=tuple(pred.classes or ()) if pred else (),
        )
    fields = EventFields(**conf.fields.model_dump())
    return DecodeSchema(
        models=models,
        fields=fields,
        bound_model=conf.model,
        max_message_bytes=config.kafka.max_message_bytes,
    )


def build_decode_schemas(config: Config) -> dict[str, DecodeSchema]:
    """Decode schemas of every configured topic, by topic name."""
    return {t.name: build_decode_schema(config, t.name) for t in config.kafka.topics}


# ------------------------------------------------------------------------------ decoding

_NONE = type(None)
_NUMERIC_TYPES = frozenset({float, int, bool, _NONE})
_STR_TYPES = frozenset({str, _NONE})
_BOOL_TYPES = frozenset({bool, _NONE})
_BOOL_TEXT = {True: "true", False: "false"}
_EMPTY: dict[str, Any] = {}
# Event times beyond year 5138 are almost surely milliseconds or nanoseconds.
_MAX_TS = 1e11
# orjson's integer range; it reads integers beyond it as floats.
_INT_MIN, _INT_MAX = -(2**63), 2**64
_NON_FINITE_RE = re.compile(rb"(?:^|[\[:,])\s*-?(?:NaN|Infinity)\s*(?:$|[\],}])")


#: Kafka timestamps of a batch, or a function giving them (only called when some event
#: has no ``ts`` of its own: reading every message's timestamp is a pass over the batch).
KafkaTimes = np.ndarray | Callable[[], np.ndarray]


def decode_batch(
    payloads: Sequence[bytes | None], kafka_ts: KafkaTimes, schema: DecodeSchema
) -> DecodedBatch:
    """Decode one batch of raw message values of one topic.

    ``kafka_ts`` holds each message's Kafka timestamp as float64 epoch seconds; it is the
    event time of events without ``ts``. Every message ends up either as rows of some
    model's :class:`ModelColumns` or as one :class:`Rejection` per event (one per message
    when the message itself cannot be read).

    Models whose schema carries category ``codes`` go through the columnar scanner first
    (:mod:`monitor.ingest.decode.scanner`); the messages it passes on, and every other model's, take
    the object paths below.
    """
    scanner = _scanner_for(schema)
    if scanner is None:
        return _with_codes(_decode_objects(payloads, _times(kafka_ts), schema), schema)
    fast, slow = scanner.scan(payloads, kafka_ts)
    if slow.size == 0:
        return DecodedBatch(fast, [])
    sub = [payloads[i] for i in slow.tolist()]
    rest = _with_codes(_decode_objects(sub, _times(kafka_ts)[slow], schema), schema)
    rejected = [replace(r, index=int(slow[r.index])) for r in rest.rejected]
    moved = {n: replace(c, msg_index=slow[c.msg_index]) for n, c in rest.models.items()}
    return DecodedBatch(_merge(fast, moved), rejected)


def _times(kafka_ts: KafkaTimes) -> np.ndarray:
    return np.asarray(kafka_ts if isinstance(kafka_ts, np.ndarray) else kafka_ts())


def _decode_objects(
    payloads: Sequence[bytes | None], kafka_ts: np.ndarray, schema: DecodeSchema
) -> DecodedBatch:
    """The object paths: msgspec's typed decoder, then orjson for what it refuses."""
    rejected: list[Rejection] = []
    parts: dict[str, list[ModelColumns]] = {}
    codec = _codec_for(schema)
    # Work in chunks so the decoded objects are still in cache when the columns are pulled
    # out (and freed while hot).
    for start, stop in _chunks(payloads):
        chunk = payloads[start:stop]
        if codec is None:
            cols = _decode_chunk(
                chunk, range(start, start + len(chunk)), kafka_ts, schema, rejected
            )
        else:
            cols, slow = codec.decode_chunk(chunk, start, kafka_ts, rejected)
            if slow:
                rest = _decode_chunk(
                    [payloads[i] for i in slow], slow, kafka_ts, schema, rejected, codec.observe
                )
                cols = _merge(cols, rest)
                codec.rebuild_if_learned()
        for name, c in cols.items():
            parts.setdefault(name, []).append(c)
    return DecodedBatch({name: _concat(cols) for name, cols in parts.items()}, rejected)


_CHUNK = 512
#: A chunk also ends once its payloads reach this many bytes: a parsed message can take
#: tens of times its size in Python objects (a 1 MiB array of ``{}`` is ~60 MiB), so hostile
#: traffic must not be parsed a whole fetch at a time.
_CHUNK_BYTES = 4 << 20


def _chunks(payloads: Sequence[bytes | None]) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` ranges of at most ``_CHUNK`` messages and about ``_CHUNK_BYTES``."""
    start, size, n = 0, 0, len(payloads)
    for i, payload in enumerate(payloads):
        size += len(payload) if payload is not None else 0
        if i + 1 - start >= _CHUNK or size >= _CHUNK_BYTES:
            yield start, i + 1
            start, size = i + 1, 0
    if start < n:
        yield start, n


def _decode_chunk(
    payloads: Sequence[bytes | None],
    indices: Sequence[int],
    kafka_ts: np.ndarray,
    schema: DecodeSchema,
    rejected: list[Rejection],
    observe: Callable[[str, list[dict[str, Any]]], None] | None = None,
) -> dict[str, ModelColumns]:
    """The general path: orjson to dicts, then route and validate every field."""
    events, ev_msg, positions = _parse(payloads, indices, schema, rejected)
    if not events:
        return {}
    groups = _route(events, ev_msg, schema, rejected, positions)
    out: dict[str, ModelColumns] = {}
    for name, (evs, msgs) in groups.items():
        if observe is not None:
            observe(name, evs)
        cols, bad = _decode_model(schema.models[name], schema.fields, evs, msgs, kafka_ts)
        out[name] = cols
        for k, (reason, detail) in bad.items():
            rejected.append(Rejection(msgs[k], reason, detail, positions.get(id(evs[k]))))
    return out


def _merge(a: dict[str, ModelColumns], b: dict[str, ModelColumns]) -> dict[str, ModelColumns]:
    """Columns of two disjoint sets of messages, rows back in message order."""
    out = dict(a)
    for name, cols in b.items():
        first = out.get(name)
        if first is None:
            out[name] = cols
            continue
        both = _concat([first, cols])
        order = np.argsort(both.msg_index, kind="stable")
        pick = order.tolist()
        out[name] = ModelColumns(
            numeric=both.numeric[order],
            categorical=[[c[k] for k in pick] for c in both.categorical],
            ts=both.ts[order],
            ids=[both.ids[k] for k in pick],
            msg_index=both.msg_index[order],
            unknown_features=both.unknown_features,
            versions=[both.versions[k] for k in pick],
            labels=None if both.labels is None else [both.labels[k] for k in pick],
            codes=None if both.codes is None else both.codes[order],
        )
    return out


def _with_codes(batch: DecodedBatch, schema: DecodeSchema) -> DecodedBatch:
    """Categories of the models whose schema has ``codes`` as codes instead of strings."""
    models = dict(batch.models)
    for name, cols in batch.models.items():
        table = schema.models[name].codes
        if table is None or cols.codes is not None:
            continue
        codes = np.empty((cols.rows, len(table)), dtype=np.int64)
        for j, (column, values) in enumerate(zip(table, cols.categorical, strict=True)):
            codes[:, j] = column.encode(values)
        models[name] = replace(cols, categorical=[], codes=codes)
    return DecodedBatch(models, batch.rejected)


def _concat(parts: list[ModelColumns]) -> ModelColumns:
    if len(parts) == 1:
        return parts[0]
    labels = None
    if any(p.labels is not None for p in parts):
        labels = [v for p in parts for v in (p.labels or [None] * p.rows)]
    return ModelColumns(
        numeric=np.concatenate([p.numeric for p in parts]),
        categorical=[
            list(chain.from_iterable(c)) for c in zip(*(p.categorical for p in parts), strict=True)
        ],
        ts=np.concatenate([p.ts for p in parts]),
        ids=list(chain.from_iterable(p.ids for p in parts)),
        msg_index=np.concatenate([p.msg_index for p in parts]),
        unknown_features=sum(p.unknown_features for p in parts),
        versions=list(chain.from_iterable(p.versions for p in parts)),
        labels=labels,
        codes=None if parts[0].codes is None else np.concatenate([p.codes for p in parts]),
    )


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
                    detail = f"array element is {_type_name(ev)}"
                    rejected.append(Rejection(i, Reason.not_object, detail, j))
        else:
            rejected.append(Rejection(i, Reason.not_object, f"message is {_type_name(obj)}"))
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
            reason, detail = Reason.wrong_type, f"model is {_type_name(name)}, not a string"
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
) -> tuple[ModelColumns, dict[int, tuple[Reason, str]]]:
    """Columns of one model's events; ``bad`` maps row -> (reason, detail), first one wins."""
    n = len(evs)
    get = dict.get
    bad: dict[int, tuple[Reason, str]] = {}
    f_feat, f_pred, f_ts, f_id, f_version, f_label = _own_keys(
        evs[0],
        (fields.features, fields.prediction, fields.ts, fields.id, fields.version, fields.label),
    )
    feats: list[Any] = list(map(get, evs, repeat(f_feat)))
    preds: list[Any] = list(map(get, evs, repeat(f_pred)))
    if set(map(type, feats)) != {dict}:
        _check_payloads(feats, preds, list(map(get, evs, repeat(f_label))), bad)

    numeric = np.empty((n, len(ms.numeric_names)), dtype=np.float64)
    sample = next((f for f in feats[:16] if f), _EMPTY)
    num_rows, complete_num = _rows(feats, _own_keys(sample, ms.numeric))
    if ms.numeric:
        numeric[:, : len(ms.numeric)] = _numeric_rows(num_rows, ms.numeric, bad)
    # Categoricals column by column: transposing per-event tuples costs more than the gets.
    categorical = []
    complete_cat = True
    for key in _own_keys(sample, ms.categorical):
        col = list(map(get, feats, repeat(key)))
        values, has_missing = _categorical_column(col, key, bad)
        categorical.append(values)
        complete_cat = complete_cat and not has_missing

    # Every monitored key present in every event: the unknown count is a subtraction.
    # Otherwise count exactly, which costs a pass over all keys.
    total_keys = sum(map(len, feats))
    if complete_num and complete_cat:
        unknown = total_keys - n * (len(ms.numeric) + len(ms.categorical))
    else:
        known = frozenset(ms.numeric) | frozenset(ms.categorical)
        unknown = total_keys - sum(map(known.__contains__, chain.from_iterable(feats)))

    if ms.prediction == "numeric":
        numeric[:, len(ms.numeric)] = _numeric_column(preds, "prediction", bad)
    elif ms.prediction == "categorical":
        categorical.append(_categorical_column(preds, "prediction", bad)[0])
    elif ms.prediction == "probabilities":
        probs = _probability_objects(preds, bad)
        for j, cls in enumerate(ms.classes, start=len(ms.numeric)):
            col = list(map(get, probs, repeat(cls)))
            numeric[:, j] = _numeric_column(col, f"prediction.{cls}", bad)

    ts = _timestamps(list(map(get, evs, repeat(f_ts))), kafka_ts, msgs, bad)
    ids = _optional_strings(list(map(get, evs, repeat(f_id))))
    versions = _optional_strings(list(map(get, evs, repeat(f_version))))
    label_col = list(map(get, evs, repeat(f_label)))
    labels = None if label_col.count(None) == n else label_col
    cols = ModelColumns(
        numeric, categorical, ts, ids, np.array(msgs, dtype=np.int64), unknown, versions, labels
    )
    return _drop_rows(cols, bad), bad


def _drop_rows(cols: ModelColumns, bad: dict[int, tuple[Reason, str]]) -> ModelColumns:
    """The columns without the rejected rows."""
    if not bad:
        return cols
    keep = np.ones(cols.rows, dtype=bool)
    keep[list(bad)] = False
    kl = keep.tolist()
    return ModelColumns(
        numeric=cols.numeric[keep],
        categorical=[list(compress(c, kl)) for c in cols.categorical],
        ts=cols.ts[keep],
        ids=list(compress(cols.ids, kl)),
        msg_index=cols.msg_index[keep],
        unknown_features=cols.unknown_features,
        versions=list(compress(cols.versions, kl)),
        labels=None if cols.labels is None else list(compress(cols.labels, kl)),
    )


_NO_PAYLOAD = "neither features, prediction nor label"


def _check_payloads(
    feats: list[Any], preds: list[Any], labels: list[Any], bad: dict[int, tuple[Reason, str]]
) -> None:
    """Replace absent or invalid features objects by {} and record why.

    An event with a label but neither features nor a prediction is a label event (the
    performance join): accepted, with every feature missing.
    """
    for k, f in enumerate(feats):
        if type(f) is dict:
            continue
        if f is None:
            if preds[k] is None and labels[k] is None:
                bad.setdefault(k, (Reason.no_payload, _NO_PAYLOAD))
        else:
            bad.setdefault(k, (Reason.wrong_type, f"features is {_type_name(f)}, not an object"))
        feats[k] = _EMPTY


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


def _numeric_rows(
    rows: list[Any], names: tuple[str, ...], bad: dict[int, tuple[Reason, str]]
) -> np.ndarray:
    """rows x features float64; None becomes NaN; a non-number rejects its row."""
    if not set(map(type, chain.from_iterable(rows))) <= _NUMERIC_TYPES:
        blank = (None,) * len(names)
        for k, row in enumerate(rows):
            for name, v in zip(names, row, strict=True):
                if type(v) not in _NUMERIC_TYPES:
                    detail = f"feature {name!r}: expected a number, got {_type_name(v)}"
                    bad.setdefault(k, (Reason.wrong_type, detail))
                    rows[k] = blank
                    break
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(names))


def _numeric_column(col: list[Any], name: str, bad: dict[int, tuple[Reason, str]]) -> Any:
    """A list numpy can turn into float64 (None becomes NaN); strings etc. reject the row."""
    if set(map(type, col)) <= _NUMERIC_TYPES:
        return col
    for k, v in enumerate(col):
        if type(v) not in _NUMERIC_TYPES:
            detail = f"feature {name!r}: expected a number, got {_type_name(v)}"
            bad.setdefault(k, (Reason.wrong_type, detail))
            col[k] = None
    return col


def _categorical_column(
    col: list[Any], name: str, bad: dict[int, tuple[Reason, str]]
) -> tuple[list[str | None], bool]:
    """Categories as str (bools true/false, ints via str, floats via repr); True if any
    value is missing. Objects and arrays reject their row."""
    types = set(map(type, col))
    if types <= _STR_TYPES:
        return col, _NONE in types
    if types <= _BOOL_TYPES:
        return list(map(_BOOL_TEXT.get, col)), _NONE in types
    for k, v in enumerate(col):
        t = type(v)
        if t is str or v is None:
            continue
        if t is bool:
            col[k] = "true" if v else "false"
        elif t is int:
            # Past 64 bits orjson reads an integer as a float: msgspec rows must agree.
            col[k] = str(v) if _INT_MIN <= v < _INT_MAX else repr(float(v))
        elif t is float:
            col[k] = repr(v)  # orjson never yields NaN/inf, so every float here is finite
        else:
            detail = f"feature {name!r}: expected a category, got {_type_name(v)}"
            bad.setdefault(k, (Reason.wrong_type, detail))
            col[k] = None
    return col, True


def _probability_objects(preds: list[Any], bad: dict[int, tuple[Reason, str]]) -> list[Any]:
    if set(map(type, preds)) == {dict}:
        return preds
    out = list(preds)
    for k, p in enumerate(out):
        if type(p) is not dict:
            if p is not None:
                detail = f"prediction is {_type_name(p)}, expected class -> probability"
                bad.setdefault(k, (Reason.wrong_type, detail))
            out[k] = _EMPTY
    return out


def _timestamps(
    col: list[Any], kafka_ts: np.ndarray, msgs: list[int], bad: dict[int, tuple[Reason, str]]
) -> np.ndarray:
    """Event times: numbers as epoch seconds, RFC 3339 strings, else the Kafka timestamp."""
    types = set(map(type, col))
    if types <= {float, int}:
        ts = np.array(col, dtype=np.float64)
        out_of_range = (ts < 0) | (ts >= _MAX_TS)
        if not out_of_range.any():
            return ts
    elif types == {_NONE}:
        return np.asarray(kafka_ts, dtype=np.float64)[msgs]
    ts = np.asarray(kafka_ts, dtype=np.float64)[msgs]
    for k, v in enumerate(col):
        t = type(v)
        if v is None:
            continue
        if t is float or t is int:
            if 0 <= v < _MAX_TS:
                ts[k] = v
                continue
            detail = f"ts {v:g} is not epoch seconds"
        elif t is str:
            parsed = _parse_rfc3339(v)
            if parsed is not None:
                ts[k] = parsed
                continue
            detail = f"ts {v[:40]!r} is not an RFC 3339 time with offset"
        else:
            detail = f"ts is {_type_name(v)}"
        bad.setdefault(k, (Reason.bad_timestamp, detail))
    return ts


def _parse_rfc3339(text: str) -> float | None:
    if len(text) > 40:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:  # RFC 3339 requires an offset; a local time is ambiguous
        return None
    value = moment.timestamp()
    return value if 0 <= value < _MAX_TS else None


def _optional_strings(col: list[Any]) -> list[str | None]:
    """Ids and versions: strings kept, integers stringified, anything else missing."""
    if set(map(type, col)) <= _STR_TYPES:
        return col
    return [
        v if type(v) is str else str(v) if type(v) is int and _INT_MIN <= v < _INT_MAX else None
        for v in col
    ]


# ------------------------------------------------------------------- typed fast path
#
# msgspec decodes each event straight into a Struct generated from the schema: the event
# fields and one typed field per monitored feature, so type checks happen inside the
# decoder and nothing builds a dict. Every Struct forbids unknown fields, so nothing is
# skipped unread (msgspec checks neither UTF-8 nor number range in skipped values). A
# message the typed decoder refuses, for whatever reason, goes through the general path
# above, which classifies it exactly as before. Extra keys seen there are learned (up to
# _MAX_LEARNED per Struct) and added as untyped fields, so a producer that always sends a
# few unmonitored keys still takes the fast path from its second batch on.

_NUM_T: Any = float | bool | None
_CAT_T: Any = str | int | float | bool | None
_STR_T: Any = str | None
_TS_T: Any = float | str | None
_ID_T: Any = str | int | float | None
_PRED_T: dict[str | None, Any] = {"numeric": _NUM_T, "categorical": _STR_T}
_MAX_LEARNED = 32
_SCALAR_TYPES = frozenset({int, float, bool})
_MAX_KEY_CHARS = 128
_TOP_ATTRS = ("ts", "id", "features", "prediction", "version", "label")
_CODECS: dict[tuple[object, ...], _TypedCodec | None] = {}

if msgspec is not None:
    _DECODE_ERRORS: tuple[type[BaseException], ...] = (
        msgspec.MsgspecError,
        UnicodeDecodeError,
        RecursionError,
        TypeError,
        ValueError,
    )


def _codec_for(schema: DecodeSchema) -> _TypedCodec | None:
    """The typed decoder of ``schema`` (cached by content); None without msgspec."""
    if msgspec is None:
        return None
    key = (
        tuple(schema.models.items()),
        schema.fields,
        schema.bound_model,
        schema.max_message_bytes,
    )
    try:
        return _CODECS[key]
    except KeyError:
        pass
    if len(_CODECS) >= 64:
        _CODECS.clear()
    fields = schema.fields
    names = (fields.model, *(getattr(fields, a) for a in _TOP_ATTRS))
    # Colliding field names cannot be one Struct: such topics keep the general path.
    codec = None
    if len(set(names)) == len(names) and schema.models:
        try:
            codec = _TypedCodec(schema)
        except (TypeError, ValueError):  # a name msgspec cannot match: general path
            codec = None
    _CODECS[key] = codec
    return codec


@dataclass(slots=True)
class _Layout:
    """The generated Structs of one model and getters for their columns."""

    schema: ModelSchema
    event: type
    no_features: Any
    #: Fields of the event Struct, and the index of its first standard field (``ts``).
    n_top: int
    first: int
    #: Learned extra feature keys, the last fields of the features Struct.
    n_extra: int
    #: Categorical columns (and whether the prediction) may hold numbers or booleans.
    loose_cats: tuple[int, ...]
    loose_prediction: bool


class _TypedCodec:
    """msgspec decoder generated from one decode schema, plus the keys it learned."""

    def __init__(self, schema: DecodeSchema) -> None:
        self.schema = schema
        self.max_bytes = schema.max_message_bytes
        self.extra_top: dict[str, list[str]] = {name: [] for name in schema.models}
        self.extra_features: dict[str, list[str]] = {name: [] for name in schema.models}
        # Categorical columns start as str | None (no type pass needed); one that shows a
        # number or a boolean on the general path is widened. None stands for the prediction.
        self.loose: dict[str, set[str | None]] = {name: set() for name in schema.models}
        self.learned = False
        self._build()

    def _build(self) -> None:
        layouts = [self._layout(ms) for ms in self.schema.models.values()]
        self.layouts = {lay.event: lay for lay in layouts}
        self.single = layouts[0] if len(layouts) == 1 else None
        target = reduce(operator.or_, [lay.event for lay in layouts])
        self.decode: Callable[[bytes], Any] = msgspec.json.Decoder(target).decode

    def _layout(self, ms: ModelSchema) -> _Layout:
        fields = self.schema.fields
        loose = self.loose[ms.name]
        feats = [(n, _NUM_T) for n in ms.numeric]
        feats += [(n, _CAT_T if n in loose else _STR_T) for n in ms.categorical]
        extra = self.extra_features[ms.name]
        spec: list[tuple[str, Any, Any]] = [(f"f{i}", t, None) for i, (_, t) in enumerate(feats)]
        spec += [(f"u{i}", Any, msgspec.UNSET) for i in range(len(extra))]
        rename = {f"f{i}": n for i, (n, _) in enumerate(feats)}
        rename.update({f"u{i}": n for i, n in enumerate(extra)})
        features = msgspec.defstruct(
            "Features", spec, rename=rename, forbid_unknown_fields=True, gc=False
        )
        pred = _CAT_T if None in loose else _PRED_T.get(ms.prediction, Any)
        top: list[tuple[str, Any, Any] | tuple[str, Any]] = []
        options: dict[str, Any] = {}
        if self.schema.bound_model is not None:
            top.append(("model", Any, None))  # present or not, never read
        elif len(self.schema.models) == 1:
            top.append(("model", Literal.__getitem__(ms.name)))
        else:
            options = {"tag_field": fields.model, "tag": ms.name}
        types = (_TS_T, _ID_T, features | None, pred, _ID_T, _CAT_T)
        top += [(a, t, None) for a, t in zip(_TOP_ATTRS, types, strict=True)]
        top += [(f"x{i}", Any, None) for i in range(len(self.extra_top[ms.name]))]
        names = {a: getattr(fields, a) for a in ("model", *_TOP_ATTRS)}
        names.update({f"x{i}": n for i, n in enumerate(self.extra_top[ms.name])})
        event = msgspec.defstruct(
            "Event", top, rename=names, forbid_unknown_fields=True, gc=False, **options
        )
        first = len(top) - len(_TOP_ATTRS) - len(self.extra_top[ms.name])
        loose_cats = tuple(j for j, n in enumerate(ms.categorical) if n in loose)
        return _Layout(
            ms, event, features(), len(top), first, len(extra), loose_cats, None in loose
        )

    def decode_chunk(
        self,
        chunk: Sequence[bytes | None],
        start: int,
        kafka_ts: np.ndarray,
        rejected: list[Rejection],
    ) -> tuple[dict[str, ModelColumns], list[int]]:
        """Columns of the messages the typed decoder reads, and the indices of the rest."""
        slow: list[int] = []
        try:
            if max(map(len, chunk)) > self.max_bytes:  # type: ignore[arg-type]
                raise ValueError
            objs = list(map(self.decode, chunk))  # type: ignore[arg-type]
            msgs = list(range(start, start + len(chunk)))
        except _DECODE_ERRORS:
            objs, msgs = [], []
            decode, max_bytes = self.decode, self.max_bytes
            for i, payload in enumerate(chunk, start):
                try:
                    if payload is None or len(payload) > max_bytes:
                        raise ValueError
                    objs.append(decode(payload))
                    msgs.append(i)
                except _DECODE_ERRORS:
                    slow.append(i)
        out: dict[str, ModelColumns] = {}
        for lay, evs, ms in self._group(objs, msgs):
            cols, bad = _typed_columns(lay, evs, ms, kafka_ts)
            out[lay.schema.name] = cols
            rejected.extend(Rejection(ms[k], reason, detail) for k, (reason, detail) in bad.items())
        return out, slow

    def _group(
        self, objs: list[Any], msgs: list[int]
    ) -> list[tuple[_Layout, list[Any], list[int]]]:
        if not objs:
            return []
        if self.single is not None:
            return [(self.single, objs, msgs)]
        types = list(map(type, objs))
        kinds = set(types)
        if len(kinds) == 1:
            return [(self.layouts[types[0]], objs, msgs)]
        out = []
        for kind in kinds:
            mask = list(map(operator.is_, types, repeat(kind)))
            out.append((self.layouts[kind], list(compress(objs, mask)), list(compress(msgs, mask))))
        return out

    def observe(self, model: str, events: list[dict[str, Any]]) -> None:
        """Learn extra keys and non-string categories from events on the general path."""
        top, feat = self.extra_top[model], self.extra_features[model]
        fields = self.schema.fields
        known_top = {fields.model, *(getattr(fields, a) for a in _TOP_ATTRS), *top}
        ms = self.schema.models[model]
        known_feat = {*ms.numeric, *ms.categorical, *feat}
        loose = self.loose[model]
        strict = [n for n in ms.categorical if n not in loose]
        check_pred = ms.prediction == "categorical" and None not in loose
        for ev in events:
            self._learn(ev, known_top, top)
            features = ev.get(fields.features)
            if type(features) is dict:
                self._learn(features, known_feat, feat)
                for name in strict:
                    if type(features.get(name)) in _SCALAR_TYPES:
                        loose.add(name)
                        self.learned = True
            if check_pred and type(ev.get(fields.prediction)) in _SCALAR_TYPES:
                loose.add(None)
                self.learned = True

    def _learn(self, obj: dict[str, Any], known: set[str], learned: list[str]) -> None:
        if len(learned) >= _MAX_LEARNED:
            return
        for key in obj:
            if key not in known and len(learned) < _MAX_LEARNED and _learnable(key):
                known.add(key)
                learned.append(key)
                self.learned = True

    def rebuild_if_learned(self) -> None:
        """Regenerate the Structs after new extra keys were learned."""
        if self.learned:
            self.learned = False
            self._build()


def _learnable(key: str) -> bool:
    """Short keys msgspec can match (no quote, backslash or control character)."""
    return len(key) <= _MAX_KEY_CHARS and key.isprintable() and '"' not in key and "\\" not in key


def _typed_columns(
    lay: _Layout, evs: list[Any], msgs: list[int], kafka_ts: np.ndarray
) -> tuple[ModelColumns, dict[int, tuple[Reason, str]]]:
    """Columns of one model's decoded Structs; msgspec has already checked the types."""
    ms = lay.schema
    n = len(evs)
    bad: dict[int, tuple[Reason, str]] = {}
    # Structs to one object matrix and back to columns: numpy does the transposing.
    top = _table(evs, lay.n_top)[:, lay.first : lay.first + len(_TOP_ATTRS)]
    ts_col, id_col, feats, preds, version_col, label_col = top.T.tolist()
    if None in feats:
        for k, f in enumerate(feats):
            if f is None:
                if preds[k] is None and label_col[k] is None:
                    bad[k] = (Reason.no_payload, _NO_PAYLOAD)
                feats[k] = lay.no_features
    n_num, n_cat = len(ms.numeric), len(ms.categorical)
    table = _table(feats, n_num + n_cat + lay.n_extra)
    numeric = np.empty((n, len(ms.numeric_names)), dtype=np.float64)
    numeric[:, :n_num] = table[:, :n_num]  # None becomes NaN, booleans 0 and 1
    categorical = table[:, n_num : n_num + n_cat].T.tolist()
    for j in lay.loose_cats:
        categorical[j] = _categorical_column(categorical[j], ms.categorical[j], bad)[0]
    # Learned extra feature keys hold UNSET where an event did not send them.
    extra = table[:, n_num + n_cat :].ravel().tolist()
    unknown = len(extra) - extra.count(msgspec.UNSET)
    if ms.prediction == "numeric":
        numeric[:, n_num] = preds
    elif ms.prediction == "categorical":
        loose = lay.loose_prediction
        categorical.append(_categorical_column(preds, "prediction", bad)[0] if loose else preds)
    elif ms.prediction == "probabilities":
        probs = _probability_objects(preds, bad)
        for j, cls in enumerate(ms.classes, start=n_num):
            col = list(map(dict.get, probs, repeat(cls)))
            numeric[:, j] = _numeric_column(col, f"prediction.{cls}", bad)
    if int in set(map(type, label_col)):
        label_col = [
            float(v) if type(v) is int and not _INT_MIN <= v < _INT_MAX else v for v in label_col
        ]
    cols = ModelColumns(
        numeric=numeric,
        categorical=categorical,
        ts=_timestamps(ts_col, kafka_ts, msgs, bad),
        ids=_optional_strings(id_col),
        msg_index=np.array(msgs, dtype=np.int64),
        unknown_features=unknown,
        versions=_optional_strings(version_col),
        labels=None if label_col.count(None) == n else label_col,
    )
    return _drop_rows(cols, bad), bad


def _table(structs: list[Any], width: int) -> np.ndarray:
    """Structs as an object matrix, one row per Struct, one column per field."""
    flat = chain.from_iterable(map(msgspec.structs.astuple, structs))
    count = len(structs) * width
    return np.fromiter(flat, dtype=object, count=count).reshape(len(structs), width)


# ------------------------------------------------------------------ columnar scanner
#
# Models whose schema carries category codes (the pipeline sets them once a model's
# reference is known) are read by the Numba scanner (ingest/decode/scanner.py): no Python
# object per event or value. Every message it is not sure about is decoded by the object paths
# above, which give exactly the same columns (tests/unit/test_decode_scan.py).

_SCANNERS: dict[tuple[object, ...], _Scanner | None] = {}
_PRED_KINDS = {
    None: jsonscan.PRED_NONE,
    "numeric": jsonscan.PRED_NUMERIC,
    "categorical": jsonscan.PRED_CATEGORICAL,
    "probabilities": jsonscan.PRED_PROBABILITIES,
}


def _scanner_for(schema: DecodeSchema) -> _Scanner | None:
    """The scanner of the schema's models with codes (cached by content); None if none."""
    key = (tuple(schema.models.items()), schema.fields, schema.bound_model)
    try:
        return _SCANNERS[key]
    except KeyError:
        pass
    if len(_SCANNERS) >= 64:
        _SCANNERS.clear()
    fields = schema.fields
    top = tuple(getattr(fields, name) for name in jsonscan.TOP_FIELDS)
    coded = [ms for ms in schema.models.values() if ms.codes is not None]
    bound = schema.bound_model
    scanner = None
    # Colliding field names, or a bound model without codes, keep the object paths.
    if coded and len(set(top)) == len(top) and (bound is None or bound in schema.models):
        if bound is None or schema.models[bound].codes is not None:
            scanner = _Scanner(schema, coded if bound is None else [schema.models[bound]], top)
    _SCANNERS[key] = scanner
    return scanner


class _Scanner:
    """The scan tables of one decode schema and the step from scan results to columns."""

    def __init__(self, schema: DecodeSchema, models: list[ModelSchema], top: tuple[str, ...]):
        self.names = [ms.name for ms in models]
        self.max_bytes = schema.max_message_bytes
        self.widths = [(len(ms.numeric_names), len(ms.categorical_names)) for ms in models]
        bound = 0 if schema.bound_model is not None else -1
        self.tables = jsonscan.build_tables([_scan_model(ms) for ms in models], top, bound)

    def scan(
        self, payloads: Sequence[bytes | None], kafka_ts: KafkaTimes
    ) -> tuple[dict[str, ModelColumns], np.ndarray]:
        """Columns of the messages the scanner reads, and the indices of the others."""
        n = len(payloads)
        try:
            lengths = np.fromiter(map(len, payloads), dtype=np.int64, count=n)  # type: ignore[arg-type]
            joined = b"".join(payloads)  # type: ignore[arg-type]
        except TypeError:  # a message without a value: scanned as empty, so passed on
            present = [p if p is not None else b"" for p in payloads]
            lengths = np.fromiter(map(len, present), dtype=np.int64, count=n)
            joined = b"".join(present)
        ends = np.cumsum(lengths)
        starts = ends - lengths
        oversized = lengths > self.max_bytes
        if oversized.any():
            ends = np.where(oversized, starts, ends)
        buf = np.frombuffer(joined, dtype=np.uint8)
        result = jsonscan.scan_messages(self.tables, buf, starts, ends)
        ok = result.status == 0
        out: dict[str, ModelColumns] = {}
        everything = bool(ok.all())
        for index, name in enumerate(self.names):
            if len(self.names) == 1:
                rows = np.arange(n, dtype=np.int64) if everything else np.flatnonzero(ok)
            else:
                rows = np.flatnonzero(ok & (result.model == index))
            if rows.size == 0:
                continue
            n_num, n_cat = self.widths[index]
            whole = everything and len(self.names) == 1
            numeric = result.numeric[:, :n_num] if whole else result.numeric[rows, :n_num]
            codes = result.codes[:, :n_cat] if whole else result.codes[rows, :n_cat]
            ts = result.ts if whole else result.ts[rows]
            absent = np.isnan(ts)
            if absent.any():
                ts[absent] = _times(kafka_ts)[rows[absent]]
            blank: list[str | None] = [None] * rows.size
            out[name] = ModelColumns(
                numeric=np.ascontiguousarray(numeric),
                categorical=[],
                ts=ts,
                ids=blank,
                msg_index=rows,
                unknown_features=int(result.unknown[rows].sum()),
                versions=blank,
                labels=None,
                codes=np.ascontiguousarray(codes),
            )
        return out, np.flatnonzero(~ok)


def _scan_model(ms: ModelSchema) -> jsonscan.ScanModel:
    codes = ms.codes or ()
    n_num, n_cat = len(ms.numeric), len(ms.categorical)
    prediction_column = {"numeric": n_num, "categorical": n_cat}.get(ms.prediction or "", -1)
    classes = None
    if ms.prediction == "probabilities":
        classes = {cls: n_num + k for k, cls in enumerate(ms.classes)}
    return jsonscan.ScanModel(
        name=ms.name,
        numeric={name: col for col, name in enumerate(ms.numeric)},
        categorical={name: col for col, name in enumerate(ms.categorical)},
        num_width=len(ms.numeric_names),
        cat_width=len(ms.categorical_names),
        vocab=[c.codes for c in codes],
        unseen=[c.unseen for c in codes],
        prediction=_PRED_KINDS[ms.prediction],
        prediction_column=prediction_column,
        classes=classes,
    )


def _type_name(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if type(value) in (int, float) else "a value")
