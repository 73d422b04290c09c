"""The msgspec typed codec: the fast object path for models without category codes.

msgspec decodes each event straight into a Struct generated from the schema: the event
fields and one typed field per monitored feature, so type checks happen inside the
decoder and nothing builds a dict. Every Struct forbids unknown fields, so nothing is
skipped unread (msgspec checks neither UTF-8 nor number range in skipped values). A
message the typed decoder refuses, for whatever reason, goes through the general path
(:mod:`monitor.ingest.decode.objects`), which classifies it exactly as before. Extra keys
seen there are learned (up to ``_MAX_LEARNED`` per Struct) and added as untyped fields,
so a producer that always sends a few unmonitored keys still takes the fast path from its
second batch on.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from functools import reduce
from itertools import chain, compress, repeat
from typing import Any, Literal

import numpy as np

from monitor.ingest.decode.columns import ModelColumns
from monitor.ingest.decode.schema import DecodeSchema, ModelSchema, Reason, Rejection
from monitor.ingest.decode.values import (
    INT_MAX,
    INT_MIN,
    NO_PAYLOAD,
    Bad,
    categorical_column,
    event_times,
    numeric_column,
    optional_strings,
    probability_objects,
)

try:  # the typed fast path; without msgspec every message takes the general path
    import msgspec
except ImportError:  # pragma: no cover
    msgspec = None  # type: ignore[assignment]

__all__ = ["codec_for"]

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


def codec_for(schema: DecodeSchema) -> _TypedCodec | None:
    """The typed decoder of ``schema`` (cached by content); None without msgspec."""
    if msgspec is None:
        return None
    key = (
        tuple(schema.models.items()),
        schema.fields,
        schema.bound_model,
        schema.max_message_bytes,
        schema.timezone,
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
            cols, bad = _typed_columns(lay, evs, ms, kafka_ts, self.schema.timezone)
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
    lay: _Layout, evs: list[Any], msgs: list[int], kafka_ts: np.ndarray, zone: tzinfo | None
) -> tuple[ModelColumns, Bad]:
    """Columns of one model's decoded Structs; msgspec has already checked the types."""
    ms = lay.schema
    n = len(evs)
    bad: Bad = {}
    # Structs to one object matrix and back to columns: numpy does the transposing.
    top = _table(evs, lay.n_top)[:, lay.first : lay.first + len(_TOP_ATTRS)]
    ts_col, id_col, feats, preds, version_col, label_col = top.T.tolist()
    if None in feats:
        for k, f in enumerate(feats):
            if f is None:
                if preds[k] is None and label_col[k] is None:
                    bad[k] = (Reason.no_payload, NO_PAYLOAD)
                feats[k] = lay.no_features
    n_num, n_cat = len(ms.numeric), len(ms.categorical)
    table = _table(feats, n_num + n_cat + lay.n_extra)
    numeric = np.empty((n, len(ms.numeric_names)), dtype=np.float64)
    numeric[:, :n_num] = table[:, :n_num]  # None becomes NaN, booleans 0 and 1
    categorical = table[:, n_num : n_num + n_cat].T.tolist()
    for j in lay.loose_cats:
        categorical[j] = categorical_column(categorical[j], ms.categorical[j], bad)[0]
    # Learned extra feature keys hold UNSET where an event did not send them.
    extra = table[:, n_num + n_cat :].ravel().tolist()
    unknown = len(extra) - extra.count(msgspec.UNSET)
    if ms.prediction == "numeric":
        numeric[:, n_num] = preds
    elif ms.prediction == "categorical":
        loose = lay.loose_prediction
        categorical.append(categorical_column(preds, "prediction", bad)[0] if loose else preds)
    elif ms.prediction == "probabilities":
        probs = probability_objects(preds, bad)
        for j, cls in enumerate(ms.classes, start=n_num):
            col = list(map(dict.get, probs, repeat(cls)))
            numeric[:, j] = numeric_column(col, f"prediction.{cls}", bad)
    if int in set(map(type, label_col)):
        label_col = [
            float(v) if type(v) is int and not INT_MIN <= v < INT_MAX else v for v in label_col
        ]
    cols = ModelColumns(
        numeric=numeric,
        categorical=categorical,
        ts=event_times(ts_col, kafka_ts, msgs, bad, zone),
        ids=optional_strings(id_col),
        msg_index=np.array(msgs, dtype=np.int64),
        unknown_features=unknown,
        versions=optional_strings(version_col),
        labels=None if label_col.count(None) == n else label_col,
    )
    return cols.drop_rows(bad), bad


def _table(structs: list[Any], width: int) -> np.ndarray:
    """Structs as an object matrix, one row per Struct, one column per field."""
    flat = chain.from_iterable(map(msgspec.structs.astuple, structs))
    count = len(structs) * width
    return np.fromiter(flat, dtype=object, count=count).reshape(len(structs), width)
