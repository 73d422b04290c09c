"""Where compiled Numba kernels are cached: a per-user directory unless the user chose one.

Numba's default writes the cache next to the source (``__pycache__`` inside the package),
so an editable install would write into the checkout and a read-only install would not
cache at all. ``monitor/__init__`` calls :func:`configure` before anything imports numba.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["cache_dir", "configure", "default_cache_dir"]


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


def cache_dir() -> Path:
    """The directory the kernels of this process are cached in."""
    return Path(os.environ.get("NUMBA_CACHE_DIR") or default_cache_dir())
