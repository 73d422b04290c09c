"""Open Inference Protocol v2 JSON bodies (KServe v2, MLServer, Triton), and Triton's
binary tensor extension (a JSON header followed by each tensor's raw bytes, sized by
``parameters.binary_data_size``), read when the header's length is known.

Request: ``{"id": "42", "inputs": [{"name": "age", "shape": [2, 1], "datatype": "INT64",
"data": [41, 29]}]}``; response: ``{"model_name": "fraud", "id": "42", "outputs": [...]}``.
"""

from __future__ import annotations

from typing import Any

import orjson

from monitor.ingest.decode.formats.tensors import (
    Inference,
    Malformed,
    Tensor,
    tensor_from_data,
    tensor_from_raw,
)
from monitor.ingest.decode.schema import Reason
from monitor.ingest.decode.values import type_name

__all__ = ["inference_from_json", "read_oip_json"]


def read_oip_json(payload: bytes, header_length: int | None = None) -> Inference:
    """A request or response body; with ``header_length`` the bytes after the JSON header
    are the binary tensors of Triton's extension."""
    header, binary = payload, b""
    if header_length is not None:
        if not 0 < header_length <= len(payload):
            raise Malformed(
                Reason.truncated,
                f"JSON header of {header_length} bytes in a body of {len(payload)}",
            )
        header, binary = payload[:header_length], payload[header_length:]
    try:
        body = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        if header_length is None and b'"binary_data_size"' in header[:65536]:
            raise Malformed(
                Reason.bad_framing,
                "a Triton binary-extension body without its JSON header length: keep the "
                "inference-header-content-length header on the message",
            ) from None
        reason = Reason.not_utf8 if "UTF-8" in str(exc) else Reason.not_json
        raise Malformed(reason, str(exc)[:120]) from None
    return inference_from_json(body, binary)


def inference_from_json(body: Any, binary: bytes = b"") -> Inference:
    """A parsed v2 body (a CloudEvent's ``data`` too) as an :class:`Inference`."""
    if type(body) is not dict:
        raise Malformed(Reason.not_object, f"body is {type_name(body)}")
    is_request = "inputs" in body
    if not is_request and "outputs" not in body:
        raise Malformed(Reason.no_payload, "neither inputs nor outputs")
    specs = body["inputs" if is_request else "outputs"]
    if type(specs) is not list:
        raise Malformed(
            Reason.wrong_type, f"{'inputs' if is_request else 'outputs'} is not an array"
        )
    tensors, used = [], 0
    for spec in specs:
        tensor, size = _tensor(spec, binary, used)
        tensors.append(tensor)
        used += size
    if used != len(binary):
        raise Malformed(Reason.bad_shape, f"{len(binary) - used} binary bytes belong to no tensor")
    return Inference(
        is_request,
        tensors,
        id=_text(body.get("id")),
        model=_text(body.get("model_name")),
        version=_text(body.get("model_version")),
    )


def _tensor(spec: Any, binary: bytes, used: int) -> tuple[Tensor, int]:
    if type(spec) is not dict:
        raise Malformed(Reason.wrong_type, f"tensor is {type_name(spec)}, not an object")
    name, datatype, shape = spec.get("name"), spec.get("datatype"), spec.get("shape")
    if type(name) is not str or type(datatype) is not str or type(shape) is not list:
        raise Malformed(Reason.wrong_type, "tensor needs a string name and datatype and a shape")
    params = spec.get("parameters")
    size = params.get("binary_data_size") if type(params) is dict else None
    if size is None:
        return tensor_from_data(name, datatype, shape, spec.get("data")), 0
    if type(size) is not int or size < 0:
        raise Malformed(Reason.wrong_type, f"tensor {name!r}: binary_data_size is not a size")
    if used + size > len(binary):
        raise Malformed(
            Reason.truncated, f"tensor {name!r}: {size} binary bytes, {len(binary) - used} left"
        )
    return tensor_from_raw(name, datatype, shape, binary[used : used + size]), size


def _text(value: Any) -> str | None:
    if type(value) is str:
        return value or None
    return str(value) if type(value) is int else None
