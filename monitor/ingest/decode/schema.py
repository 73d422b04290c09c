"""What decode is asked to read, and the vocabulary of its answer's rejections.

Owns the reject reasons (the label set of ``driftmon_invalid_events_total``), the event
field names of a topic, the per-model and per-topic decode schemas, and how a schema is
derived from the config. The category code table is the statistics engine's
(:class:`~monitor.stats.profile.CategoryCodes`), so decoded codes are the reference's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

import numpy as np

from monitor.stats.profile import CategoryCodes

if TYPE_CHECKING:
    from monitor.config import Config

__all__ = [
    "CategoryCodes",
    "DecodeSchema",
    "EventFields",
    "KafkaTimes",
    "ModelSchema",
    "PredictionKind",
    "Reason",
    "Rejection",
    "build_decode_schema",
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
    too_long = "too_long"  # an id or version past its length limit (decode/limits.py)
    #: Model-server formats: a tensor's shape does not fit its data or the model's columns.
    bad_shape = "bad_shape"
    #: An unknown tensor datatype, or data that is not of the datatype it declares.
    bad_datatype = "bad_datatype"
    #: Raw tensor contents or a protobuf field shorter than announced.
    truncated = "truncated"
    #: Unreadable framing: protobuf wire format, Schema Registry prefix, CloudEvent envelope.
    bad_framing = "bad_framing"


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
    #: The features in configured order (positional KServe v1 instances follow it);
    #: empty: numeric, then categorical.
    feature_order: tuple[str, ...] = ()

    @property
    def order(self) -> tuple[str, ...]:
        """The features in configured order."""
        return self.feature_order or (*self.numeric, *self.categorical)

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
    #: The zone of ISO event times without an offset (``timestamps.timezone``); ``None``
    #: rejects them (``bad_timestamp``), as RFC 3339 requires an offset.
    timezone: tzinfo | None = None
    #: How payloads are written (``kafka.topics[].format``; see ``decode.formats``).
    format: str = "driftmon"
    #: ``[N,F]`` input tensors: name -> the feature of each column (``tensors``).
    tensors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: The output tensor read as the prediction; ``None``: the first output.
    prediction_output: str | None = None


#: Kafka timestamps of a batch, or a function giving them (only called when some event
#: has no ``ts`` of its own: reading every message's timestamp is a pass over the batch).
KafkaTimes = np.ndarray | Callable[[], np.ndarray]


def kafka_times(kafka_ts: KafkaTimes) -> np.ndarray:
    """The Kafka timestamps themselves, calling the function form if that is what came."""
    return np.asarray(kafka_ts if isinstance(kafka_ts, np.ndarray) else kafka_ts())


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
            feature_order=tuple(feats),
        )
    fields = EventFields(**conf.fields.model_dump())
    return DecodeSchema(
        models=models,
        fields=fields,
        bound_model=conf.model,
        max_message_bytes=config.max_message_bytes,
        timezone=conf.zone or config.timestamps.zone,
        format=conf.format,
        tensors={name: tuple(cols) for name, cols in conf.tensors.items()},
        prediction_output=conf.prediction_output,
    )
