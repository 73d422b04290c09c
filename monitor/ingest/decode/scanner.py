"""Columnar JSON scanning: event messages straight into column arrays, in one Numba pass.

Parsing JSON into Python objects costs about 25 objects per 20-feature event before a
single value reaches a column; this scanner reads the bytes of a whole batch and writes
each monitored value where it belongs (``float64`` for numbers, the reference profile's
category code for strings) without creating any. It handles the events a healthy producer
sends; anything else, every message it is not sure about, is marked *slow* and decoded by
the object path in :mod:`monitor.ingest.decode`, which classifies every reject reason. So the
scanner never rejects: it either reads a message exactly as the object path would, or
passes it on. A message is slow when it is not a single JSON object, carries a ``label``,
has a timestamp string or out of range, an unknown or missing model, a string with an
escape or non-ASCII bytes the scanner cannot match against its tables, a category sent as
a number, a non-finite or not exactly convertible number, a repeated key, nesting deeper
than ``_MAX_DEPTH`` in skipped values, or anything that is not valid JSON.

Numbers are converted with Clinger's fast path when it is exact (up to 2^53 and powers of
ten up to 10^22), else in double-double arithmetic with a check that the result is not
within a hair of a rounding boundary; a number it cannot convert exactly is slow. Either
way every value equals what ``float()`` of the text gives (tests/unit/test_jsonscan.py
compares millions of random numbers).

Keys and category values are found in one open-addressing hash table of byte strings,
each entry tagged with a namespace (top-level field, model name, one model's feature keys,
one categorical column's vocabulary), so a lookup hashes the bytes once and compares them
once.

Producers write every event with the same bytes between values: once this scanner has
read one, :mod:`~monitor.ingest.decode.scan_template` reads the next ones by comparing
those bytes and converting only the values, and hands back to it any message in doubt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from monitor.ingest.decode.jsonlex import (
    ASCII,
    ESCAPED,
    NON_ASCII,
    literal,
    no_nrt,
    number,
    same_bytes,
    skip_value,
    string,
    ws,
)
from monitor.ingest.decode.scan_keys import (
    F_FEATURES,
    F_LABEL,
    F_MODEL,
    F_PREDICTION,
    F_TS,
    MAX_TS,
    NS_MODEL,
    NS_TOP,
    PRED_CATEGORICAL,
    PRED_NONE,
    PRED_NUMERIC,
    PRED_PROBABILITIES,
    TOP_FIELDS,
    fill_table,
    lookup,
)
from monitor.ingest.decode.scan_template import (
    T_COUNT,
    T_NEXT_LEARN,
    T_ON,
    clear_row,
    learn_from,
    template_scratch,
    try_templates,
)

__all__ = [
    "PRED_CATEGORICAL",
    "PRED_NONE",
    "PRED_NUMERIC",
    "PRED_PROBABILITIES",
    "SLOW",
    "SPLIT_MIN",
    "ScanModel",
    "ScanTables",
    "TOP_FIELDS",
    "build_tables",
    "parse_number",
    "scan_messages",
    "warmup",
]

#: ``status`` of a message the scanner hands to the object path.
SLOW = 1

#: The smallest batch :func:`scan_messages` splits over two threads: below it the hand-off
#: (tens of microseconds) outweighs half the scan (0.5-0.9 us an event, by template hits).
SPLIT_MIN = 2048
_MAX_DEPTH = 64
_MAX_UNKNOWN_KEYS = 32


@dataclass(frozen=True)
class ScanModel:
    """One model as the scanner sees it.

    ``numeric`` and ``categorical`` name the keys of the features object with their column
    in the model's numeric / categorical columns; ``vocab[j]`` maps categorical column
    ``j``'s categories to codes and ``unseen[j]`` is the code of a category not in it.
    """

    name: str
    numeric: Mapping[str, int]
    categorical: Mapping[str, int]
    num_width: int
    cat_width: int
    vocab: Sequence[Mapping[str, int]]
    unseen: Sequence[int]
    prediction: int = PRED_NONE
    #: Numeric column of a numeric prediction, categorical column of a categorical one.
    prediction_column: int = -1
    #: Class -> numeric column, for probabilities.
    classes: Mapping[str, int] | None = None


@dataclass(frozen=True)
class ScanTables:
    """The arrays the kernel reads (build with :func:`build_tables`)."""

    key_bytes: np.ndarray
    key_start: np.ndarray
    key_ns: np.ndarray
    key_value: np.ndarray
    table: np.ndarray
    #: Entries made of printable ASCII without quote or backslash (comparable in place).
    key_plain: np.ndarray
    #: Key order seen last: the entry after entry k (-1 none yet), and the first entry of
    #: each namespace. Updated by every scan: a cache, never a result.
    follow: np.ndarray
    first: np.ndarray
    feature_ns: np.ndarray
    class_ns: np.ndarray
    cat_ns: np.ndarray
    unseen: np.ndarray
    num_width: np.ndarray
    cat_width: np.ndarray
    pred_kind: np.ndarray
    pred_col: np.ndarray
    bound_model: int
    max_num: int
    max_cat: int


def build_tables(
    models: Sequence[ScanModel], top: Sequence[str], bound_model: int = -1
) -> ScanTables:
    """Hash tables and per-model arrays for :func:`scan_messages`.

    ``top`` names the event fields in :data:`TOP_FIELDS` order (they are configurable per
    topic); ``bound_model`` is the index of the model every event belongs to, or -1.
    """
    entries: list[tuple[int, bytes, int]] = []
    entries += [(NS_TOP, name.encode(), slot) for slot, name in enumerate(top)]
    entries += [(NS_MODEL, m.name.encode(), i) for i, m in enumerate(models)]
    n_models = max(len(models), 1)
    max_cat = max([m.cat_width for m in models] + [1])
    feature_ns = np.zeros(n_models, np.int64)
    class_ns = np.zeros(n_models, np.int64)
    cat_ns = np.zeros((n_models, max_cat), np.int64)
    unseen = np.zeros((n_models, max_cat), np.int64)
    ns = 2
    for i, m in enumerate(models):
        feature_ns[i] = ns
        # Feature key values: numeric column c as c, categorical column c as -c - 1.
        entries += [(ns, k.encode(), c) for k, c in m.numeric.items()]
        entries += [(ns, k.encode(), -c - 1) for k, c in m.categorical.items()]
        class_ns[i] = ns + 1
        entries += [(ns + 1, k.encode(), c) for k, c in (m.classes or {}).items()]
        ns += 2
        for j, codes in enumerate(m.vocab):
            cat_ns[i, j] = ns
            unseen[i, j] = m.unseen[j]
            entries += [(ns, k.encode(), code) for k, code in codes.items()]
            ns += 1
    size = 1 << max(4, (2 * len(entries)).bit_length())
    key_bytes = np.frombuffer(b"".join(e[1] for e in entries), dtype=np.uint8).copy()
    key_start = np.zeros(len(entries) + 1, np.int64)
    key_start[1:] = np.cumsum([len(e[1]) for e in entries])
    key_ns = np.array([e[0] for e in entries], np.int64)
    key_value = np.array([e[2] for e in entries], np.int64)
    table = np.zeros(size, np.int64)
    fill_table(table, key_bytes, key_start, key_ns)
    return ScanTables(
        key_bytes=key_bytes,
        key_start=key_start,
        key_ns=key_ns,
        key_value=key_value,
        table=table,
        key_plain=np.array([_plain(e[1]) for e in entries] or [False], np.bool_),
        follow=np.full(len(entries), -1, np.int64),
        first=np.full(ns, -1, np.int64),
        feature_ns=feature_ns,
        class_ns=class_ns,
        cat_ns=cat_ns,
        unseen=unseen,
        num_width=np.array([m.num_width for m in models] or [0], np.int64),
        cat_width=np.array([m.cat_width for m in models] or [0], np.int64),
        pred_kind=np.array([m.prediction for m in models] or [0], np.int64),
        pred_col=np.array([m.prediction_column for m in models] or [-1], np.int64),
        bound_model=bound_model,
        max_num=max([m.num_width for m in models] + [1]),
        max_cat=max_cat,
    )


def _plain(key: bytes) -> bool:
    return all(0x20 <= b < 0x7F and b not in (0x22, 0x5C) for b in key)


@dataclass(frozen=True)
class ScanResult:
    """Per message: ``status`` (0 read, :data:`SLOW`), model index, event time (NaN when
    absent), numeric values (NaN missing), category codes (-1 missing), the count of
    unmonitored feature keys, and whether a learned template read it (a statistic)."""

    status: np.ndarray
    model: np.ndarray
    ts: np.ndarray
    numeric: np.ndarray
    codes: np.ndarray
    unknown: np.ndarray
    templated: np.ndarray


def scan_messages(
    tables: ScanTables,
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    helper: Executor | None = None,
    templates: bool = True,
) -> ScanResult:
    """Scan messages ``buf[starts[i]:ends[i]]`` into columns.

    With a ``helper`` (one thread), a batch of at least :data:`SPLIT_MIN` messages is
    scanned in two halves at once, the second on the helper: the kernel releases the GIL,
    so a free core halves the scan's wall time. The halves share the key-order hints
    (``follow``, ``first``); each write is one aligned int64 and every hint is checked
    before use, so a race costs at most a hash lookup. ``templates=False`` turns the
    template fast path (:mod:`~monitor.ingest.decode.scan_template`) off, for tests.
    """
    n = len(starts)
    out = ScanResult(
        np.zeros(n, np.int64),
        np.full(n, -1, np.int64),
        np.empty(n, np.float64),
        np.empty((n, tables.max_num), np.float64),
        np.empty((n, tables.max_cat), np.int64),
        np.zeros(n, np.int64),
        np.zeros(n, np.bool_),
    )
    if helper is None or n < SPLIT_MIN:
        _scan_rows(tables, buf, starts, ends, out, 0, n, templates)
        return out
    half = n // 2
    second = helper.submit(_scan_rows, tables, buf, starts, ends, out, half, n, templates)
    try:
        _scan_rows(tables, buf, starts, ends, out, 0, half, templates)
    finally:
        second.result()
    return out


def _scan_rows(
    tables: ScanTables,
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    out: ScanResult,
    a: int,
    b: int,
    templates: bool = True,
) -> None:
    """Rows ``a:b`` of ``out`` (contiguous slices: the kernel's types do not change)."""
    lit, slots, state = template_scratch(tables.max_num, tables.max_cat, templates)
    _scan(
        buf,
        starts[a:b],
        ends[a:b],
        tables.key_bytes,
        tables.key_start,
        tables.key_ns,
        tables.key_value,
        tables.table,
        tables.key_plain,
        tables.follow,
        tables.first,
        tables.feature_ns,
        tables.class_ns,
        tables.cat_ns,
        tables.unseen,
        tables.pred_kind,
        tables.pred_col,
        tables.bound_model,
        out.status[a:b],
        out.model[a:b],
        out.ts[a:b],
        out.numeric[a:b],
        out.codes[a:b],
        out.unknown[a:b],
        out.templated[a:b],
        # Scratch space, allocated here: the kernels allocate nothing (see no_nrt).
        np.empty(_MAX_DEPTH, np.uint8),
        np.empty((_MAX_UNKNOWN_KEYS, 2), np.int64),
        np.zeros(out.numeric.shape[1], np.int64),
        np.zeros(out.codes.shape[1], np.int64),
        lit,
        slots,
        state,
    )


def parse_number(text: bytes) -> float | None:
    """The value of a JSON number as the scanner reads it, or None when it passes it on."""
    buf = np.frombuffer(text, dtype=np.uint8)
    end, value = number(buf, 0, len(buf))
    return value if end == len(buf) else None


# ------------------------------------------------------------------------------ kernels


# Value actions of a member in _scan_one.
_A_SKIP, _A_NUMBER, _A_CATEGORY, _A_MODEL, _A_OBJECT = range(5)


@no_nrt()
def _find_model(
    buf: np.ndarray,
    pos: int,
    end: int,
    key_bytes: np.ndarray,
    key_start: np.ndarray,
    key_ns: np.ndarray,
    key_value: np.ndarray,
    table: np.ndarray,
    stack: np.ndarray,
) -> int:
    """The model of the event object at ``pos`` when its model field comes after the
    features (a pre-pass over the top level); -1 if there is none the scanner knows."""
    pos = ws(buf, pos + 1, end)
    while True:
        if pos >= end or buf[pos] != 34:
            return -1
        close, kind = string(buf, pos, end)
        if close < 0 or kind != ASCII:
            return -1
        k = lookup(buf, pos + 1, close, NS_TOP, key_bytes, key_start, key_ns, table)
        pos = ws(buf, close + 1, end)
        if pos >= end or buf[pos] != 58:
            return -1
        pos = ws(buf, pos + 1, end)
        if pos >= end:
            return -1
        if k >= 0 and key_value[k] == F_MODEL:
            if buf[pos] != 34:
                return -1
            close, kind = string(buf, pos, end)
            if close < 0 or kind == ESCAPED:
                return -1
            k = lookup(buf, pos + 1, close, NS_MODEL, key_bytes, key_start, key_ns, table)
            return key_value[k] if k >= 0 else -1
        # The main pass validates the event; this one only looks for the model.
        pos = skip_value(buf, pos, end, stack, False)
        if pos < 0:
            return -1
        pos = ws(buf, pos, end)
        if pos >= end or buf[pos] != 44:
            return -1
        pos = ws(buf, pos + 1, end)


@no_nrt(nogil=True)
def _scan(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    key_bytes: np.ndarray,
    key_start: np.ndarray,
    key_ns: np.ndarray,
    key_value: np.ndarray,
    table: np.ndarray,
    key_plain: np.ndarray,
    follow: np.ndarray,
    first: np.ndarray,
    feature_ns: np.ndarray,
    class_ns: np.ndarray,
    cat_ns: np.ndarray,
    unseen: np.ndarray,
    pred_kind: np.ndarray,
    pred_col: np.ndarray,
    bound_model: int,
    status: np.ndarray,
    model: np.ndarray,
    ts: np.ndarray,
    numeric: np.ndarray,
    codes: np.ndarray,
    unknown: np.ndarray,
    templated: np.ndarray,
    stack: np.ndarray,
    unknown_keys: np.ndarray,
    seen_num: np.ndarray,
    seen_cat: np.ndarray,
    lit: np.ndarray,
    slots: np.ndarray,
    state: np.ndarray,
) -> None:
    """Scan every message; ``nogil`` so other Python threads (HTTP, webhooks) run on.
    A learned template reads a message first when it fits (``state``: see scan_template;
    its checks here keep a stream no template fits from paying for calls)."""
    for row in range(len(starts)):
        clear_row(row, ts, numeric, codes)
        if state[T_ON] and state[T_COUNT] and try_templates(
            buf, starts[row], ends[row], row, lit, slots, state,
            key_bytes, key_start, key_ns, key_value, table,
            model, ts, numeric, codes, unknown, templated,
        ):  # fmt: skip
            continue
        if not _scan_one(
            buf, starts[row], ends[row], row,
            key_bytes, key_start, key_ns, key_value, table, key_plain, follow, first,
            feature_ns, class_ns, cat_ns, unseen, pred_kind, pred_col, bound_model,
            model, ts, numeric, codes, unknown,
            seen_num, seen_cat, unknown_keys, stack,
        ):  # fmt: skip
            status[row] = SLOW
        elif state[T_ON] and row >= state[T_NEXT_LEARN]:
            learn_from(
                buf, starts[row], ends[row], row, model[row],
                key_bytes, key_start, key_ns, key_value, table,
                feature_ns, class_ns, cat_ns, unseen, pred_kind, pred_col, lit, slots, state,
            )  # fmt: skip


@no_nrt()
def _scan_one(
    buf: np.ndarray,
    start: int,
    end: int,
    row: int,
    key_bytes: np.ndarray,
    key_start: np.ndarray,
    key_ns: np.ndarray,
    key_value: np.ndarray,
    table: np.ndarray,
    key_plain: np.ndarray,
    follow: np.ndarray,
    first: np.ndarray,
    feature_ns: np.ndarray,
    class_ns: np.ndarray,
    cat_ns: np.ndarray,
    unseen: np.ndarray,
    pred_kind: np.ndarray,
    pred_col: np.ndarray,
    bound_model: int,
    model: np.ndarray,
    ts: np.ndarray,
    numeric: np.ndarray,
    codes: np.ndarray,
    unknown: np.ndarray,
    seen_num: np.ndarray,
    seen_cat: np.ndarray,
    unknown_keys: np.ndarray,
    stack: np.ndarray,
) -> bool:
    """One message into row ``row``; False passes it to the object path.

    One loop over members, whatever object they are in (``ctx``: 0 the event, 1 its
    features, 2 the class probabilities), so each helper is inlined at one place only.
    Producers write keys in the same order every time: the key that followed this one
    last time (``follow``, ``first`` per namespace) is compared before any hashing.
    """
    pos = ws(buf, start, end)
    if pos >= end or buf[pos] != 123:
        return False
    opening = pos
    m = bound_model
    ctx = 0
    seen = 0
    payload = False
    n_unknown = 0
    stamp = row + 1
    prev_top = -1
    prev_in = -1
    pos = ws(buf, pos + 1, end)
    while True:
        # -- the key
        if pos >= end or buf[pos] != 34:
            return False  # includes the empty event: no payload
        if ctx == 0:
            ns = NS_TOP
        elif ctx == 1:
            ns = feature_ns[m]
        else:
            ns = class_ns[m]
        prev = prev_top if ctx == 0 else prev_in
        guess = follow[prev] if prev >= 0 else (first[ns] if prev == -1 else -1)
        k = -1
        close = -1
        # The expected key, compared in place: a plain table key (printable ASCII, no
        # quote or backslash) followed by a quote is exactly that JSON string.
        if guess >= 0 and key_plain[guess] and key_ns[guess] == ns:
            s = key_start[guess]
            n = key_start[guess + 1] - s
            if pos + 1 + n < end and buf[pos + 1 + n] == 34:
                if same_bytes(buf, pos + 1, key_bytes, s, n):
                    k = guess
                    close = pos + 1 + n
        if k < 0:
            close, kind = string(buf, pos, end)
            if close < 0 or kind != ASCII:
                return False
            n = close - pos - 1
            k = lookup(buf, pos + 1, close, ns, key_bytes, key_start, key_ns, table)
            if k >= 0:
                if prev >= 0:
                    follow[prev] = k
                elif prev == -1:
                    first[ns] = k
        if ctx == 0:
            prev_top = k if k >= 0 else -2
        else:
            prev_in = k if k >= 0 else -2
        key_a = pos + 1
        pos = ws(buf, close + 1, end)
        if pos >= end or buf[pos] != 58:
            return False
        pos = ws(buf, pos + 1, end)
        if pos >= end:
            return False
        c = buf[pos]
        # -- what to do with the value
        action = _A_SKIP
        col = 0
        to_ts = False
        vocab = 0
        unseen_code = 0
        next_ctx = 0
        if ctx == 0:
            field = key_value[k] if k >= 0 else -1
            if field >= 0:
                if seen & (1 << field):
                    return False
                seen |= 1 << field
            if field == F_MODEL:
                if bound_model < 0:
                    action = _A_MODEL
            elif field == F_TS:
                action = _A_NUMBER
                to_ts = True
            elif field == F_LABEL:
                return False  # label events: the performance join's, on the object path
            elif (field == F_FEATURES or field == F_PREDICTION) and c != 110:
                payload = True
                if m < 0:
                    m = _find_model(
                        buf, opening, end, key_bytes, key_start, key_ns, key_value, table, stack
                    )
                    if m < 0:
                        return False
                if field == F_FEATURES:
                    if c != 123:
                        return False
                    action = _A_OBJECT
                    next_ctx = 1
                else:
                    p_kind = pred_kind[m]
                    col = pred_col[m]
                    if p_kind == PRED_NUMERIC:
                        action = _A_NUMBER
                    elif p_kind == PRED_CATEGORICAL:
                        action = _A_CATEGORY
                        vocab = cat_ns[m, col]
                        unseen_code = unseen[m, col]
                    elif p_kind == PRED_PROBABILITIES:
                        if c != 123:
                            return False
                        action = _A_OBJECT
                        next_ctx = 2
        elif k >= 0:
            col = key_value[k]
            if col < 0:
                col = -col - 1
                if seen_cat[col] == stamp:
                    return False
                seen_cat[col] = stamp
                action = _A_CATEGORY
                vocab = cat_ns[m, col]
                unseen_code = unseen[m, col]
            else:
                if seen_num[col] == stamp:
                    return False
                seen_num[col] = stamp
                action = _A_NUMBER
        elif ctx == 1:
            # An unmonitored feature key: counted once per distinct key, as a dict would.
            for u in range(n_unknown):
                a = unknown_keys[u, 0]
                if unknown_keys[u, 1] - a == n and same_bytes(buf, a, buf, key_a, n):
                    return False
            if n_unknown == len(unknown_keys):
                return False
            unknown_keys[n_unknown, 0] = key_a
            unknown_keys[n_unknown, 1] = key_a + n
            n_unknown += 1
        # -- the value
        if action == _A_NUMBER:
            if c == 116 or c == 102 or c == 110:
                after = literal(buf, pos, end)
                if after < 0 or (to_ts and c != 110):
                    return False
                value = 1.0 if c == 116 else (0.0 if c == 102 else np.nan)
                pos = after
            elif c == 45 or 48 <= c <= 57:
                pos, value = number(buf, pos, end)
                if pos < 0:
                    return False
            else:
                return False
            if not to_ts:
                numeric[row, col] = value
            elif c != 110:
                if not (0.0 <= value < MAX_TS):
                    return False
                ts[row] = value
        elif action == _A_CATEGORY or action == _A_MODEL:
            text = ASCII
            if c == 34:
                close, text = string(buf, pos, end)
                if close < 0 or text == ESCAPED:
                    return False
                a, b = pos + 1, close
                pos = close + 1
            elif action == _A_CATEGORY and (c == 116 or c == 102 or c == 110):
                b = literal(buf, pos, end)
                if b < 0:
                    return False
                a = pos
                pos = b
            else:
                return False
            code = -1
            if c != 110:
                ns = NS_MODEL if action == _A_MODEL else vocab
                found = lookup(buf, a, b, ns, key_bytes, key_start, key_ns, table)
                if found >= 0:
                    code = key_value[found]
                elif action == _A_MODEL or text == NON_ASCII:
                    return False  # an unknown model, or a category that may not be UTF-8
                else:
                    code = unseen_code
            if action == _A_CATEGORY:
                codes[row, col] = code
            elif m >= 0 and code != m:
                return False
            else:
                m = code
        elif action == _A_OBJECT:
            pos = ws(buf, pos + 1, end)
            if pos >= end:
                return False
            if buf[pos] != 125:
                ctx = next_ctx
                prev_in = -1
                continue
            pos += 1  # an empty object
        else:
            pos = skip_value(buf, pos, end, stack)
            if pos < 0:
                return False
        # -- after a value: the next member, or the end of objects
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
                if ws(buf, pos, end) != end or m < 0 or not payload:
                    return False
                unknown[row] = n_unknown
                model[row] = m
                return True
            ctx = 0


def warmup() -> None:
    """Compile (or load from the cache) the scanner's kernels on a few tiny messages."""
    model = ScanModel(
        name="m",
        numeric={"x": 0},
        categorical={"c": 0},
        num_width=2,
        cat_width=1,
        vocab=[{"a": 0}],
        unseen=[2],
        prediction=PRED_NUMERIC,
        prediction_column=1,
    )
    tables = build_tables([model], TOP_FIELDS)
    messages = [
        # one shape three times: its template is learned from the first (learning has a
        # budget: one attempt in 32 rows), read by the second, doubted by the third
        b'{"model": "m", "ts": 2, "id": "r2", "features": {"x": 1.5, "c": "a"}, "prediction": 1}',
        b'{"model": "m", "ts": 3, "id": "r3", "features": {"x": -2e3, "c": "b"}, "prediction": 0}',
        b'{"model": "m", "ts": 4, "id": "r4", "features": {"x": null, "c": "a"}, "prediction": 0}',
        b'{"model": "m", "ts": 1.5, "id": "r1", "features": {"x": 0.12345678901234567, '
        b'"c": "a", "u": [1, {"v": null}]}, "prediction": 0.5}',
        b'{"features": {"x": true, "c": false}, "model": "m", "prediction": null}',
    ]
    lengths = np.array([len(m) for m in messages], dtype=np.int64)
    ends = np.cumsum(lengths)
    scan_messages(tables, np.frombuffer(b"".join(messages), np.uint8), ends - lengths, ends)
