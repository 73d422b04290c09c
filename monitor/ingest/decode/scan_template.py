"""The scanner's template fast path: a producer's events byte for byte the same but for
their values.

Producers write every event of a stream with the same bytes between values (keys, order,
whitespace, punctuation). From one message the general path (``scanner._scan_one``) read,
:func:`learn_from` records its *template*: the literal byte segments between value slots
and, per slot, what the general path did with that value (a numeric column, the event
time, a categorical column with its vocabulary, a string or number it skipped). The model
name is part of a literal. :func:`try_templates` then reads a message by comparing the
segments in place and converting only the values, with no key lookups, dispatch or
duplicate checks: a message whose literals all match has exactly the learned message's
keys, so it has no repeated key either (the learned one passed the general path's check).

Both are conservative: learning gives up on anything unusual (unmonitored feature keys,
nulls, booleans other than a category's (looked up by their text, as the general path
does), nested skipped values, labels, versions, escapes, non-ASCII strings),
and a message the template is not sure about (a literal that differs, a value of another
kind, a number the scanner does not convert, an out-of-range time, a string with an escape
or non-ASCII bytes) goes to the general path, which decides; the template path never marks
a message slow. So a row reads the same either way (tests/unit/test_scan_template.py).

State lives in scratch arrays of one ``_scan_rows`` call (:func:`template_scratch`):
the two halves of a split batch learn separately and share nothing.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from monitor.ingest.decode.jsonlex import literal, no_nrt, number, same_bytes, ws
from monitor.ingest.decode.scan_keys import (
    F_FEATURES,
    F_ID,
    F_MODEL,
    F_PREDICTION,
    F_TS,
    MAX_TS,
    NS_TOP,
    PRED_CATEGORICAL,
    PRED_NUMERIC,
    PRED_PROBABILITIES,
    lookup,
)

__all__ = [
    "N_TEMPLATES",
    "T_COUNT",
    "T_NEXT_LEARN",
    "T_ON",
    "clear_row",
    "learn_from",
    "template_scratch",
    "try_templates",
]

#: Templates kept at once (a few producers or models interleaved); one more is staging.
N_TEMPLATES = 4
#: Literal bytes of one template (an event longer than this between values is not learned).
_MAX_LIT = 8192
#: Learning costs about one general scan: at most one attempt every this many rows, the gap
#: doubling after each failed attempt up to the longest (a stream nothing fits pays ~0.1 %).
_LEARN_EVERY = 32
_LEARN_EVERY_MAX = 1024
#: Slot kinds; the number kinds first.
_K_NUMBER, _K_TS, _K_SKIP_NUMBER, _K_CATEGORY, _K_SKIP_STRING = range(5)
_K_LITERAL = -1  # a plain string kept in the literal (the model name)
# Rows of the slots array: segment starts, then per slot kind, column, vocabulary
# namespace, unseen code; _META holds the slot count, the model and hits.
_SEG, _KIND, _COL, _NS, _CODE, _META = range(6)
# Entries of the state array: templates on, learned, the last that matched, hits, misses,
# the first row learning may be tried again, the gap after it.
_ON, _COUNT, _LAST, _HITS, _MISSES, _NEXT_LEARN, _GAP = range(7)
T_ON, T_COUNT, T_NEXT_LEARN = _ON, _COUNT, _NEXT_LEARN


def template_scratch(
    max_num: int, max_cat: int, enabled: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empty template state for one ``_scan_rows`` call: literals, slots, state."""
    # Every slot is a distinct column or top-level field; a few skipped fields besides.
    width = max_num + max_cat + 8 + 2
    # One flat array: template t's literal bytes start at t * _MAX_LIT.
    lit = np.empty((N_TEMPLATES + 1) * _MAX_LIT, np.uint8)
    slots = np.empty((N_TEMPLATES + 1, 6, width), np.int64)
    state = np.zeros(8, np.int64)
    state[_ON] = int(enabled)
    state[_GAP] = _LEARN_EVERY
    return lit, slots, state


