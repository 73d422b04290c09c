"""Where compiled Numba kernels are cached: a per-user directory unless the user chose one.

Numba's default writes the cache next to the source (``__pycache__`` inside the package),
so an editable install would write into the checkout and a read-only install would not
cache at all. ``monitor/__init__`` calls :func:`configure` before anything imports numba.

Numba keys a cached kernel by its own source file only, but the scanner and the binning
kernels inline helpers from other modules (``jsonlex``, ``scan_template``, ``bin_grid``):
a checkout where only a helper changed kept running the old compiled code. Every kernel of
this package is therefore keyed by the sources of all its kernel modules as well
(:func:`kernel_sources_digest`): a change to any of them recompiles them all.
"""

from __future__ import annotations

import hashlib
import os
import sys
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "cache_dir",
    "configure",
    "default_cache_dir",
    "install_locator",
    "kernel_sources_digest",
]

_PACKAGE = Path(__file__).resolve().parent


def default_cache_dir(environ: dict[str, str] | os._Environ[str] | None = None) -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/driftmon/numba``.

    >>> str(default_cache_dir({"XDG_CACHE_HOME": "/tmp/c"}))
    '/tmp/c/driftmon/numba'
    """
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base) / "driftmon" / "numba"


def configure() -> Path:
    """Set ``NUMBA_CACHE_DIR`` to the default unless the user set it; the directory used."""
    chosen = os.environ.get("NUMBA_CACHE_DIR")
    if chosen:
        return Path(chosen)
    path = default_cache_dir()
    os.environ["NUMBA_CACHE_DIR"] = str(path)
    numba_config = sys.modules.get("numba.core.config")
    if numba_config is not None:
        # numba was imported first and has read its environment already
        numba_config.CACHE_DIR = str(path)  # type: ignore[attr-defined]
    return path


#: What marks a module that defines kernels: numba's decorators and intrinsics, and
#: ``no_nrt`` (jsonlex's njit without reference counting, which scanner.py uses alone).
_KERNEL_MARKS = (b"njit", b"no_nrt", b"intrinsic")


@cache
def kernel_sources_digest(package: Path = _PACKAGE) -> bytes:
    """SHA-256 of the package's modules that define kernels (paths and contents), read
    once a process (about 10 ms), when the first kernel is compiled or loaded."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        data = path.read_bytes()
        if any(mark in data for mark in _KERNEL_MARKS):
            digest.update(str(path.relative_to(package)).encode() + b"\0")
            digest.update(data)
    return digest.digest()


def install_locator() -> None:
    """Put a locator first in numba's list that stamps this package's kernels with
    :func:`kernel_sources_digest` besides their own file's hash (see the module doc);
    before any kernel module is imported (``monitor/__init__``; idempotent)."""
    from numba.core import caching

    locators: list[Any] = caching.CacheImpl._locator_classes  # noqa: SLF001
    if any(getattr(cls, "_driftmon", False) for cls in locators):
        return

    class PackageCacheLocator(caching.UserProvidedCacheLocator):
        _driftmon = True

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Any:
            if not Path(py_file).resolve().is_relative_to(_PACKAGE):
                return None  # another package's kernels: numba's own locators
            return super().from_function(py_func, py_file)  # type: ignore[no-untyped-call]

        def get_source_stamp(self) -> Any:
            return super().get_source_stamp(), kernel_sources_digest()  # type: ignore[no-untyped-call]

    locators.insert(0, PackageCacheLocator)


def cache_dir() -> Path:
    """The directory the kernels of this process are cached in."""
    return Path(os.environ.get("NUMBA_CACHE_DIR") or default_cache_dir())
