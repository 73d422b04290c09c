"""A Numba scanner for OIP v2 JSON bodies: each message's tensors found in its bytes and
their ``data`` written straight into one float64 buffer (strings as byte spans with a
hash), so a batch becomes columns without a Python object per value.

It reads the regular case a model server sends: an object with ``inputs`` or ``outputs``
(not both), tensors with a plain ``name``, a known ``datatype``, a shape ``[N]`` or
``[N,F]`` of integers with ``N, F >= 1`` and rectangular ``data`` (flat or nested) that
fills it, numbers the lexer converts exactly (integers below 2^53), ``true``/``false``,
or plain ASCII strings (and only strings) in ``BYTES``; ``id`` and ``model_version`` plain
strings or null. Anything else marks the message *slow* for the orjson paths, which read
it or reject it with its reason: escapes or non-ASCII bytes, tensor ``parameters`` (the
binary extension among them), repeated keys, ``null`` values, empty arrays, more than
``MAX_TENSORS`` tensors, invalid JSON. tests/unit/formats/test_oip_scan.py checks that it
reads exactly what the orjson paths read.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from monitor.ingest.decode.formats.tensors import BYTES, NUMERIC_DATATYPES
from monitor.ingest.decode.jsonlex import ASCII, literal, no_nrt, number, skip_value, string, ws

__all__ = ["DATATYPES", "MAX_TENSORS", "BodyScan", "scan_bodies", "warmup"]

#: Datatype codes: index in this tuple.
DATATYPES = (BYTES, *NUMERIC_DATATYPES)
_BYTES_CODE = 0
MAX_TENSORS = 64
_MAX_NEST = 8
_MAX_SKIP_DEPTH = 64
_TWO53 = float(2**53)
# value kinds seen in a tensor's data (bit flags)
K_STRING, K_BOOL, K_INT, K_FLOAT = 1, 2, 4, 8

_DT_BYTES = np.frombuffer("".join(DATATYPES).encode(), np.uint8).copy()
_DT_START = np.cumsum([0] + [len(d) for d in DATATYPES]).astype(np.int64)
_KEYS = ("id", "model_name", "model_version", "inputs", "outputs", "parameters")
_TENSOR_KEYS = ("name", "datatype", "shape", "data", "parameters")


def _table(words: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    joined = np.frombuffer("".join(words).encode(), np.uint8).copy()
    return joined, np.cumsum([0] + [len(w) for w in words]).astype(np.int64)


_K_BYTES, _K_START = _table(_KEYS)
_T_BYTES, _T_START = _table(_TENSOR_KEYS)


@dataclass(frozen=True)
class BodyScan:
    """Per message: ``status`` (0 read, 1 slow), ``is_request``, tensor count, ``id`` and
    ``model_version`` spans (-1 absent); per message and tensor: name span, datatype code,
    rows, width, value offset and value kinds; per value: its number, or for a string its
    span and FNV-1a hash."""

    status: np.ndarray
    is_request: np.ndarray
    n_tensors: np.ndarray
    text_span: np.ndarray  # messages x 4: id start, end, version start, end
    tensor: np.ndarray  # messages x MAX_TENSORS x 7
    values: np.ndarray
    str_start: np.ndarray
    str_end: np.ndarray
    str_hash: np.ndarray


# columns of BodyScan.tensor
T_NAME_S, T_NAME_E, T_DTYPE, T_ROWS, T_WIDTH, T_OFFSET, T_KINDS = range(7)


def scan_bodies(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, reuse: bool = False
) -> BodyScan:
    """Scan messages ``buf[starts[i]:ends[i]]``; a message whose values would overflow
    the buffers (denser than a byte in four) is slow. ``reuse``: the buffers are this
    thread's from the previous call (the caller drops the result before its next call):
    megabytes of fresh pages a batch cost the kernel their page faults."""
    n = len(starts)
    cap = len(buf) // 4 + 1024
    if reuse:
        tensor, values, str_start, str_end, str_hash = _buffers(n, cap)
    else:
        tensor = np.empty((n, MAX_TENSORS, 7), np.int64)
        values = np.empty(cap, np.float64)
        str_start, str_end, str_hash = (np.empty(cap, np.int64) for _ in range(3))
    # ``tensor`` is not zeroed: a message is read only when every field of each of its
    # n_tensors tensors was written
    status = np.zeros(n, np.int64)
    is_request = np.zeros(n, np.bool_)
    n_tensors = np.zeros(n, np.int64)
    text_span = np.full((n, 4), -1, np.int64)
    _scan(
        buf, starts, ends, _DT_BYTES, _DT_START, _K_BYTES, _K_START, _T_BYTES, _T_START,
        status, is_request, n_tensors, text_span, tensor, values, str_start, str_end,
        str_hash, np.empty(_MAX_SKIP_DEPTH, np.uint8), np.empty(_MAX_NEST, np.int64),
        np.empty(_MAX_NEST, np.int64),
    )  # fmt: skip
    return BodyScan(
        status, is_request, n_tensors, text_span, tensor, values, str_start, str_end, str_hash
    )


_SCRATCH = threading.local()


def _buffers(n: int, cap: int) -> tuple[np.ndarray, ...]:
    """This thread's tensor table (``n`` messages) and value buffers (``cap`` values),
    grown when too small."""
    held: tuple[np.ndarray, ...] | None = getattr(_SCRATCH, "buffers", None)
    if held is None or held[0].shape[0] < n or held[1].shape[0] < cap:
        rows = max(n, 0 if held is None else held[0].shape[0])
        size = max(cap, 0 if held is None else held[1].shape[0])
        held = (
            np.empty((rows, MAX_TENSORS, 7), np.int64),
            np.empty(size, np.float64),
            *(np.empty(size, np.int64) for _ in range(3)),
        )
        _SCRATCH.buffers = held
    return (held[0][:n], *(b[:cap] for b in held[1:]))


@no_nrt()
def _word(buf: np.ndarray, a: int, b: int, words: np.ndarray, wstart: np.ndarray) -> int:
    """Index of ``buf[a:b]`` among the words, or -1."""
    for k in range(len(wstart) - 1):
        s, e = wstart[k], wstart[k + 1]
        if e - s != b - a:
            continue
        same = True
        for t in range(e - s):
            if words[s + t] != buf[a + t]:
                same = False
                break
        if same:
            return k
    return -1


@no_nrt()
def _plain_string(buf: np.ndarray, pos: int, end: int) -> int:
    """A plain ASCII string at ``pos``: the index of its closing quote, or -1."""
    if pos >= end or buf[pos] != 34:
        return -1
    close, kind = string(buf, pos, end)
    if close < 0 or kind != ASCII:
        return -1
    return close


@no_nrt()
def _colon(buf: np.ndarray, pos: int, end: int) -> int:
    pos = ws(buf, pos, end)
    if pos >= end or buf[pos] != 58:
        return -1
    return ws(buf, pos + 1, end)


@no_nrt()
def _shape(buf: np.ndarray, pos: int, end: int, out: np.ndarray, at: int) -> int:
    """``[N]`` or ``[N, F]`` of integers >= 1 into ``out[at, T_ROWS/T_WIDTH]``: the index
    after it, or -1."""
    if pos >= end or buf[pos] != 91:
        return -1
    dims = 0
    out[at, T_WIDTH] = 1
    while True:
        pos = ws(buf, pos + 1, end)
        if pos >= end or buf[pos] < 49 or buf[pos] > 57:  # starts 1-9: no sign, no 0
            return -1
        stop, value = number(buf, pos, end)
        if stop < 0 or stop - pos > 9:
            return -1
        for t in range(pos, stop):
            if buf[t] < 48 or buf[t] > 57:
                return -1
        if dims >= 2:
            return -1
        out[at, T_ROWS if dims == 0 else T_WIDTH] = int(value)
        dims += 1
        pos = ws(buf, stop, end)
        if pos >= end:
            return -1
        if buf[pos] == 93:
            return pos + 1
        if buf[pos] != 44:
            return -1


@no_nrt()
def _data(
    buf: np.ndarray,
    pos: int,
    end: int,
    values: np.ndarray,
    str_start: np.ndarray,
    str_end: np.ndarray,
    str_hash: np.ndarray,
    used: int,
    dims: np.ndarray,
    counts: np.ndarray,
) -> tuple[int, int, int]:
    """A rectangular array of scalars at ``pos`` into the buffers from ``used``: (index
    after it or -1, values written, kinds)."""
    if pos >= end or buf[pos] != 91:
        return -1, 0, 0
    dims[:] = -1
    depth, leaf, n, kinds = 0, -1, 0, 0
    cap = len(values)
    while True:
        pos = ws(buf, pos, end)
        if pos >= end:
            return -1, 0, 0
        c = buf[pos]
        if c == 91:
            if depth >= len(dims) or (leaf >= 0 and depth >= leaf):
                return -1, 0, 0
            counts[depth] = 0
            depth += 1
            pos = ws(buf, pos + 1, end)
            if pos >= end or buf[pos] == 93:  # empty arrays: the orjson paths decide
                return -1, 0, 0
            continue
        if depth == 0 or (leaf >= 0 and leaf != depth) or used + n >= cap:
            return -1, 0, 0
        leaf = depth
        k = used + n
        if c == 34:
            close = _plain_string(buf, pos, end)
            if close < 0:
                return -1, 0, 0
            h = np.uint64(0xCBF29CE484222325)
            for t in range(pos + 1, close):
                h = (h ^ np.uint64(buf[t])) * np.uint64(0x100000001B3)
            str_start[k], str_end[k], str_hash[k] = pos + 1, close, np.int64(h)
            kinds |= K_STRING
            pos = close + 1
        elif c == 116 or c == 102:
            stop = literal(buf, pos, end)
            if stop < 0:
                return -1, 0, 0
            values[k] = 1.0 if c == 116 else 0.0
            kinds |= K_BOOL
            pos = stop
        else:
            stop, value = number(buf, pos, end)
            if stop < 0 or not np.isfinite(value):
                return -1, 0, 0
            # a value with a fraction was written with '.' or an exponent: only a whole
            # value needs its bytes looked at again
            integer = value == np.floor(value)
            for t in range(pos, stop if integer else pos):
                b = buf[t]
                if b == 46 or b == 101 or b == 69:
                    integer = False
                    break
            if integer:
                if abs(value) >= _TWO53:
                    return -1, 0, 0
                value = value + 0.0  # the integer -0 is 0
                kinds |= K_INT
            else:
                kinds |= K_FLOAT
            values[k] = value
            pos = stop
        n += 1
        while True:  # a value ended: close arrays or move to the next element
            if depth == 0:
                return pos, n, kinds
            pos = ws(buf, pos, end)
            if pos >= end:
                return -1, 0, 0
            c = buf[pos]
            if c == 93:
                length = counts[depth - 1] + 1
                if dims[depth - 1] < 0:
                    dims[depth - 1] = length
                elif dims[depth - 1] != length:  # ragged
                    return -1, 0, 0
                depth -= 1
                pos += 1
                continue
            if c != 44:
                return -1, 0, 0
            counts[depth - 1] += 1
            pos += 1
            break


@no_nrt()
def _tensors(
    buf: np.ndarray,
    pos: int,
    end: int,
    dt_bytes: np.ndarray,
    dt_start: np.ndarray,
    t_bytes: np.ndarray,
    t_start: np.ndarray,
    out: np.ndarray,
    values: np.ndarray,
    str_start: np.ndarray,
    str_end: np.ndarray,
    str_hash: np.ndarray,
    used: int,
    stack: np.ndarray,
    dims: np.ndarray,
    counts: np.ndarray,
) -> tuple[int, int, int]:
    """The array of tensor objects at ``pos``: (index after it or -1, tensors, values)."""
    if pos >= end or buf[pos] != 91:
        return -1, 0, 0
    pos = ws(buf, pos + 1, end)
    nt = 0
    while True:
        if pos >= end or buf[pos] != 123 or nt >= len(out):
            return -1, 0, 0
        seen = 0
        pos = ws(buf, pos + 1, end)
        while True:
            close = _plain_string(buf, pos, end)
            if close < 0:
                return -1, 0, 0
            k = _word(buf, pos + 1, close, t_bytes, t_start)
            pos = _colon(buf, close + 1, end)
            if pos < 0:
                return -1, 0, 0
            if k >= 0:
                if seen & (1 << k) or k == 4:  # repeated, or parameters
                    return -1, 0, 0
                seen |= 1 << k
            if k == 0 or k == 1:
                close = _plain_string(buf, pos, end)
                if close < 0:
                    return -1, 0, 0
                if k == 0:
                    out[nt, T_NAME_S], out[nt, T_NAME_E] = pos + 1, close
                else:
                    code = _word(buf, pos + 1, close, dt_bytes, dt_start)
                    if code < 0:
                        return -1, 0, 0
                    out[nt, T_DTYPE] = code
                pos = close + 1
            elif k == 2:
                pos = _shape(buf, pos, end, out, nt)
            elif k == 3:
                stop, n, kinds = _data(
                    buf, pos, end, values, str_start, str_end, str_hash, used, dims, counts
                )
                # the count rides above the kinds until the shape is known
                out[nt, T_OFFSET], out[nt, T_KINDS] = used, kinds | (n << 8)
                used += n
                pos = stop
            else:
                pos = skip_value(buf, pos, end, stack)
            if pos < 0:
                return -1, 0, 0
            pos = ws(buf, pos, end)
            if pos >= end:
                return -1, 0, 0
            if buf[pos] == 125:
                break
            if buf[pos] != 44:
                return -1, 0, 0
            pos = ws(buf, pos + 1, end)
        if seen != 15:
            return -1, 0, 0
        count = out[nt, T_KINDS] >> 8
        kinds = out[nt, T_KINDS] & 255
        out[nt, T_KINDS] = kinds
        if count != out[nt, T_ROWS] * out[nt, T_WIDTH]:
            return -1, 0, 0
        if out[nt, T_DTYPE] == _BYTES_CODE:
            if kinds != K_STRING:
                return -1, 0, 0
        elif kinds & K_STRING:
            return -1, 0, 0
        if nt > 0 and out[nt, T_ROWS] != out[0, T_ROWS]:
            return -1, 0, 0
        nt += 1
        pos = ws(buf, pos + 1, end)
        if pos >= end:
            return -1, 0, 0
        if buf[pos] == 93:
            return pos + 1, nt, used
        if buf[pos] != 44:
            return -1, 0, 0
        pos = ws(buf, pos + 1, end)


@no_nrt(nogil=True)
def _scan(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    dt_bytes: np.ndarray,
    dt_start: np.ndarray,
    k_bytes: np.ndarray,
    k_start: np.ndarray,
    t_bytes: np.ndarray,
    t_start: np.ndarray,
    status: np.ndarray,
    is_request: np.ndarray,
    n_tensors: np.ndarray,
    text_span: np.ndarray,
    tensor: np.ndarray,
    values: np.ndarray,
    str_start: np.ndarray,
    str_end: np.ndarray,
    str_hash: np.ndarray,
    stack: np.ndarray,
    dims: np.ndarray,
    counts: np.ndarray,
) -> None:
    used = 0
    for i in range(len(starts)):
        end = ends[i]
        pos = ws(buf, starts[i], end)
        seen = 0
        ok = pos < end and buf[pos] == 123
        if ok:
            pos = ws(buf, pos + 1, end)
        while ok:
            close = _plain_string(buf, pos, end)
            if close < 0:
                ok = False
                break
            k = _word(buf, pos + 1, close, k_bytes, k_start)
            pos = _colon(buf, close + 1, end)
            if pos < 0 or (k >= 0 and seen & (1 << k)):
                ok = False
                break
            if k >= 0:
                seen |= 1 << k
            if k == 0 or k == 2:  # id, model_version: a plain string or null
                if pos < end and buf[pos] == 110:
                    pos = literal(buf, pos, end)
                else:
                    close = _plain_string(buf, pos, end)
                    if close >= 0:
                        text_span[i, 2 * (k // 2)] = pos + 1
                        text_span[i, 2 * (k // 2) + 1] = close
                    pos = close + 1 if close >= 0 else -1
            elif k == 3 or k == 4:
                pos, nt, after = _tensors(
                    buf, pos, end, dt_bytes, dt_start, t_bytes, t_start, tensor[i], values,
                    str_start, str_end, str_hash, used, stack, dims, counts,
                )  # fmt: skip
                if pos >= 0:
                    n_tensors[i] = nt
                    used = after
            else:
                pos = skip_value(buf, pos, end, stack)
            if pos < 0:
                ok = False
                break
            pos = ws(buf, pos, end)
            if pos >= end:
                ok = False
            elif buf[pos] == 125:
                pos += 1
                break
            elif buf[pos] != 44:
                ok = False
            else:
                pos = ws(buf, pos + 1, end)
        inputs, outputs = (seen >> 3) & 1, (seen >> 4) & 1
        if not ok or ws(buf, pos, end) != end or inputs + outputs != 1 or n_tensors[i] == 0:
            status[i] = 1
        is_request[i] = inputs == 1


def warmup() -> None:
    """Compile (or load from the cache) the kernel on a request and a response."""
    messages = [
        b'{"id": "r1", "inputs": [{"name": "x", "shape": [2, 1], "datatype": "FP64", '
        b'"data": [[0.5], [1]]}, {"name": "c", "shape": [2], "datatype": "BYTES", '
        b'"data": ["a", "b"], "u": {}}], "model_version": null}',
        b'{"outputs": [{"name": "p", "datatype": "BOOL", "shape": [1], "data": [true]}]}',
    ]
    lengths = np.array([len(m) for m in messages], dtype=np.int64)
    ends = np.cumsum(lengths)
    scan_bodies(np.frombuffer(b"".join(messages), np.uint8), ends - lengths, ends)
