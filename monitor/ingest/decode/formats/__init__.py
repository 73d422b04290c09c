"""Payload formats: one batch of one topic's messages to per-model columns.

Each topic names its ``format`` (``kafka.topics[].format``); every format returns the
same :class:`~monitor.ingest.decode.columns.DecodedBatch` that
:func:`~monitor.ingest.decode.decode_batch` returns for driftmon's own events, columnar,
with a reason for every rejected message. Formats that log requests and responses apart
mark each row's half (``ModelColumns.halves``) and its pairing key, and the pipeline pairs
them before the windows (:mod:`monitor.pairing`).

Modules: ``batch`` (what a decoder is handed), ``tensors`` (an inference as tensors),
``rows`` (tensors onto a model's columns), ``inference`` (the batch loop of the tensor
formats), ``oip_json``, ``oip_proto`` + ``protowire``, ``oip``, ``v1`` + ``kserve``,
``framing`` + ``seldon``, ``flat``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from monitor.ingest.decode.batch import decode_batch, with_codes
from monitor.ingest.decode.columns import DecodedBatch
from monitor.ingest.decode.formats.batch import Headers, MessageBatch, header_text
from monitor.ingest.decode.formats.flat import decode_flat
from monitor.ingest.decode.formats.kserve import decode_kserve
from monitor.ingest.decode.formats.oip import decode_oip
from monitor.ingest.decode.formats.seldon import decode_seldon
from monitor.ingest.decode.schema import DecodeSchema

__all__ = ["FORMATS", "Headers", "MessageBatch", "decode_messages", "header_text"]


def _native(batch: MessageBatch, schema: DecodeSchema) -> DecodedBatch:
    return decode_batch(batch.payloads, batch.kafka_ts, schema)


def _coded(
    decode: Callable[[MessageBatch, DecodeSchema], DecodedBatch],
) -> Callable[[MessageBatch, DecodeSchema], DecodedBatch]:
    """Category codes for whole rows; halves keep their strings until they are paired
    (the pipeline codes them then)."""

    def run(batch: MessageBatch, schema: DecodeSchema) -> DecodedBatch:
        decoded = decode(batch, schema)
        whole = {n: c for n, c in decoded.models.items() if c.halves is None}
        if not whole:
            return decoded
        coded = with_codes(DecodedBatch(whole, []), schema).models
        return DecodedBatch(
            {n: coded.get(n, c) for n, c in decoded.models.items()}, decoded.rejected
        )

    return run


#: Format name -> decoder (``kafka.topics[].format`` chooses).
FORMATS: Mapping[str, Callable[[MessageBatch, DecodeSchema], DecodedBatch]] = {
    "driftmon": _native,
    "oip": _coded(decode_oip),
    "kserve": _coded(decode_kserve),
    "seldon": _coded(decode_seldon),
    "flat": decode_flat,
}


def decode_messages(batch: MessageBatch, schema: DecodeSchema) -> DecodedBatch:
    """Decode one batch of one topic in the topic's format."""
    return FORMATS[schema.format](batch, schema)
