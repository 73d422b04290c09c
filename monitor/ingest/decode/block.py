"""Messages as ranges of one buffer: a block of a file, never split into ``bytes`` objects.

``driftmon replay`` and ``baseline`` read a file in large blocks. A :class:`MessageBlock`
hands the columnar scanner the block itself with the start and end offset of each
message, so a batch costs no Python object per line; the object paths, and anything that
indexes the block, get ``bytes`` sliced out only for the messages they read. It is a
``Sequence[bytes]``, so every decode entry point takes it where it takes a list.

:func:`split_lines` finds the lines of a block with numpy: newlines with one comparison,
a trailing CR stripped, blank and whitespace-only lines left out.

Example::

    >>> lines = split_lines(b'{"a": 1}\\r\\n\\n  \\n{"b": 2}\\n{"c"')
    >>> list(lines.block), lines.where.tolist(), lines.found, lines.complete
    ([b'{"a": 1}', b'{"b": 2}'], [0, 3], 4, 23)
    >>> lines.block[1], list(lines.block[1:])
    (b'{"b": 2}', [b'{"b": 2}'])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, overload

import numpy as np

__all__ = ["Lines", "MessageBlock", "as_list", "join_payloads", "split_lines"]

_NEWLINE = 10
_CR = 13
# The bytes ``bytes.isspace`` accepts.
_IS_SPACE = np.zeros(256, dtype=np.bool_)
_IS_SPACE[[9, 10, 11, 12, 13, 32]] = True


class MessageBlock(Sequence[bytes]):
    """Message ``i`` is ``data[starts[i]:ends[i]]`` (int64 offsets into ``data``)."""

    __slots__ = ("buf", "data", "ends", "starts")

    def __init__(self, data: bytes, starts: np.ndarray, ends: np.ndarray) -> None:
        self.data = data
        self.buf = np.frombuffer(data, dtype=np.uint8)
        self.starts = starts
        self.ends = ends

    def __len__(self) -> int:
        return len(self.starts)

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> MessageBlock: ...

    def __getitem__(self, index: int | slice) -> bytes | MessageBlock:
        if isinstance(index, slice):
            return MessageBlock(self.data, self.starts[index], self.ends[index])
        return self.data[self.starts[index] : self.ends[index]]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.tolist())

    def tolist(self) -> list[bytes]:
        """Every message as ``bytes`` (what the object paths read)."""
        slices = map(slice, self.starts.tolist(), self.ends.tolist())
        return list(map(self.data.__getitem__, slices))


def join_payloads(payloads: list[bytes | None]) -> Sequence[bytes | None]:
    """The payloads end to end in one :class:`MessageBlock`, which the scanner reads in
    place: the join runs on the caller's thread (the daemon's loop thread, off the
    decode worker's path). The list itself when a message has no value (``None`` keeps
    its own meaning on the object paths).
    """
    try:
        lengths = np.fromiter(map(len, payloads), dtype=np.int64, count=len(payloads))  # type: ignore[arg-type]
        data = b"".join(payloads)  # type: ignore[arg-type]
    except TypeError:
        return payloads
    ends = np.cumsum(lengths)
    return MessageBlock(data, ends - lengths, ends)


def as_list(payloads: Sequence[bytes | None]) -> Sequence[bytes | None]:
    """``payloads`` as a list when it is a block (the object paths slice and iterate it)."""
    return payloads.tolist() if isinstance(payloads, MessageBlock) else payloads


class Lines(NamedTuple):
    """What :func:`split_lines` found."""

    #: The non-blank lines.
    block: MessageBlock
    #: The index of each among all the lines found (blank ones counted).
    where: np.ndarray
    #: How many lines were found, blank ones included.
    found: int
    #: Where the unfinished last line starts (the end, when there is none).
    complete: int


def split_lines(data: bytes, first: int = 0, final: bool = False) -> Lines:
    """The lines of ``data[first:]``.

    Lines end at a newline; ``final`` makes what follows the last newline a line too (a
    file without a trailing newline). A trailing CR is not part of a line; blank and
    whitespace-only lines are left out, as they carry no event.
    """
    end = len(data)
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = first + np.flatnonzero(buf[first:end] == _NEWLINE)
    complete = int(newlines[-1]) + 1 if newlines.size else first
    if final and complete < end:
        newlines = np.append(newlines, end)
        complete = end
    ends = newlines.astype(np.int64, copy=False)
    starts = np.empty_like(ends)
    if ends.size:
        starts[0] = first
        starts[1:] = ends[:-1] + 1
    while True:  # CRs before the newline (usually none, or one)
        cr = np.flatnonzero(ends > starts)
        cr = cr[buf[ends[cr] - 1] == _CR]
        if cr.size == 0:
            break
        ends[cr] -= 1
    keep = ends > starts
    # Whitespace-only lines: rare, so found from their first byte and checked one by one.
    filled = np.flatnonzero(keep)
    for i in filled[_IS_SPACE[buf[starts[filled]]]].tolist():
        keep[i] = not data[starts[i] : ends[i]].isspace()
    count = len(starts)
    if keep.all():
        return Lines(MessageBlock(data, starts, ends), np.arange(count), count, complete)
    index = np.flatnonzero(keep)
    return Lines(MessageBlock(data, starts[index], ends[index]), index, count, complete)
