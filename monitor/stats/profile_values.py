"""The value checks of a profile's JSON document (:func:`~monitor.stats.profile.
profile_from_json`): each names the key at fault; lists are checked a list at a time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from monitor.errors import ProfileError


def _j2f(v: object, where: str) -> float:
    if isinstance(v, str) and v in ("nan", "inf", "-inf"):
        return float(v)
    if isinstance(v, int | float) and not isinstance(v, bool):
        try:
            return float(v)
        except OverflowError:  # an integer beyond float's range
            pass
    raise ProfileError(f"{where}: expected a number, got {v!r}")


def _get(d: Mapping[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise ProfileError(f"{where}: missing key {key!r}")
    v = d[key]
    if not isinstance(v, typ) or (isinstance(v, bool) and typ is int):
        raise ProfileError(f"{where}.{key}: unexpected value {v!r}")
    return v


def _int_list(v: Any, where: str) -> np.ndarray:
    # One pass over the types in C, then numpy; only a list that fails it is walked value by
    # value, for the same error (a reference of 1,000 models holds 400,000 counts).
    if isinstance(v, list) and set(map(type, v)) <= {int}:
        try:
            counts = np.asarray(v, dtype=np.int64).reshape(-1)
        except OverflowError:
            counts = None
        if counts is not None and not (counts < 0).any():
            return counts
    if not isinstance(v, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in v
    ):
        raise ProfileError(f"{where}: expected a list of non-negative integers")
    raise ProfileError(f"{where}: expected a list of non-negative integers (at most 2**63 - 1)")


def _float_list(v: list[Any], where: str) -> np.ndarray:
    """Numbers, or ``"nan"``/``"inf"``/``"-inf"``, as float64 (the checks of :func:`_j2f`)."""
    if set(map(type, v)) <= {int, float}:  # the usual list: numbers only, no bool
        try:
            return np.asarray(v, dtype=np.float64).reshape(-1)
        except OverflowError:
            pass
    return np.array([_j2f(e, where) for e in v], dtype=np.float64)
