"""Just enough of the protobuf wire format to read OIP messages, with a specific reason
for every way bytes can be wrong (truncated fields, bad varints, unknown wire types).

Fields are walked one by one (a message has a handful); packed numeric fields, where
the values are, are read with numpy in one pass: ``np.frombuffer`` for fixed widths and
a vectorised varint decoder for the rest.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from monitor.ingest.decode.formats.tensors import Malformed
from monitor.ingest.decode.schema import Reason

__all__ = ["VARINT", "LENGTH", "fields", "packed_varints"]

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
_MAX_VARINT = 10


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    end = min(len(data), pos + _MAX_VARINT)
    while pos < end:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    if shift < 7 * _MAX_VARINT:  # the data ended inside the varint
        raise Malformed(Reason.truncated, "protobuf varint cut off")
    raise Malformed(Reason.bad_framing, "protobuf varint longer than 10 bytes")


_EMPTY = memoryview(b"")


def fields(data: memoryview) -> Iterator[tuple[int, int, int, memoryview]]:
    """``(field number, wire type, varint, bytes)`` of each field: the value of a varint
    field, or the bytes of a length-delimited or fixed-width one (the other is 0/empty)."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise Malformed(Reason.bad_framing, "protobuf field number 0")
        if wire == VARINT:
            value, pos = _varint(data, pos)
            yield number, wire, value, _EMPTY
            continue
        if wire == LENGTH:
            size, pos = _varint(data, pos)
        elif wire == FIXED64:
            size = 8
        elif wire == FIXED32:
            size = 4
        else:
            raise Malformed(Reason.bad_framing, f"protobuf wire type {wire} (field {number})")
        if pos + size > end:
            raise Malformed(Reason.truncated, f"protobuf field {number} cut off")
        yield number, wire, 0, data[pos : pos + size]
        pos += size


def packed_varints(blob: memoryview | bytes) -> np.ndarray:
    """The varints of a packed field as uint64 (int32/int64 negatives are their two's
    complement: view the result as int64)."""
    raw = np.frombuffer(blob, dtype=np.uint8)
    if raw.size == 0:
        return np.empty(0, np.uint64)
    if raw[-1] >= 0x80:
        raise Malformed(Reason.truncated, "packed varints cut off")
    ends = np.flatnonzero(raw < 0x80)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    if int(lengths.max()) > _MAX_VARINT:
        raise Malformed(Reason.bad_framing, "protobuf varint longer than 10 bytes")
    shifts = (np.arange(raw.size) - np.repeat(starts, lengths)) * 7
    parts = (raw & 0x7F).astype(np.uint64) << shifts.astype(np.uint64)
    values: np.ndarray = np.bitwise_or.reduceat(parts, starts)
    return values
