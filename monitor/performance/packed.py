"""Strings as two numpy arrays (UTF-8 bytes and end offsets), for checkpoints.

A fixed-width numpy unicode array stores every string in 4 bytes x the longest one, so a
single 100 KB id among 2,000 short ones made an 800 MB checkpoint. Packed, the cost is
the strings' own UTF-8 length plus 8 bytes each.

    >>> data, ends = pack_strings(["a", "bé", ""])
    >>> data.tobytes(), ends.tolist()
    (b'ab\\xc3\\xa9', [1, 4, 4])
    >>> unpack_strings(data, ends)
    ['a', 'bé', '']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["pack_strings", "unpack_strings"]


def pack_strings(strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(uint8 bytes, int64 end offsets)`` of the strings, UTF-8 encoded."""
    encoded = [s.encode("utf-8", "surrogatepass") for s in strings]
    ends = np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)), dtype=np.int64)
    return np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), ends


def unpack_strings(data: np.ndarray, ends: np.ndarray) -> list[str]:
    """Inverse of :func:`pack_strings`; ``ValueError`` when the offsets do not fit."""
    raw = np.asarray(data, dtype=np.uint8).tobytes()
    stops = np.asarray(ends, dtype=np.int64)
    if stops.ndim != 1 or (stops.size and (stops[-1] != len(raw) or np.any(np.diff(stops) < 0))):
        raise ValueError("packed string offsets do not match their bytes")
    if stops.size and stops[0] < 0:
        raise ValueError("packed string offsets do not match their bytes")
    bounds = stops.tolist()
    starts = [0, *bounds[:-1]] if bounds else []
    return [raw[a:b].decode("utf-8", "surrogatepass") for a, b in zip(starts, bounds, strict=True)]
