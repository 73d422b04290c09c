"""Captured model-server logs as files, for ``driftmon replay`` and ``driftmon baseline``.

Two layouts (``--input-format``):

* ``lines`` (the default): one message value per line, for every JSON format (driftmon's
  events, ``flat`` rows, OIP JSON bodies, KServe's structured CloudEvents).
* ``delimited``: protobuf's length-delimited stream, each message a varint byte length
  followed by the value (what ``writeDelimitedTo`` / ``parseDelimitedFrom`` and
  ``google.protobuf.internal.encoder._VarintBytes`` + ``SerializeToString`` produce), for
  OIP protobuf bodies and Seldon values (Schema Registry framing included).

``--topic`` names the Kafka topic the messages were read from: its entry's ``format`` and
settings apply, and formats that read the topic name (Seldon's ``.inputs``/``.outputs``)
see it. Headers are not kept in files: KServe logs are captured in structured mode, and
Seldon's pairing falls back on the body id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from monitor.config import Config
from monitor.errors import ConfigProblem, UsageError
from monitor.ingest.decode import ModelColumns, Rejection
from monitor.ingest.decode.formats import MessageBatch, decode_messages
from monitor.ingest.pairing import Pairing
from monitor.pipeline import pairing_for, schema_for

__all__ = [
    "INPUT_FORMATS",
    "InputFormat",
    "decoded_chunks",
    "iter_messages",
    "pairing_report",
    "write_delimited",
]

InputFormat = Literal["lines", "delimited"]
INPUT_FORMATS: tuple[str, ...] = ("lines", "delimited")
_MAX_MESSAGE = 1 << 30
CHUNK = 20_000


def iter_messages(
    path: Path, input_format: InputFormat, chunk: int
) -> Iterator[tuple[Sequence[bytes], np.ndarray]]:
    """Chunks of message values with, per message, its line number (``lines``) or its
    1-based position in the stream (``delimited``), for rejections to name."""
    if input_format == "lines":
        from monitor.app.replay import iter_numbered_chunks  # replay imports this module

        yield from iter_numbered_chunks(path, chunk)
        return
    values: list[bytes] = []
    first = 1
    for value in _delimited(path):
        values.append(value)
        if len(values) >= chunk:
            yield values, np.arange(first, first + len(values), dtype=np.int64)
            first += len(values)
            values = []
    if values:
        yield values, np.arange(first, first + len(values), dtype=np.int64)


def _delimited(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    pos, end, count = 0, len(data), 0
    while pos < end:
        size = shift = 0
        while True:
            if pos >= end or shift > 63:
                raise UsageError(
                    ConfigProblem(
                        "--input",
                        f"{path}: message {count + 1} has a cut or invalid length prefix",
                        "--input-format delimited reads varint-length-prefixed messages; "
                        "use lines for one JSON message per line",
                    )
                )
            byte = data[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if size > _MAX_MESSAGE or pos + size > end:
            raise UsageError(
                ConfigProblem(
                    "--input",
                    f"{path}: message {count + 1} announces {size} bytes, {end - pos} are left",
                    "the file is cut short or not length-delimited",
                )
            )
        yield data[pos : pos + size]
        pos += size
        count += 1


def write_delimited(path: Path, values: list[bytes]) -> None:
    """Values as a length-delimited stream (the layout :func:`iter_messages` reads)."""
    out = bytearray()
    for value in values:
        size = len(value)
        while size >= 0x80:
            out.append((size & 0x7F) | 0x80)
            size >>= 7
        out.append(size)
        out += value
    path.write_bytes(bytes(out))


def pairing_report(pairings: Mapping[str, Pairing]) -> list[str]:
    """One line on the request/response pairing of a run (none without paired formats)."""
    if not pairings:
        return []
    paired = sum(p.paired_total for p in pairings.values())
    unpaired: dict[str, int] = {}
    for p in pairings.values():
        for (half, reason), n in p.unpaired.items():
            if n:
                unpaired[f"{half} {reason}"] = unpaired.get(f"{half} {reason}", 0) + n
    waiting = sum(sum(p.pending.values()) for p in pairings.values())
    left = ", ".join(f"{n} {what}" for what, n in sorted(unpaired.items())) or "none"
    return [f"pairing: {paired} pair(s); unpaired halves: {left}; {waiting} still waiting"]


def decoded_chunks(
    config: Config, model: str, path: Path, input_format: InputFormat, topic: str | None
) -> Iterator[tuple[ModelColumns | None, list[Rejection], np.ndarray]]:
    """Per chunk: the model's rows (halves paired, the file's last waiting requests
    released at its end), the rejections, and the messages' line numbers or positions."""
    schema = schema_for(config, topic, bound_model=model)
    pairing: Pairing | None = None
    like: ModelColumns | None = None
    for chunk, numbers in iter_messages(path, input_format, CHUNK):
        topics = None if topic is None else _repeat(topic, len(chunk))
        batch = MessageBatch(chunk, np.zeros(len(chunk)), None, topics)
        decoded = decode_messages(batch, schema)
        cols = decoded.models.get(model)
        if cols is not None and cols.halves is not None:
            pairing = pairing or pairing_for(config, model, topic)
            like = cols
            cols = pairing.pair(cols)
        yield cols, decoded.rejected, numbers
    if pairing is not None and like is not None:
        yield pairing.drain(like), [], np.empty(0, dtype=np.int64)


def _repeat(topic: str, n: int) -> Callable[[], list[str | None]]:
    return lambda: [topic] * n