@njit(cache=True, inline="always")
def clear_row(row: int, ts: np.ndarray, numeric: np.ndarray, codes: np.ndarray) -> None:
    """A row as the scan starts it: no time, values or codes."""
    for j in range(numeric.shape[1]):
        numeric[row, j] = np.nan
    for j in range(codes.shape[1]):
        codes[row, j] = -1
    ts[row] = np.nan


@njit(cache=True, inline="always")
def _plain_string(buf: np.ndarray, pos: int, end: int) -> int:
    """``buf[pos]`` opens a string: its closing quote if every byte in between is
    printable ASCII other than a backslash (the string is its bytes), else -1."""
    pos += 1
    while pos < end:
        c = buf[pos]
        if c == 34:
            return pos
        if c < 32 or c > 126 or c == 92:
            return -1
        pos += 1
    return -1


# Inlined into the scan loop: a call passes every array as seven values, some 130 of them.
@njit(cache=True, inline="always")
def _apply(
    buf: np.ndarray,
    start: int,
    end: int,
    row: int,
    t: int,
    lit: np.ndarray,
    slots: np.ndarray,
    key_bytes: np.ndarray,
    key_start: np.ndarray,
    key_ns: np.ndarray,
    key_value: np.ndarray,
    table: np.ndarray,
    ts: np.ndarray,
    numeric: np.ndarray,
    codes: np.ndarray,
) -> bool:
    """Read one message with template ``t``; False on any doubt (the row then holds
    partial values)."""
    n = slots[t, _META, 0]
    pos = ws(buf, start, end)
    i = 0
    while True:
        a = slots[t, _SEG, i]
        b = slots[t, _SEG, i + 1]
        if pos + (b - a) > end or not same_bytes(buf, pos, lit, t * _MAX_LIT + a, b - a):
            return False
        pos += b - a
        if i == n:
            return ws(buf, pos, end) == end
        if pos >= end:
            return False
        kind = slots[t, _KIND, i]
        c = buf[pos]
        if kind <= _K_SKIP_NUMBER:
            # Only what the general path reads as a number here: literals go there.
            if c != 45 and not (48 <= c <= 57):
                return False
            pos, value = number(buf, pos, end)
            if pos < 0:
                return False
            if kind == _K_NUMBER:
                numeric[row, slots[t, _COL, i]] = value
            elif kind == _K_TS:
                if not (0.0 <= value < MAX_TS):
                    return False
                ts[row] = value
        else:
            if c == 34:
                a = pos + 1
                b = _plain_string(buf, pos, end)
                pos = b + 1
            elif kind == _K_CATEGORY and (c == 116 or c == 102):
                # a boolean category is looked up by its text, as the general path does
                a = pos
                b = literal(buf, pos, end)
                pos = b
            else:
                return False
            if b < 0:
                return False
            if kind == _K_CATEGORY:
                found = lookup(buf, a, b, slots[t, _NS, i], key_bytes, key_start, key_ns, table)
                code = key_value[found] if found >= 0 else slots[t, _CODE, i]
                codes[row, slots[t, _COL, i]] = code
        i += 1


@njit(cache=True, inline="always")
def try_templates(
    buf: np.ndarray,
    start: int,
    end: int,
    row: int,
    lit: np.ndarray,
    slots: np.ndarray,
    state: np.ndarray,
    key_bytes: np.ndarray,
    key_start: np.ndarray,
    key_ns: np.ndarray,
    key_value: np.ndarray,
    table: np.ndarray,
    model: np.ndarray,
    ts: np.ndarray,
    numeric: np.ndarray,
    codes: np.ndarray,
    unknown: np.ndarray,
    templated: np.ndarray,
) -> bool:
    """Read row ``row`` with a learned template (the last one that matched first); False
    leaves the row cleared for the general path."""
    count = state[_COUNT]
    if count == 0:
        return False
    last = state[_LAST]
    for i in range(count):
        t = last + i
        if t >= count:
            t -= count
        if _apply(
            buf, start, end, row, t, lit, slots,
            key_bytes, key_start, key_ns, key_value, table, ts, numeric, codes,
        ):  # fmt: skip
            model[row] = slots[t, _META, 1]
            unknown[row] = 0  # a template has no unmonitored feature keys
            templated[row] = True
            slots[t, _META, 2] += 1
            state[_LAST] = t
            state[_HITS] += 1
            return True
        clear_row(row, ts, numeric, codes)
    state[_MISSES] += 1
    # A stream the templates rarely fit: stop paying for the tries in this call.
    if state[_MISSES] > 64 + 2 * state[_HITS]:
        state[_ON] = 0
    return False


