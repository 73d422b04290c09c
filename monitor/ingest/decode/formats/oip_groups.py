"""After :mod:`.oip_scan`: a batch's messages grouped by tensor set, a string column's
distinct values (bytes compared; hashes only find candidates), and a group's numbers
gathered into its feature columns, in Numba passes."""

from __future__ import annotations

import numpy as np

from monitor.ingest.decode.formats.oip_scan import (
    T_DTYPE,
    T_NAME_E,
    T_NAME_S,
    T_WIDTH,
    scan_bodies,
)
from monitor.ingest.decode.formats.oip_scan import warmup as scan_warmup
from monitor.ingest.decode.jsonlex import no_nrt

__all__ = ["MAX_GROUPS", "distinct_strings", "gather_numbers", "group_messages", "warmup"]


@no_nrt()
def _equal(buf: np.ndarray, str_start: np.ndarray, str_end: np.ndarray, a: int, b: int) -> bool:
    n = str_end[a] - str_start[a]
    if n != str_end[b] - str_start[b]:
        return False
    for t in range(n):
        if buf[str_start[a] + t] != buf[str_start[b] + t]:
            return False
    return True


@no_nrt()
def distinct_strings(
    buf: np.ndarray,
    str_start: np.ndarray,
    str_end: np.ndarray,
    str_hash: np.ndarray,
    idx: np.ndarray,
    table: np.ndarray,
    inverse: np.ndarray,
    reps: np.ndarray,
) -> int:
    """The distinct strings among ``idx`` (bytes compared, the hash only finds them):
    ``reps[:count]`` the first of each, ``inverse[k]`` which one ``idx[k]`` is; ``table``
    (a power of two over twice ``len(idx)``) is scratch. Returns ``count``."""
    table[:] = -1
    mask = len(table) - 1
    count = 0
    for k in range(len(idx)):
        v = idx[k]
        slot = str_hash[v] & mask
        while True:
            d = table[slot]
            if d < 0:
                table[slot] = count
                reps[count] = v
                inverse[k] = count
                count += 1
                break
            if str_hash[reps[d]] == str_hash[v] and _equal(buf, str_start, str_end, reps[d], v):
                inverse[k] = d
                break
            slot = (slot + 1) & mask
    return count


@no_nrt()
def gather_numbers(
    values: np.ndarray,
    offsets: np.ndarray,
    counts: np.ndarray,
    widths: np.ndarray,
    column: np.ndarray,
    out: np.ndarray,
) -> None:
    """Row ``r`` of message ``m``, column ``c`` of tensor ``j`` (row-major from
    ``offsets[m, j]`` in ``values``) into ``out[row, column[j, c]]`` where that is >= 0;
    a group's messages' rows follow each other in ``out``. One call per group instead of
    a numpy gather per feature column."""
    r0 = 0
    for m in range(offsets.shape[0]):
        n = counts[m]
        for j in range(offsets.shape[1]):
            w = widths[j]
            base = offsets[m, j]
            for c in range(w):
                col = column[j, c]
                if col < 0:
                    continue
                for r in range(n):
                    out[r0 + r, col] = values[base + r * w + c]
        r0 += n


#: Most distinct tensor sets in one batch; messages of further ones go the orjson way.
MAX_GROUPS = 64


@no_nrt()
def _same_set(buf: np.ndarray, n_tensors: np.ndarray, tensor: np.ndarray, a: int, b: int) -> bool:
    if n_tensors[a] != n_tensors[b]:
        return False
    for j in range(n_tensors[a]):
        ta, tb = tensor[a, j], tensor[b, j]
        if ta[T_DTYPE] != tb[T_DTYPE] or ta[T_WIDTH] != tb[T_WIDTH]:
            return False
        n = ta[T_NAME_E] - ta[T_NAME_S]
        if n != tb[T_NAME_E] - tb[T_NAME_S]:
            return False
        for t in range(n):
            if buf[ta[T_NAME_S] + t] != buf[tb[T_NAME_S] + t]:
                return False
    return True


@no_nrt()
def group_messages(
    buf: np.ndarray,
    status: np.ndarray,
    is_request: np.ndarray,
    n_tensors: np.ndarray,
    tensor: np.ndarray,
    group: np.ndarray,
    first: np.ndarray,
) -> int:
    """Messages read alike (request or response, the same tensor names, datatypes and
    widths in the same order) share ``group[i]``; ``first[g]`` is group g's first message;
    -1 for slow messages and those past ``len(first)`` groups. Returns the group count."""
    groups = 0
    for i in range(len(status)):
        group[i] = -1
        if status[i] != 0:
            continue
        for g in range(groups):
            f = first[g]
            if is_request[f] == is_request[i] and _same_set(buf, n_tensors, tensor, f, i):
                group[i] = g
                break
        if group[i] < 0 and groups < len(first):
            first[groups] = i
            group[i] = groups
            groups += 1
    return groups


def warmup() -> None:
    """Compile (or load) the scanner and these kernels on a request and a response."""
    scan_warmup()
    messages = [b'{"inputs": [{"name": "c", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}']
    ends = np.array([len(messages[0])], np.int64)
    buf = np.frombuffer(messages[0], np.uint8)
    res = scan_bodies(buf, ends - ends, ends)
    group = np.empty(1, np.int64)
    first = np.empty(MAX_GROUPS, np.int64)
    group_messages(buf, res.status, res.is_request, res.n_tensors, res.tensor, group, first)
    gather_numbers(
        np.zeros(1), np.zeros((1, 1), np.int64), np.ones(1, np.int64), np.ones(1, np.int64),
        np.zeros((1, 1), np.int64), np.empty((1, 1)),
    )  # fmt: skip
    one = np.zeros(1, np.int64)
    distinct_strings(
        buf, res.str_start, res.str_end, res.str_hash, one, np.empty(4, np.int64),
        np.empty(1, np.int64), np.empty(1, np.int64),
    )  # fmt: skip
