"""JSON lexing for the Numba kernels: whitespace, strings, literals, numbers, skipping
a whole value and comparing runs of bytes a word at a time, shared by the event scanner
(:mod:`~monitor.ingest.decode.scanner` and its template fast path) and the OIP body
scanner (:mod:`~monitor.ingest.decode.formats.oip_scan`).

Numbers are converted with Clinger's fast path when it is exact (up to 2^53 and powers of
ten up to 10^22), else in double-double arithmetic with a check that the result is not
within a hair of a rounding boundary; a number it cannot convert exactly is refused (-1),
so a caller passes the message on. Every value it gives equals ``float()`` of the text
(tests/unit/test_jsonscan.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = [
    "ASCII",
    "ESCAPED",
    "NON_ASCII",
    "key",
    "literal",
    "no_nrt",
    "number",
    "same_bytes",
    "skip_value",
    "string",
    "ws",
]

_F = TypeVar("_F", bound=Callable[..., object])

_POW10 = np.array([10.0**k for k in range(23)])
# 10**k as a double-double (hi + lo) beyond the exactly representable 10**22.
_MAX_E10 = 40
_POW10_HI = np.array([float(10**k) for k in range(_MAX_E10 + 1)])
_POW10_LO = np.array([float(10**k - int(float(10**k))) for k in range(_MAX_E10 + 1)])
_TWO53 = 2**53
_SPLITTER = 134217729.0  # 2^27 + 1, Dekker's split
_AMBIGUOUS = 2.0**-30  # relative to half an ulp: closer to a boundary than this is slow


def no_nrt(nogil: bool = False) -> Callable[[_F], _F]:
    """``njit(cache=True)`` without Numba's reference counting, for the message kernels
    (the scanner's and :mod:`~monitor.ingest.decode.formats.oip_scan`'s): they
    allocate nothing (scratch arrays are passed in), and with it every call of
    the scanner's ``_scan_one`` took and released a reference to each of its ~20 array arguments,
    some 40 atomic operations an event, a fifth of the scan. (Numba's ``_nrt`` option;
    an allocation in these kernels would not compile.)"""
    options: dict[str, Any] = {"cache": True, "nogil": nogil, "_nrt": False}
    return cast("Callable[[_F], _F]", njit(**options))


@njit(cache=True, inline="always")
def ws(buf: np.ndarray, pos: int, end: int) -> int:
    while pos < end:
        c = buf[pos]
        if c != 32 and c != 10 and c != 13 and c != 9:
            return pos
        pos += 1
    return pos


@njit(cache=True, inline="always")
def _hex(c: int) -> bool:
    return (48 <= c <= 57) or (65 <= c <= 70) or (97 <= c <= 102)


#: What :func:`string` saw: plain ASCII, non-ASCII bytes (UTF-8 not checked), escapes.
ASCII, NON_ASCII, ESCAPED = 0, 1, 2


@njit(cache=True, inline="always")
def string(buf: np.ndarray, pos: int, end: int) -> tuple[int, int]:
    """``buf[pos]`` is an opening quote: the index of the closing one (-1 if the string is
    invalid JSON) and its kind (``ASCII``, ``NON_ASCII``, ``ESCAPED``)."""
    kind = ASCII
    pos += 1
    while pos < end:
        c = buf[pos]
        if c == 34:
            return pos, kind
        if c < 32:
            return -1, kind
        if c == 92:
            kind = ESCAPED
            pos += 1
            if pos >= end:
                return -1, kind
            e = buf[pos]
            if e == 117:  # \uXXXX
                if pos + 4 >= end:
                    return -1, kind
                for t in range(1, 5):
                    if not _hex(buf[pos + t]):
                        return -1, kind
                pos += 4
            elif not (e == 34 or e == 92 or e == 47 or e == 98 or e == 102 or e == 110):
                if e != 114 and e != 116:
                    return -1, kind
        elif c >= 128 and kind == ASCII:
            kind = NON_ASCII
        pos += 1
    return -1, kind


@njit(cache=True)
def _two_sum(a: float, b: float) -> tuple[float, float]:
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(cache=True)
def _split(a: float) -> tuple[float, float]:
    c = _SPLITTER * a
    hi = c - (c - a)
    return hi, a - hi


@njit(cache=True)
def _two_prod(a: float, b: float) -> tuple[float, float]:
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


@njit(cache=True)
def _round_safely(r: float, err: float) -> bool:
    """False when ``r + err`` (err tiny, inexact) is too close to a rounding boundary of
    ``r`` to trust ``r`` as the correctly rounded value."""
    mant, exp = math.frexp(r)
    if abs(mant) == 0.5:  # a power of two: the ulp below is half the one above
        return False
    half = math.ldexp(1.0, exp - 54)
    return abs(abs(err) - half) > half * _AMBIGUOUS


@njit(cache=True)
def _decimal_to_double(m: int, e10: int) -> tuple[bool, float]:
    """``m * 10**e10`` correctly rounded for ``0 < m < 10**18`` and ``|e10| <= 40``, in
    double-double arithmetic (error about 2**-104 relative); (False, _) when the result is
    too close to a rounding boundary to be sure."""
    mh = float(m)
    ml = float(m - np.int64(mh))
    ph = _POW10_HI[abs(e10)]
    pl = _POW10_LO[abs(e10)]
    if e10 >= 0:
        a, b = _two_prod(mh, ph)
        r, err = _two_sum(a, b + (mh * pl + ml * ph))
    else:
        q = mh / ph
        a, b = _two_prod(q, ph)
        rem = ((mh - a) - b) + (ml - q * pl)
        r, err = _two_sum(q, rem / ph)
    if not _round_safely(r, err):
        return False, 0.0
    return True, r


@njit(cache=True, inline="always")
def number(buf: np.ndarray, pos: int, end: int) -> tuple[int, float]:
    """Parse a JSON number at ``pos``: (end index, value); end -1 when invalid or not
    exactly convertible here."""
    neg = False
    if buf[pos] == 45:
        neg = True
        pos += 1
        if pos >= end:
            return -1, 0.0
    m = 0
    digits = 0  # significant digits in m
    e10 = 0
    c = buf[pos]
    if c == 48:
        pos += 1
    elif 49 <= c <= 57:
        while pos < end and 48 <= buf[pos] <= 57:
            if digits == 18:
                return -1, 0.0
            m = m * 10 + (buf[pos] - 48)
            digits += 1
            pos += 1
    else:
        return -1, 0.0
    if pos < end and buf[pos] == 46:
        pos += 1
        if pos >= end or not (48 <= buf[pos] <= 57):
            return -1, 0.0
        while pos < end and 48 <= buf[pos] <= 57:
            d = buf[pos] - 48
            if m == 0 and d == 0:
                e10 -= 1
            elif digits == 18:
                return -1, 0.0
            else:
                m = m * 10 + d
                digits += 1
                e10 -= 1
            pos += 1
    if pos < end and (buf[pos] == 101 or buf[pos] == 69):
        pos += 1
        eneg = False
        if pos < end and (buf[pos] == 43 or buf[pos] == 45):
            eneg = buf[pos] == 45
            pos += 1
        if pos >= end or not (48 <= buf[pos] <= 57):
            return -1, 0.0
        ev = 0
        while pos < end and 48 <= buf[pos] <= 57:
            if ev < 100000:
                ev = ev * 10 + (buf[pos] - 48)
            pos += 1
        e10 += -ev if eneg else ev
    if m == 0:
        value = 0.0
    elif e10 > _MAX_E10 or e10 < -_MAX_E10:
        return -1, 0.0
    elif m <= _TWO53 and -22 <= e10 <= 22:  # Clinger: exact operands, one rounding
        value = float(m) * _POW10[e10] if e10 >= 0 else float(m) / _POW10[-e10]
    else:
        ok, value = _decimal_to_double(m, e10)
        if not ok:
            return -1, 0.0
    return pos, -value if neg else value


@njit(cache=True, inline="always")
def key(buf: np.ndarray, pos: int, end: int) -> int:
    """An object key (plain string), whitespace and the colon at ``pos``: the index after
    the colon, or -1."""
    if pos >= end or buf[pos] != 34:
        return -1
    close, kind = string(buf, pos, end)
    if close < 0 or kind != ASCII:
        return -1
    pos = ws(buf, close + 1, end)
    if pos >= end or buf[pos] != 58:
        return -1
    return pos + 1


@njit(cache=True, inline="always")
def literal(buf: np.ndarray, pos: int, end: int) -> int:
    """``true``, ``false`` or ``null`` at ``pos``: the index after it, or -1."""
    c = buf[pos]
    if c == 116 or c == 110:  # true null
        if pos + 4 > end:
            return -1
        if c == 116 and buf[pos + 1] == 114 and buf[pos + 2] == 117 and buf[pos + 3] == 101:
            return pos + 4
        if c == 110 and buf[pos + 1] == 117 and buf[pos + 2] == 108 and buf[pos + 3] == 108:
            return pos + 4
        return -1
    if c == 102 and pos + 5 <= end:
        if buf[pos + 1] == 97 and buf[pos + 2] == 108 and buf[pos + 3] == 115:
            if buf[pos + 4] == 101:
                return pos + 5
    return -1


@no_nrt()
def skip_value(buf: np.ndarray, pos: int, end: int, stack: np.ndarray, strict: bool = True) -> int:
    """Validate and skip one JSON value at ``pos`` (after whitespace): the index after it,
    or -1 (invalid, nested deeper than the stack, numbers the scanner does not convert,
    and when ``strict`` escaped or non-ASCII strings, whose UTF-8 only the object path
    checks)."""
    depth = 0
    while True:
        # a value starts here
        pos = ws(buf, pos, end)
        if pos >= end:
            return -1
        c = buf[pos]
        if c == 123 or c == 91:  # { [
            if depth >= len(stack):
                return -1
            stack[depth] = c
            depth += 1
            pos = ws(buf, pos + 1, end)
            if pos >= end:
                return -1
            if buf[pos] == c + 2:  # {} or []
                depth -= 1
                pos += 1
            else:
                if c == 123:
                    pos = key(buf, pos, end)
                    if pos < 0:
                        return -1
                continue
        elif c == 34:
            close, kind = string(buf, pos, end)
            if close < 0 or (strict and kind != ASCII):
                return -1
            pos = close + 1
        elif c == 116 or c == 102 or c == 110:
            pos = literal(buf, pos, end)
            if pos < 0:
                return -1
        else:
            pos, _ = number(buf, pos, end)
            if pos < 0:
                return -1
        # a value ended: close containers or move to the next member
        while True:
            if depth == 0:
                return pos
            pos = ws(buf, pos, end)
            if pos >= end:
                return -1
            c = buf[pos]
            top = stack[depth - 1]
            if c == top + 2:  # } closes {, ] closes [
                depth -= 1
                pos += 1
                continue
            if c != 44:
                return -1
            pos = ws(buf, pos + 1, end)
            if top == 123:
                pos = key(buf, pos, end)
                if pos < 0:
                    return -1
            break


def _unaligned_load(bits: int) -> Any:
    """An intrinsic: the ``bits``-bit word at byte ``i`` of a uint8 array, unaligned
    (compared only for equality, so the byte order does not matter)."""
    result = types.uint64 if bits == 64 else types.uint32

    def load(typingctx: object, arr: types.Array, i: types.Integer) -> Any:
        # Byte offsets from the data pointer: only for contiguous byte arrays.
        if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"):
            return None
        if arr.dtype != types.uint8:
            return None

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            ptr = builder.gep(ary.data, [args[1]])
            return builder.load(builder.bitcast(ptr, ir.IntType(bits).as_pointer()), align=1)

        return result(arr, types.intp), codegen

    return intrinsic(load)


_load64: Callable[[np.ndarray, int], int] = _unaligned_load(64)
_load32: Callable[[np.ndarray, int], int] = _unaligned_load(32)


@njit(cache=True, inline="always")
def same_bytes(buf: np.ndarray, p: int, lit: np.ndarray, q: int, n: int) -> bool:
    """``buf[p:p + n] == lit[q:q + n]`` (both in bounds), a word at a time: words that
    overlap the end rather than a byte loop, and no load outside either range."""
    if n >= 8:
        o = 0
        while o + 8 < n:
            if _load64(buf, p + o) != _load64(lit, q + o):
                return False
            o += 8
        return _load64(buf, p + n - 8) == _load64(lit, q + n - 8)
    if n >= 4:
        if _load32(buf, p) != _load32(lit, q):
            return False
        return _load32(buf, p + n - 4) == _load32(lit, q + n - 4)
    for j in range(n):
        if buf[p + j] != lit[q + j]:
            return False
    return True
