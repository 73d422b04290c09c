"""The scanner's key table: field slots, namespaces and the hash lookup of byte strings,
shared by the general scanner (:mod:`~monitor.ingest.decode.scanner`) and its template
fast path (:mod:`~monitor.ingest.decode.scan_template`)."""

from __future__ import annotations

import numpy as np
from numba import njit

from monitor.ingest.decode.jsonlex import same_bytes

__all__ = [
    "F_FEATURES",
    "F_ID",
    "F_LABEL",
    "F_MODEL",
    "F_PREDICTION",
    "F_TS",
    "F_VERSION",
    "MAX_TS",
    "NS_MODEL",
    "NS_TOP",
    "PRED_CATEGORICAL",
    "PRED_NONE",
    "PRED_NUMERIC",
    "PRED_PROBABILITIES",
    "TOP_FIELDS",
    "fill_table",
    "lookup",
]

#: Top-level field slots, in this order, of the ``top`` argument of ``build_tables``.
TOP_FIELDS = ("model", "ts", "id", "features", "prediction", "version", "label")
F_MODEL, F_TS, F_ID, F_FEATURES, F_PREDICTION, F_VERSION, F_LABEL = range(7)

#: Namespaces of the top-level field names and of the model names (then one per model's
#: feature keys, class keys and categorical vocabularies).
NS_TOP = 0
NS_MODEL = 1
#: Prediction kinds.
PRED_NONE, PRED_NUMERIC, PRED_CATEGORICAL, PRED_PROBABILITIES = range(4)
#: Event times at or beyond this (seconds) are passed on.
MAX_TS = 1e11

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@njit(cache=True, inline="always")
def _hash(buf: np.ndarray, a: int, b: int, ns: int) -> np.uint64:
    """FNV-1a over ``buf[a:b]``, seeded with the namespace."""
    h = (_FNV_OFFSET ^ np.uint64(ns)) * _FNV_PRIME
    for i in range(a, b):
        h = (h ^ np.uint64(buf[i])) * _FNV_PRIME
    return h


@njit(cache=True)
def fill_table(
    table: np.ndarray, key_bytes: np.ndarray, key_start: np.ndarray, key_ns: np.ndarray
) -> None:
    mask = len(table) - 1
    for k in range(len(key_ns)):
        h = _hash(key_bytes, key_start[k], key_start[k + 1], key_ns[k])
        slot = np.int64(h & np.uint64(mask))
        while table[slot] != 0:
            slot = (slot + 1) & mask
        table[slot] = k + 1


@njit(cache=True, inline="always")
def lookup(
    buf: np.ndarray,
    a: int,
    b: int,
    ns: int,
    key_bytes: np.ndarray,
    key_start: np.ndarray,
    key_ns: np.ndarray,
    table: np.ndarray,
) -> int:
    """Index of the entry ``(ns, buf[a:b])``, or -1."""
    mask = len(table) - 1
    slot = np.int64(_hash(buf, a, b, ns) & np.uint64(mask))
    n = b - a
    while True:
        entry = table[slot]
        if entry == 0:
            return -1
        k = entry - 1
        s = key_start[k]
        if key_ns[k] == ns and key_start[k + 1] - s == n and same_bytes(buf, a, key_bytes, s, n):
            return int(k)
        slot = (slot + 1) & mask