@no_nrt()
def learn_from(
    buf: np.ndarray,
    start: int,
    end: int,
    row: int,
    m: int,
    key_bytes: np.ndarray,
    key_start: np.ndarray,
    key_ns: np.ndarray,
    key_value: np.ndarray,
    table: np.ndarray,
    feature_ns: np.ndarray,
    class_ns: np.ndarray,
    cat_ns: np.ndarray,
    unseen: np.ndarray,
    pred_kind: np.ndarray,
    pred_col: np.ndarray,
    lit: np.ndarray,
    slots: np.ndarray,
    state: np.ndarray,
) -> None:
    """After the general path read row ``row`` (of model ``m``) and no template did, and
    ``state[T_NEXT_LEARN] <= row`` (the learning budget): learn its template, in place of
    a free or the least used one."""
    stage = N_TEMPLATES
    if not _learn(
        buf, start, end, m, key_bytes, key_start, key_ns, key_value, table,
        feature_ns, class_ns, cat_ns, unseen, pred_kind, pred_col, lit, slots, stage,
    ):  # fmt: skip
        state[_NEXT_LEARN] = row + state[_GAP]
        state[_GAP] = min(2 * state[_GAP], _LEARN_EVERY_MAX)
        return
    state[_NEXT_LEARN] = row + _LEARN_EVERY
    state[_GAP] = _LEARN_EVERY
    count = state[_COUNT]
    if count < N_TEMPLATES:
        t = count
        state[_COUNT] = count + 1
    else:
        t = 0
        for u in range(1, count):
            if slots[u, _META, 2] < slots[t, _META, 2]:
                t = u
    n = slots[stage, _META, 0]
    for j in range(slots[stage, _SEG, n + 1]):
        lit[t * _MAX_LIT + j] = lit[stage * _MAX_LIT + j]
    for r in range(_META):
        for i in range(n + 2):
            slots[t, r, i] = slots[stage, r, i]
    slots[t, _META, 0] = n
    slots[t, _META, 1] = m
    slots[t, _META, 2] = 0
    state[_LAST] = t


