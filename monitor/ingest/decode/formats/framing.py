"""Confluent Schema Registry framing, stripped before the payload is read.

Magic byte 0, a 4-byte big-endian schema id, then for protobuf the message-index array:
a zigzag varint count and that many zigzag varints (a single 0 byte stands for ``[0]``).
Magic byte 1 is followed by a 16-byte schema GUID instead of the id. Valid protobuf never
starts with byte 0 or 1 (field number 0), and JSON starts with ``{``, so a framed value
is told apart from a bare one by its first byte; a schema id in the ``__value_schema_id``
header leaves the value bare.
"""

from __future__ import annotations

from monitor.ingest.decode.formats.tensors import Malformed
from monitor.ingest.decode.schema import Reason

__all__ = ["strip_framing"]

_ID_BYTES = {0: 4, 1: 16}
_MAX_INDEXES = 64


def _zigzag_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for _ in range(10):
        if pos >= len(data):
            raise Malformed(Reason.truncated, "Schema Registry message index cut off")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (value >> 1) ^ -(value & 1), pos
        shift += 7
    raise Malformed(Reason.bad_framing, "Schema Registry message index varint too long")


def strip_framing(payload: bytes, protobuf: bool = True) -> bytes | memoryview:
    """The message bytes without a Schema Registry prefix (unchanged when it has none)."""
    if not payload or payload[0] not in _ID_BYTES:
        return payload
    pos = 1 + _ID_BYTES[payload[0]]
    if len(payload) < pos:
        raise Malformed(Reason.truncated, "Schema Registry prefix cut off")
    if protobuf and payload[pos : pos + 1] not in (b"{", b"["):
        count, pos = _zigzag_varint(payload, pos)
        if not 0 <= count <= _MAX_INDEXES:
            raise Malformed(Reason.bad_framing, f"Schema Registry message index count {count}")
        for _ in range(count):
            _, pos = _zigzag_varint(payload, pos)
    return memoryview(payload)[pos:]
