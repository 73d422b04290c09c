"""``oip``: Open Inference Protocol v2 requests and responses on a topic, JSON or protobuf
(detected per message: a JSON body starts with ``{`` after any whitespace, a protobuf
message never does unless its model name is 123 bytes long).

The model is the topic's binding, else the body's ``model_name``, else MLServer's
``mlserver-model`` header; requests pair with responses by the body ``id``. A Triton
binary-extension body is read when its JSON header length travels along, as the
``inference-header-content-length`` header.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from monitor.ingest.decode.columns import DecodedBatch, ModelColumns, merge_models
from monitor.ingest.decode.formats.batch import Headers, MessageBatch, header_text
from monitor.ingest.decode.formats.inference import Envelope, decode_inferences
from monitor.ingest.decode.formats.oip_columns import scanned_oip_json
from monitor.ingest.decode.formats.oip_fast import fast_oip_json
from monitor.ingest.decode.formats.oip_json import read_oip_json
from monitor.ingest.decode.formats.oip_proto import read_oip_protobuf
from monitor.ingest.decode.formats.tensors import Inference, Malformed
from monitor.ingest.decode.schema import DecodeSchema, Reason, kafka_times

__all__ = ["HEADER_LENGTH", "decode_oip", "input_names", "read_body"]

#: Triton's HTTP header giving the JSON header's length in a binary-extension body.
HEADER_LENGTH = "inference-header-content-length"
_Read = Callable[[bytes, Headers, str | None], Envelope]


def read_body(
    payload: bytes,
    headers: Headers,
    inputs: Callable[[str], bool],
    is_request: bool | None = None,
) -> Inference:
    """A v2 body, JSON (Triton binary extension included) or protobuf; ``inputs`` tells
    whether a tensor name is a model input (see :mod:`.oip_proto`)."""
    if payload[:64].lstrip(b" \t\r\n")[:1] in (b"{", b"["):
        length = header_text(headers, HEADER_LENGTH)
        if length is not None and not length.isdigit():
            raise Malformed(Reason.wrong_type, f"{HEADER_LENGTH} {length[:20]!r} is not a length")
        return read_oip_json(payload, int(length) if length is not None else None)
    return read_oip_protobuf(payload, is_request, inputs)


def input_names(schema: DecodeSchema) -> Callable[[str], bool]:
    """Whether a tensor name is an input of some model of the schema."""
    names = set(schema.tensors)
    for ms in schema.models.values():
        names.update(ms.numeric, ms.categorical)
    return names.__contains__


def decode_oip(batch: MessageBatch, schema: DecodeSchema) -> DecodedBatch:
    """A topic bound to a model takes the Numba scanner for regular JSON messages
    (:mod:`.oip_scan`, :mod:`.oip_columns`), then orjson's batch path (:mod:`.oip_fast`)
    for what it passes on; the rest go message by message."""
    inputs = input_names(schema)

    def read(payload: bytes, headers: Headers, topic: str | None) -> Envelope:
        inference = read_body(payload, headers, inputs)
        return Envelope(inference, model=header_text(headers, "mlserver-model"))

    if schema.bound_model is None:
        return decode_inferences(batch, schema, read)
    ts = kafka_times(batch.kafka_ts)
    scanned, slow = scanned_oip_json(batch.payloads, ts, schema)
    if not slow:
        models = {schema.bound_model: ModelColumns.concat(scanned)} if scanned else {}
        return DecodedBatch(models, [])
    rest = _orjson_paths(batch.subset(slow, ts), schema, read)
    rejected = [replace(r, index=slow[r.index]) for r in rest.rejected]
    moved = {
        n: replace(c, msg_index=np.asarray(slow, np.int64)[c.msg_index])
        for n, c in rest.models.items()
    }
    merged: dict[str, ModelColumns] = {}
    if scanned:
        merged[schema.bound_model] = ModelColumns.concat(scanned)
    return DecodedBatch(merge_models(merged, moved), rejected)


def _orjson_paths(
    batch: MessageBatch,
    schema: DecodeSchema,
    read: Callable[[bytes, Headers, str | None], Envelope],
) -> DecodedBatch:
    """The messages the scanner passed on: orjson's batch path, then message by message."""
    bound = schema.bound_model
    if bound is None:
        raise ValueError("orjson's batch path reads topics bound to one model")
    ts = kafka_times(batch.kafka_ts)
    fast, slow = fast_oip_json(batch.payloads, ts, schema)
    if not slow:
        models = {bound: ModelColumns.concat(fast)} if fast else {}
        return DecodedBatch(models, [])
    rest = decode_inferences(batch.subset(slow, ts), schema, read)
    rejected = [replace(r, index=slow[r.index]) for r in rest.rejected]
    moved = {
        n: replace(c, msg_index=np.asarray(slow, np.int64)[c.msg_index])
        for n, c in rest.models.items()
    }
    merged: dict[str, ModelColumns] = {}
    if fast:
        merged[bound] = ModelColumns.concat(fast)
    return DecodedBatch(merge_models(merged, moved), rejected)