@no_nrt()
def _learn(
    buf: np.ndarray,
    start: int,
    end: int,
    m: int,
    key_bytes: np.ndarray,
    key_start: np.ndarray,
    key_ns: np.ndarray,
    key_value: np.ndarray,
    table: np.ndarray,
    feature_ns: np.ndarray,
    class_ns: np.ndarray,
    cat_ns: np.ndarray,
    unseen: np.ndarray,
    pred_kind: np.ndarray,
    pred_col: np.ndarray,
    lit: np.ndarray,
    slots: np.ndarray,
    t: int,
) -> bool:
    """The template of a message the general path read, into ``lit[t]``, ``slots[t]``;
    False when it has anything unusual. It only walks the simple shapes: what each value
    meant was decided by the general path (the same tables, the same model)."""
    max_slots = slots.shape[2] - 2
    pos = ws(buf, start, end)
    if pos >= end or buf[pos] != 123:
        return False
    run = pos  # where the literal bytes not yet copied start
    n_lit = 0
    n = 0
    ctx = 0  # 0 the event, 1 its features, 2 class probabilities
    pos = ws(buf, pos + 1, end)
    while True:
        if pos >= end or buf[pos] != 34:
            return False
        close = _plain_string(buf, pos, end)
        if close < 0:
            return False
        ns = NS_TOP if ctx == 0 else (feature_ns[m] if ctx == 1 else class_ns[m])
        k = lookup(buf, pos + 1, close, ns, key_bytes, key_start, key_ns, table)
        pos = ws(buf, close + 1, end)
        if pos >= end or buf[pos] != 58:
            return False
        pos = ws(buf, pos + 1, end)
        if pos >= end:
            return False
        c = buf[pos]
        kind = _K_LITERAL
        col = 0
        vocab = 0
        code = 0
        opens = 0  # the context a member's object value opens
        if ctx == 0:
            field = key_value[k] if k >= 0 else -1
            if field == F_MODEL:
                kind = _K_LITERAL
            elif field == F_TS:
                kind = _K_TS
            elif field == F_ID or field < 0:
                kind = _K_SKIP_STRING if c == 34 else _K_SKIP_NUMBER
            elif field == F_FEATURES:
                opens = 1
            elif field == F_PREDICTION:
                p_kind = pred_kind[m]
                col = pred_col[m]
                if p_kind == PRED_NUMERIC:
                    kind = _K_NUMBER
                elif p_kind == PRED_CATEGORICAL:
                    kind = _K_CATEGORY
                    vocab = cat_ns[m, col]
                    code = unseen[m, col]
                elif p_kind == PRED_PROBABILITIES:
                    opens = 2
                else:
                    return False
            else:
                return False  # a version or a label
        elif k < 0:
            return False  # an unmonitored feature or class
        else:
            col = key_value[k]
            kind = _K_NUMBER
            if col < 0:
                col = -col - 1
                kind = _K_CATEGORY
                vocab = cat_ns[m, col]
                code = unseen[m, col]
        if opens > 0:
            if c != 123:
                return False
            pos = ws(buf, pos + 1, end)
            if pos >= end:
                return False
            if buf[pos] != 125:
                ctx = opens
                continue
            pos += 1  # an empty object stays literal
        elif kind == _K_LITERAL:
            if c != 34:
                return False
            close = _plain_string(buf, pos, end)
            if close < 0:
                return False
            pos = close + 1
        else:
            if n == max_slots or n_lit + pos - run > _MAX_LIT:
                return False
            slots[t, _SEG, n] = n_lit
            for j in range(run, pos):
                lit[t * _MAX_LIT + n_lit] = buf[j]
                n_lit += 1
            if kind <= _K_SKIP_NUMBER:
                if c != 45 and not (48 <= c <= 57):
                    return False
                pos, _ = number(buf, pos, end)
                if pos < 0:
                    return False
            elif c == 34:
                close = _plain_string(buf, pos, end)
                if close < 0:
                    return False
                pos = close + 1
            elif kind == _K_CATEGORY and (c == 116 or c == 102):
                pos = literal(buf, pos, end)
                if pos < 0:
                    return False
            else:
                return False
            slots[t, _KIND, n] = kind
            slots[t, _COL, n] = col
            slots[t, _NS, n] = vocab
            slots[t, _CODE, n] = code
            n += 1
            run = pos
        # after a value: the next member, or the end of objects
        while True:
            pos = ws(buf, pos, end)
            if pos >= end:
                return False
            c = buf[pos]
            if c == 44:
                pos = ws(buf, pos + 1, end)
                break
            if c != 125:
                return False
            pos += 1
            if ctx == 0:
                if ws(buf, pos, end) != end or n_lit + pos - run > _MAX_LIT:
                    return False
                slots[t, _SEG, n] = n_lit
                for j in range(run, pos):
                    lit[t * _MAX_LIT + n_lit] = buf[j]
                    n_lit += 1
                slots[t, _SEG, n + 1] = n_lit
                slots[t, _META, 0] = n
                slots[t, _META, 1] = m
                return True
            ctx = 0
