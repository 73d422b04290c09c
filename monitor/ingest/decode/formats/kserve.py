"""``kserve``: KServe's InferenceLogger CloudEvents, as the Knative Kafka broker or sink
writes them.

Binary mode (the broker's default): the attributes are ``ce_*`` headers and the value is
the HTTP body. Structured mode: the value is one ``application/cloudevents+json`` object
with the body under ``data`` (or ``data_base64``). The request or response comes from
``ce_type`` (``org.kubeflow.serving.inference.request`` / ``.response``), the model from
``ce_inferenceservicename`` (unless the topic is bound to one), the event time from
``ce_time``, and the two halves pair on ``ce_id``, never on a body id (v1 responses carry
none). Bodies are v1 (:mod:`.v1`) or v2 (:mod:`.oip_json`; protobuf too).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson

from monitor.ingest.decode.columns import DecodedBatch
from monitor.ingest.decode.formats.batch import Headers, MessageBatch, header_text
from monitor.ingest.decode.formats.inference import Envelope, decode_inferences, model_of
from monitor.ingest.decode.formats.oip import input_names, read_body
from monitor.ingest.decode.formats.oip_json import inference_from_json
from monitor.ingest.decode.formats.tensors import Inference, Malformed
from monitor.ingest.decode.formats.v1 import inference_from_v1
from monitor.ingest.decode.schema import DecodeSchema, Reason
from monitor.ingest.decode.values import type_name

__all__ = ["REQUEST_TYPE", "RESPONSE_TYPE", "decode_kserve"]

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
_HALF = {REQUEST_TYPE: True, RESPONSE_TYPE: False}


def decode_kserve(batch: MessageBatch, schema: DecodeSchema) -> DecodedBatch:
    inputs = input_names(schema)

    def read(payload: bytes, headers: Headers, topic: str | None) -> Envelope:
        if header_text(headers, "ce_specversion") is not None:
            attrs: Mapping[str, Any] = _binary_attributes(headers)
            body: Any = None
            raw: bytes | None = payload
        else:
            attrs, body, raw = _structured(payload)
        ce_type, ce_id = attrs.get("type"), attrs.get("id")
        if ce_type not in _HALF:
            raise Malformed(
                Reason.bad_framing,
                f"CloudEvent type {str(ce_type)[:60]!r} is not an inference request or response",
            )
        if type(ce_id) is not str or not ce_id:
            raise Malformed(Reason.bad_framing, "CloudEvent without an id")
        model = model_of(_text(attrs.get("inferenceservicename")), schema)
        is_request = _HALF[ce_type]
        inference = _inference(raw, body, headers, is_request, schema, model, inputs)
        return Envelope(inference, model=model, pair_key=ce_id, ts=_time(attrs.get("time")))

    return decode_inferences(batch, schema, read)


def _binary_attributes(headers: Headers) -> dict[str, str]:
    pairs = headers.items() if isinstance(headers, dict) else headers or ()
    out = {}
    for key, value in pairs:
        if key.lower().startswith("ce_") and value is not None:
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            out[key[3:].lower()] = text
    return out


def _structured(payload: bytes) -> tuple[dict[str, Any], Any, bytes | None]:
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise Malformed(Reason.not_json, f"structured CloudEvent: {str(exc)[:100]}") from None
    if type(event) is not dict or "specversion" not in event:
        raise Malformed(
            Reason.bad_framing, "neither ce_* headers nor a structured CloudEvent (specversion)"
        )
    if "data_base64" in event:
        try:
            return event, None, base64.b64decode(event["data_base64"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise Malformed(Reason.bad_framing, "data_base64 is not base64") from None
    return event, event.get("data"), None


def _inference(
    raw: bytes | None,
    body: Any,
    headers: Headers,
    is_request: bool,
    schema: DecodeSchema,
    model: str,
    inputs: Callable[[str], bool],
) -> Inference:
    if raw is not None:
        if raw[:64].lstrip(b" \t\r\n")[:1] != b"{":
            return read_body(raw, headers, inputs, is_request)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise Malformed(Reason.not_json, str(exc)[:120]) from None
    if type(body) is not dict:
        raise Malformed(Reason.not_object, f"body is {type_name(body)}")
    if "instances" in body or "predictions" in body:
        inference = inference_from_v1(body, schema.models[model], schema.tensors)
    else:
        inference = inference_from_json(body)
    if inference.is_request != is_request:
        raise Malformed(Reason.bad_framing, "ce_type and body disagree on request or response")
    return inference


def _time(value: Any) -> float | None:
    if type(value) is not str or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    # RFC 3339 times carry an offset; a local time would depend on this machine's zone
    return None if moment.tzinfo is None else moment.timestamp()


def _text(value: Any) -> str | None:
    return value if type(value) is str and value else None
