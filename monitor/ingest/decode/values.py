"""Value checks and conversions shared by decode's two object paths (typed and general).

Each function turns one column of raw event values into what :class:`ModelColumns` holds
and records why a row is rejected in ``bad`` (row -> (reason, detail); the first reason
wins), so the msgspec path and the orjson path classify every value alike.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

import numpy as np

from monitor.ingest.decode.schema import Reason

#: Rejected rows of one model's columns: row -> (reason, detail); the first reason wins.
Bad = dict[int, tuple[Reason, str]]

NONE_TYPE = type(None)
NUMERIC_TYPES = frozenset({float, int, bool, NONE_TYPE})
STR_TYPES = frozenset({str, NONE_TYPE})
_BOOL_TYPES = frozenset({bool, NONE_TYPE})
_BOOL_TEXT = {True: "true", False: "false"}
#: Stands in for an absent or invalid object (features, probabilities); never mutated.
EMPTY: dict[str, Any] = {}
# Event times beyond year 5138 are almost surely milliseconds or nanoseconds.
_MAX_TS = 1e11
# orjson's integer range; it reads integers beyond it as floats.
INT_MIN, INT_MAX = -(2**63), 2**64
NO_PAYLOAD = "neither features, prediction nor label"


def numeric_column(col: list[Any], name: str, bad: Bad) -> Any:
    """A list numpy can turn into float64 (None becomes NaN); strings etc. reject the row."""
    if set(map(type, col)) <= NUMERIC_TYPES:
        return col
    for k, v in enumerate(col):
        if type(v) not in NUMERIC_TYPES:
            detail = f"feature {name!r}: expected a number, got {type_name(v)}"
            bad.setdefault(k, (Reason.wrong_type, detail))
            col[k] = None
    return col


def categorical_column(col: list[Any], name: str, bad: Bad) -> tuple[list[str | None], bool]:
    """Categories as str (bools true/false, ints via str, floats via repr); True if any
    value is missing. Objects and arrays reject their row."""
    types = set(map(type, col))
    if types <= STR_TYPES:
        return col, NONE_TYPE in types
    if types <= _BOOL_TYPES:
        return list(map(_BOOL_TEXT.get, col)), NONE_TYPE in types
    for k, v in enumerate(col):
        t = type(v)
        if t is str or v is None:
            continue
        if t is bool:
            col[k] = "true" if v else "false"
        elif t is int:
            # Past 64 bits orjson reads an integer as a float: msgspec rows must agree.
            col[k] = str(v) if INT_MIN <= v < INT_MAX else repr(float(v))
        elif t is float:
            col[k] = repr(v)  # orjson never yields NaN/inf, so every float here is finite
        else:
            detail = f"feature {name!r}: expected a category, got {type_name(v)}"
            bad.setdefault(k, (Reason.wrong_type, detail))
            col[k] = None
    return col, True


def probability_objects(preds: list[Any], bad: Bad) -> list[Any]:
    if set(map(type, preds)) == {dict}:
        return preds
    out = list(preds)
    for k, p in enumerate(out):
        if type(p) is not dict:
            if p is not None:
                detail = f"prediction is {type_name(p)}, expected class -> probability"
                bad.setdefault(k, (Reason.wrong_type, detail))
            out[k] = EMPTY
    return out


def event_times(
    col: list[Any], kafka_ts: np.ndarray, msgs: list[int], bad: Bad, zone: tzinfo | None = None
) -> np.ndarray:
    """Event times: numbers as epoch seconds, RFC 3339 strings, else the Kafka timestamp.

    ISO times without an offset are read in ``zone`` (``timestamps.timezone``); without
    one they are rejected, and the detail says how to accept them.
    """
    types = set(map(type, col))
    if types <= {float, int}:
        ts = np.array(col, dtype=np.float64)
        out_of_range = (ts < 0) | (ts >= _MAX_TS)
        if not out_of_range.any():
            return ts
    elif types == {NONE_TYPE}:
        return np.asarray(kafka_ts, dtype=np.float64)[msgs]
    ts = np.asarray(kafka_ts, dtype=np.float64)[msgs]
    for k, v in enumerate(col):
        t = type(v)
        if v is None:
            continue
        if t is float or t is int:
            if 0 <= v < _MAX_TS:
                ts[k] = v
                continue
            detail = f"ts {v:g} is not epoch seconds"
        elif t is str:
            parsed = _parse_iso(v, zone)
            if isinstance(parsed, float):
                ts[k] = parsed
                continue
            detail = f"ts {v[:40]!r} {parsed}"
        else:
            detail = f"ts is {type_name(v)}"
        bad.setdefault(k, (Reason.bad_timestamp, detail))
    return ts


NO_OFFSET = (
    "has no UTC offset: add one (Z, +01:00) or set timestamps.timezone in the config "
    "to read such times in that zone"
)


def _parse_iso(text: str, zone: tzinfo | None) -> float | str:
    """Epoch seconds of an ISO time, or why it cannot be read (the rejection detail)."""
    if len(text) > 40:
        return "is not an RFC 3339 time (too long)"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return "is not an RFC 3339 time with offset"
    if moment.tzinfo is None:  # RFC 3339 requires an offset; a local time is ambiguous
        if zone is None:
            return NO_OFFSET
        moment = moment.replace(tzinfo=zone)
    value = moment.timestamp()
    return value if 0 <= value < _MAX_TS else "is outside 1970..5138"


def optional_strings(col: list[Any]) -> list[str | None]:
    """Ids and versions: strings kept, integers stringified, anything else missing."""
    if set(map(type, col)) <= STR_TYPES:
        return col
    return [
        v if type(v) is str else str(v) if type(v) is int and INT_MIN <= v < INT_MAX else None
        for v in col
    ]


def type_name(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if type(value) in (int, float) else "a value")
