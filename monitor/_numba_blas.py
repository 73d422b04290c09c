"""Numba's import-time BLAS probe, answered without importing ``scipy.linalg``.

When numba first dispatches a kernel it loads its target registries, and one of them
(``numba.np.arraymath``) asks at import whether a BLAS is available for ``np.dot``:
``numba.np.linalg.ensure_blas`` imports ``scipy.linalg.cython_blas``, that is the whole of
``scipy.linalg``, which pulls in ``numpy.f2py`` and ``charset_normalizer`` through
scipy's array-API layer. No driftmon kernel uses BLAS, and nothing else in a
``driftmon replay`` or ``run`` imports ``scipy.linalg``: that import was a tenth to a
quarter of a warm start-up's CPU.

:func:`defer_probe` answers that one question from the installed files (is scipy's
``cython_blas`` extension there) and puts numba's own ``ensure_blas`` back at once, so
every later caller (a kernel that does use ``np.dot`` or ``np.linalg``) runs the real
check, and the BLAS functions are still resolved from ``scipy.linalg.cython_blas`` when
such a kernel is compiled.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["blas_installed", "defer_probe"]


def blas_installed() -> bool:
    """Whether scipy's ``linalg/cython_blas`` extension is installed (nothing imported)."""
    spec = importlib.util.find_spec("scipy")
    if spec is None or spec.origin is None:
        return False
    return any((Path(spec.origin).parent / "linalg").glob("cython_blas.*"))


def defer_probe() -> None:
    """Answer the next ``ensure_blas()`` (arraymath's probe) from the installed files."""
    import numba.np.linalg as linalg

    original: Callable[[], None] | None = getattr(linalg, "ensure_blas", None)
    if original is None or "numba.np.arraymath" in sys.modules:
        return  # a numba without this probe, or the probe already ran

    def probe() -> None:
        linalg.ensure_blas = original  # only this first call is answered here
        if not blas_installed():
            raise ImportError("scipy 0.16+ is required for linear algebra")
        check_width = getattr(linalg, "_check_lapack_int_width", None)
        if check_width is not None:  # numba's guard against a BLAS of the other int width
            check_width()  # reads scipy.__config__ only

    linalg.ensure_blas = probe
