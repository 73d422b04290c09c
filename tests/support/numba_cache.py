"""Numba caches for first-start tests: the suite's warm cache minus chosen kernels.

Compiling every kernel cold costs about a minute of CPU; CI does it once in ``make warm``
and once in the one truly cold start (``tests/integration/test_cold_start.py``). Every
other first-run test takes a copy of the warm cache without the kernels whose compile it
needs to see, so it still starts with a cache miss (the same code path as an empty cache:
the "compiling" messages, the progress, a child compiling the scanner) but compiles
only those.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import monitor

__all__ = ["cached_kernels", "cache_without"]

WARM = "from monitor.app.kernels import warm_all; warm_all()"


def kernel_name(cache_file: Path) -> str:
    """The function a Numba cache file belongs to (``binning.numeric_kernel.locals.
    _bin_numeric-117.py311.nbi`` -> ``_bin_numeric``): tests name kernels by function,
    so a kernel may move between modules."""
    return cache_file.name.split("-")[0].rsplit(".", 1)[-1]


def cached_kernels(cache: Path) -> set[str]:
    """The kernels in ``cache``, by function name."""
    return {kernel_name(p) for p in cache.rglob("*.nbi")}


def _default_cache() -> Path:
    """The suite's cache, filled by ``make warm`` (loaded, not compiled, when it is)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    subprocess.run([sys.executable, "-c", WARM], env=env, check=True, timeout=900)
    from monitor._numba_cache import cache_dir

    return Path(os.environ.get("NUMBA_CACHE_DIR") or cache_dir())


def _ours(cache: Path) -> set[str]:
    """The cache's folders of this checkout's modules (Numba names one per source folder:
    its name and the SHA-1 of its path); a shared cache holds other checkouts' too."""
    package = Path(monitor.__file__).resolve().parent
    folders = {package, *(p.parent for p in package.rglob("*.py"))}
    return {
        f"{d.name}_{hashlib.sha1(str(d).encode(), usedforsecurity=False).hexdigest()}"
        for d in folders
    }


def cache_without(dest: Path, kernels: Iterable[str]) -> Path:
    """``dest``: a copy of the warm cache with ``kernels`` (function names) left out."""
    missing = set(kernels)
    source = _default_cache()
    ours = _ours(source)

    def ignore(folder: str, names: list[str]) -> list[str]:
        if Path(folder) == source:
            return [n for n in names if n not in ours]
        cached = [n for n in names if n.endswith((".nbi", ".nbc"))]
        return [n for n in cached if kernel_name(Path(n)) in missing]

    shutil.copytree(source, dest, ignore=ignore)
    left = cached_kernels(dest)
    assert not missing & left, f"still cached: {missing & left}"
    return dest
