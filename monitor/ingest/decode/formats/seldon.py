"""``seldon``: Seldon Core 2's model topics, ``seldon.<namespace>.model.<model>.inputs``
and ``.outputs`` (subscribe with a pattern such as ``^seldon\\.prod\\.model\\..*``).

The model and the half come from the topic name (a topic bound to a model keeps that
model); values are OIP protobuf (``ModelInferRequest`` on ``.inputs``,
``ModelInferResponse`` on ``.outputs``), or JSON, with any Confluent Schema Registry
framing stripped first (:mod:`.framing`). Inputs and outputs pair on the ``x-request-id``
header Seldon sets on both (else the body id). The errors topic
(``seldon.<namespace>.errors.errors``) and pipeline topics carry no model traffic and are
skipped without a rejection.
"""

from __future__ import annotations

import re

from monitor.ingest.decode.columns import DecodedBatch
from monitor.ingest.decode.formats.batch import Headers, MessageBatch, header_text
from monitor.ingest.decode.formats.framing import strip_framing
from monitor.ingest.decode.formats.inference import Envelope, decode_inferences
from monitor.ingest.decode.formats.oip import input_names
from monitor.ingest.decode.formats.oip_json import read_oip_json
from monitor.ingest.decode.formats.oip_proto import read_oip_protobuf
from monitor.ingest.decode.formats.tensors import Malformed
from monitor.ingest.decode.schema import DecodeSchema, Reason

__all__ = ["decode_seldon", "model_topic"]

_MODEL_TOPIC = re.compile(r"^seldon\.[^.]+\.model\.(.+)\.(inputs|outputs)$")
_SKIPPED = re.compile(r"^seldon\.[^.]+\.(errors\.errors|pipeline\..+)$")


def model_topic(topic: str) -> tuple[str, bool] | None:
    """``(model, is_request)`` of a Seldon model topic name, else ``None``."""
    match = _MODEL_TOPIC.match(topic)
    if match is None:
        return None
    return match.group(1), match.group(2) == "inputs"


def decode_seldon(batch: MessageBatch, schema: DecodeSchema) -> DecodedBatch:
    inputs = input_names(schema)

    def read(payload: bytes, headers: Headers, topic: str | None) -> Envelope | None:
        if topic is not None and _SKIPPED.match(topic):
            return None
        found = model_topic(topic or "")
        if found is None:
            raise Malformed(
                Reason.bad_framing,
                f"topic {str(topic)[:80]!r} is not a Seldon model topic "
                "(seldon.<namespace>.model.<model>.inputs or .outputs)",
            )
        model, is_request = found
        body = strip_framing(payload)
        if bytes(body[:64]).lstrip(b" \t\r\n")[:1] == b"{":
            inference = read_oip_json(bytes(body))
            if inference.is_request != is_request:
                raise Malformed(
                    Reason.bad_framing, f"a {'response' if is_request else 'request'} on {topic}"
                )
        else:
            inference = read_oip_protobuf(body, is_request, inputs)
        return Envelope(
            inference,
            model=schema.bound_model or model,
            pair_key=header_text(headers, "x-request-id"),
        )

    return decode_inferences(batch, schema, read)
