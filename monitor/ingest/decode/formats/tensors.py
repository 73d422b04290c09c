"""One inference as the Open Inference Protocol sees it, whatever carried it.

Every model-server format reads a message into an :class:`Inference` (a request's input
tensors or a response's output tensors) whose values are numpy arrays, one per tensor;
:mod:`~monitor.ingest.decode.formats.rows` maps them onto a model's columns. A payload that
cannot be read raises :class:`Malformed`, which the batch loop turns into a rejection of
that message alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import prod
from typing import Any

import numpy as np

from monitor.ingest.decode.schema import Reason

__all__ = [
    "BYTES",
    "NUMERIC_DATATYPES",
    "Inference",
    "Malformed",
    "Tensor",
    "check_datatype",
    "check_shape",
    "tensor_from_data",
    "tensor_from_raw",
]

BYTES = "BYTES"
#: The OIP numeric datatypes and their little-endian numpy types (raw contents).
NUMERIC_DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
#: Longest tensor shape read (rows x columns; more dimensions are not tabular).
_MAX_DIMS = 2


class Malformed(Exception):
    """A payload that cannot be read: rejected with ``reason`` and a short ``detail``."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Tensor:
    """A named tensor: ``values`` has ``shape`` (numbers, or ``str`` objects for BYTES)."""

    name: str
    datatype: str
    values: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.values.shape[0])

    @property
    def width(self) -> int:
        return 1 if self.values.ndim == 1 else int(self.values.shape[1])


@dataclass(frozen=True, slots=True)
class Inference:
    """A request (``inputs``) or a response (``outputs``) of one inference call."""

    is_request: bool
    tensors: Sequence[Tensor]
    id: str | None = None
    model: str | None = None
    version: str | None = None


def check_shape(name: str, shape: Sequence[Any]) -> tuple[int, ...]:
    """A tensor shape as ints: one or two non-negative dimensions."""
    if not 1 <= len(shape) <= _MAX_DIMS or not all(type(d) is int and d >= 0 for d in shape):
        raise Malformed(
            Reason.bad_shape,
            f"tensor {name!r}: shape {list(shape)[:4]} is not [rows] or [rows, columns]",
        )
    return tuple(shape)


def check_datatype(name: str, datatype: str) -> None:
    if datatype != BYTES and datatype not in NUMERIC_DATATYPES:
        raise Malformed(Reason.bad_datatype, f"tensor {name!r}: unknown datatype {datatype[:16]!r}")


def tensor_from_data(name: str, datatype: str, shape: Sequence[Any], data: Any) -> Tensor:
    """A tensor from JSON ``data`` (flat row-major or nested), checked against its
    datatype and shape with one numpy conversion, never a Python step per value."""
    check_datatype(name, datatype)
    dims = check_shape(name, shape)
    if type(data) is not list:
        raise Malformed(Reason.bad_shape, f"tensor {name!r}: data is not an array")
    try:
        if datatype == BYTES:
            values = np.asarray(data, dtype=object)
            flat = values.ravel().tolist()
            if not set(map(type, flat)) <= {str}:
                raise Malformed(Reason.bad_datatype, f"tensor {name!r}: BYTES data is not strings")
        else:
            values = np.asarray(data)
            if values.dtype.kind not in "biuf":
                raise Malformed(
                    Reason.bad_datatype, f"tensor {name!r}: {datatype} data is not all numbers"
                )
    except ValueError:
        raise Malformed(Reason.bad_shape, f"tensor {name!r}: nested data is ragged") from None
    if values.size != prod(dims):
        raise Malformed(
            Reason.bad_shape,
            f"tensor {name!r}: {values.size} values do not fill shape {list(dims)}",
        )
    return Tensor(name, datatype, values.reshape(dims))


def tensor_from_raw(name: str, datatype: str, shape: Sequence[Any], raw: bytes) -> Tensor:
    """A tensor from raw little-endian bytes (protobuf ``raw_*_contents``, Triton's binary
    extension); ``BYTES`` elements are a 4-byte little-endian length, then the bytes."""
    check_datatype(name, datatype)
    dims = check_shape(name, shape)
    count = prod(dims)
    if datatype == BYTES:
        return Tensor(
            name, datatype, np.array(_length_prefixed(name, raw, count), object).reshape(dims)
        )
    dtype = NUMERIC_DATATYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        reason = Reason.truncated if len(raw) < count * dtype.itemsize else Reason.bad_shape
        raise Malformed(
            reason, f"tensor {name!r}: {len(raw)} raw bytes for {count} {datatype} values"
        )
    return Tensor(name, datatype, np.frombuffer(raw, dtype=dtype).reshape(dims))


def _length_prefixed(name: str, raw: bytes, count: int) -> list[str]:
    out: list[str] = []
    view = memoryview(raw)
    pos, end = 0, len(raw)
    for _ in range(count):
        if pos + 4 > end:
            raise Malformed(Reason.truncated, f"tensor {name!r}: BYTES element {len(out)} cut off")
        size = int.from_bytes(view[pos : pos + 4], "little")
        pos += 4
        if pos + size > end:
            raise Malformed(Reason.truncated, f"tensor {name!r}: BYTES element {len(out)} cut off")
        try:
            out.append(str(view[pos : pos + size], "utf-8"))
        except UnicodeDecodeError:
            raise Malformed(
                Reason.not_utf8, f"tensor {name!r}: BYTES element is not UTF-8"
            ) from None
        pos += size
    if pos != end:
        raise Malformed(
            Reason.bad_shape, f"tensor {name!r}: {end - pos} bytes after {count} elements"
        )
    return out
