"""Whether decode may use the columnar scanner yet.

The scanner is the slowest kernel to compile (about three quarters of a cold start). Decode
gives the same columns without it, through the object paths, only slower; so a first start
can consume while the scanner compiles elsewhere and switch to it once it is loaded. Open
by default: a library user or a test compiles it on first use, as before.
"""

from __future__ import annotations

import threading

__all__ = ["close", "is_open", "open_"]

_open = threading.Event()
_open.set()


def is_open() -> bool:
    """True when decode may call the scanner (its kernels are loaded or may compile now)."""
    return _open.is_set()


def close() -> None:
    """Decode takes the object paths until :func:`open_`."""
    _open.clear()


def open_() -> None:
    """Decode uses the scanner again."""
    _open.set()
