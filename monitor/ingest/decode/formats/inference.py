"""The batch loop of the formats that carry inferences (``oip``, ``kserve``, ``seldon``).

A format supplies a reader from one message (value and headers) to an
:class:`~.tensors.Inference` plus what its envelope says (model, pairing key); this loop
routes it to a model, maps it onto the model's columns and rejects, with a reason, every
message that cannot be read, so one bad message never costs the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from monitor.ingest.decode.columns import DecodedBatch
from monitor.ingest.decode.formats.batch import Headers, MessageBatch
from monitor.ingest.decode.formats.rows import Block, assemble, block_of
from monitor.ingest.decode.formats.tensors import Inference, Malformed
from monitor.ingest.decode.schema import DecodeSchema, Reason, Rejection, kafka_times

__all__ = ["MAX_KEY_CHARS", "Envelope", "Reader", "decode_inferences", "model_of"]


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message read: the inference, and the model and pairing key its envelope names
    (``None``: the body's own model, or no pairing key)."""

    inference: Inference
    model: str | None = None
    pair_key: str | None = None
    #: Event time the envelope gives (epoch seconds); ``None``: the Kafka timestamp.
    ts: float | None = None


#: Reads one message (value, headers, topic); raises :class:`~.tensors.Malformed`;
#: ``None`` for a message the format ignores (not counted as rejected).
Reader = Callable[[bytes, Headers, str | None], Envelope | None]


def decode_inferences(batch: MessageBatch, schema: DecodeSchema, read: Reader) -> DecodedBatch:
    """Every message of ``batch`` through ``read``, then onto its model's columns."""
    rejected: list[Rejection] = []
    blocks: dict[str, list[Block]] = {}
    headers = batch.all_headers()
    topics = batch.all_topics()
    limit = schema.max_message_bytes
    for i, payload in enumerate(batch.payloads):
        if payload is None:
            rejected.append(Rejection(i, Reason.no_payload, "message has no value"))
            continue
        if len(payload) > limit:
            detail = f"{len(payload)} bytes > max_message_bytes {limit}"
            rejected.append(Rejection(i, Reason.oversized, detail))
            continue
        try:
            envelope = read(payload, headers[i], topics[i])
            if envelope is None:
                continue
            model = _model_of(envelope, schema)
            ms = schema.models[model]
            pair_key = envelope.pair_key or envelope.inference.id
            _check_key(envelope.inference.id, "id")
            _check_key(pair_key, "pairing key")
            block = block_of(
                envelope.inference,
                ms,
                schema.tensors,
                schema.prediction_output,
                i,
                pair_key,
                envelope.ts,
            )
        except Malformed as exc:
            rejected.append(Rejection(i, exc.reason, exc.detail))
            continue
        if block is not None and block.rows:
            blocks.setdefault(model, []).append(block)
    if not blocks:
        return DecodedBatch({}, rejected)
    ts = kafka_times(batch.kafka_ts)
    return DecodedBatch({name: assemble(b, ts) for name, b in blocks.items()}, rejected)


#: Longest request id or pairing key: each becomes ``<key>:<row>`` on every row and waits
#: in the pairing store, so a hostile one must not be copied per row (the id limit of
#: driftmon's own events).
MAX_KEY_CHARS = 256


def _check_key(key: str | None, what: str) -> None:
    if key is not None and len(key) > MAX_KEY_CHARS:
        raise Malformed(
            Reason.too_long, f"{what} of {len(key)} characters, more than {MAX_KEY_CHARS}"
        )


def _model_of(envelope: Envelope, schema: DecodeSchema) -> str:
    return model_of(envelope.model or envelope.inference.model, schema)


def model_of(name: str | None, schema: DecodeSchema) -> str:
    """The configured model a message belongs to: the topic's binding, else ``name``."""
    if schema.bound_model is not None:
        return schema.bound_model
    if name is None:
        raise Malformed(
            Reason.missing_model, "no model named: bind the topic to a model (`model:`)"
        )
    if name not in schema.models:
        raise Malformed(Reason.unknown_model, f"model {name[:64]!r} is not configured")
    return name
