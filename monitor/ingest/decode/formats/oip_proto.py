"""Open Inference Protocol v2 protobuf: ``inference.ModelInferRequest`` and
``ModelInferResponse`` (Seldon Core 2's topics, KServe's and Triton's gRPC bodies).

Values come typed in ``contents`` (``bool_contents`` … ``bytes_contents``) or as raw
little-endian bytes in ``raw_input_contents`` / ``raw_output_contents``, one entry per
tensor in order (``BYTES`` elements as a 4-byte little-endian length, then the bytes).

The two messages share field 5 (the tensors): a request is told apart by its raw input
contents (field 7), by the caller (a topic's ``.inputs``/``.outputs``, a CloudEvent's
type), or else by its tensors naming monitored features.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monitor.ingest.decode.formats.protowire import LENGTH, VARINT, fields, packed_varints
from monitor.ingest.decode.formats.tensors import (
    BYTES,
    Inference,
    Malformed,
    Tensor,
    check_datatype,
    check_shape,
    tensor_from_raw,
)
from monitor.ingest.decode.schema import Reason

__all__ = ["read_oip_protobuf"]

# InferTensorContents field -> how its packed values are read.
_FIXED: dict[int, np.dtype[np.floating[Any]]] = {6: np.dtype("<f4"), 7: np.dtype("<f8")}
_VARINT_CONTENTS = {1: "BOOL", 2: "INT32", 3: "INT64", 4: "UINT32", 5: "UINT64"}
_BYTES_CONTENTS = 8


@dataclass
class _TensorSpec:
    name: str = ""
    datatype: str = ""
    shape: list[int] = field(default_factory=list)
    contents: np.ndarray | list[bytes] | None = None


def read_oip_protobuf(
    payload: bytes | memoryview,
    is_request: bool | None = None,
    names_feature: Callable[[str], bool] | None = None,
) -> Inference:
    """A ``ModelInferRequest`` or ``ModelInferResponse``; ``is_request`` when the caller
    knows which, else ``names_feature`` tells whether a tensor name is a model input."""
    text: dict[int, str] = {}
    specs: list[_TensorSpec] = []
    raw: list[bytes] = []
    has_raw_inputs = False
    for number, wire, _, value in fields(memoryview(payload)):
        if number in (1, 2, 3) and wire == LENGTH:
            text[number] = _utf8(value, "model_name, model_version or id")
        elif number == 5 and wire == LENGTH:
            specs.append(_tensor_spec(value))
        elif number in (6, 7) and wire == LENGTH:
            has_raw_inputs = has_raw_inputs or number == 7
            raw.append(bytes(value))  # field 6 of a request (requested outputs) is dropped below
        elif wire not in (LENGTH, VARINT) and number <= 7:
            raise Malformed(Reason.bad_framing, f"field {number} has wire type {wire}")
    if is_request is None:
        is_request = has_raw_inputs or (
            names_feature is not None and any(names_feature(s.name) for s in specs)
        )
    if is_request and not has_raw_inputs:
        raw = []  # a request's field 6 names requested outputs, not contents
    tensors = [_tensor(s, raw, k) for k, s in enumerate(specs)]
    return Inference(
        is_request,
        tensors,
        id=text.get(3) or None,
        model=text.get(1) or None,
        version=text.get(2) or None,
    )


def _tensor_spec(data: memoryview) -> _TensorSpec:
    spec = _TensorSpec()
    for number, wire, varint, value in fields(data):
        if number == 1 and wire == LENGTH:
            spec.name = _utf8(value, "tensor name")
        elif number == 2 and wire == LENGTH:
            spec.datatype = _utf8(value, "tensor datatype")
        elif number == 3:
            if wire == LENGTH:
                spec.shape.extend(packed_varints(value).view(np.int64).tolist())
            elif wire == VARINT:
                spec.shape.append(varint - (1 << 64) if varint >= 1 << 63 else varint)
        elif number == 5 and wire == LENGTH:
            spec.contents = _contents(value)
    return spec


def _contents(data: memoryview) -> np.ndarray | list[bytes] | None:
    """The values of an InferTensorContents (the one field that is set)."""
    found: np.ndarray | list[bytes] | None = None
    strings: list[bytes] = []
    for number, wire, varint, value in fields(data):
        if number == _BYTES_CONTENTS and wire == LENGTH:
            strings.append(bytes(value))
            found = strings
        elif number in _FIXED and wire == LENGTH:
            dtype = _FIXED[number]
            if len(value) % dtype.itemsize:
                raise Malformed(Reason.truncated, "packed float contents cut off")
            found = _join(found, np.frombuffer(value, dtype=dtype))
        elif number in _VARINT_CONTENTS:
            values = packed_varints(value) if wire == LENGTH else np.array([varint], np.uint64)
            kind = _VARINT_CONTENTS[number]
            found = _join(found, values.view(np.int64) if kind.startswith("INT") else values)
    return found


def _join(found: np.ndarray | list[bytes] | None, values: np.ndarray) -> np.ndarray:
    if isinstance(found, np.ndarray):
        return np.concatenate([found, values])
    return values


def _tensor(spec: _TensorSpec, raw: list[bytes], k: int) -> Tensor:
    check_datatype(spec.name, spec.datatype)
    dims = check_shape(spec.name, spec.shape)
    if raw:
        if k >= len(raw):
            raise Malformed(Reason.truncated, f"no raw contents for tensor {spec.name!r}")
        return tensor_from_raw(spec.name, spec.datatype, dims, raw[k])
    contents = spec.contents
    if contents is None:
        contents = np.empty(0)
    if isinstance(contents, list):
        if spec.datatype != BYTES:
            raise Malformed(
                Reason.bad_datatype, f"tensor {spec.name!r}: bytes contents for {spec.datatype}"
            )
        try:
            values = np.array([b.decode("utf-8") for b in contents], dtype=object)
        except UnicodeDecodeError:
            raise Malformed(
                Reason.not_utf8, f"tensor {spec.name!r}: BYTES element is not UTF-8"
            ) from None
    else:
        if spec.datatype == BYTES and contents.size:
            raise Malformed(Reason.bad_datatype, f"tensor {spec.name!r}: numbers for BYTES")
        # Kept as read (int64, uint64, float): a narrower declared type must not wrap.
        values = contents.astype(np.bool_) if spec.datatype == "BOOL" else contents
    if values.size != int(np.prod(dims)):
        raise Malformed(
            Reason.bad_shape,
            f"tensor {spec.name!r}: {values.size} values do not fill shape {list(dims)}",
        )
    return Tensor(spec.name, spec.datatype, values.reshape(dims))


def _utf8(value: memoryview, what: str) -> str:
    try:
        return str(value, "utf-8")
    except UnicodeDecodeError:
        raise Malformed(Reason.not_utf8, f"{what} is not UTF-8") from None
