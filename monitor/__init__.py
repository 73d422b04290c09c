"""driftmon: streaming drift and model monitoring.

The library API is the statistics engine: build a reference profile, feed batches to a
slot window, evaluate the window against the profile.
"""

from __future__ import annotations

import gc

from monitor import _numba_cache

# Before anything below imports numba: it reads NUMBA_CACHE_DIR once, at import.
_numba_cache.configure()

# numba, numpy and scipy build a few hundred thousand long-lived objects on import, and
# every full collection walks them all: none runs during the import, and what it built is
# frozen (never walked again; cycles made later are still collected). About a fifth of a
# warm ``driftmon replay``'s start-up CPU went to those collections.
_collecting = gc.isenabled()
gc.disable()
_numba_cache.install_locator()  # imports numba: before the kernel modules below
from monitor._numba_blas import defer_probe  # noqa: E402
from monitor.errors import ProfileError  # noqa: E402
from monitor.stats import (  # noqa: E402
    TESTS,
    CategoricalProfile,
    CountWindowSpec,
    DriftResult,
    DriftThresholds,
    FeatureKind,
    FeatureResult,
    NumericProfile,
    ReferenceProfile,
    SlideInfo,
    SlotWindow,
    TimeWindowSpec,
    WindowCounts,
    build_profile,
    evaluate,
    warmup,
)

defer_probe()  # numba's BLAS probe would import all of scipy.linalg at first dispatch
gc.freeze()
if _collecting:
    gc.enable()

__version__ = "0.1.0"

__all__ = [
    "TESTS",
    "CategoricalProfile",
    "CountWindowSpec",
    "DriftResult",
    "DriftThresholds",
    "FeatureKind",
    "FeatureResult",
    "NumericProfile",
    "ProfileError",
    "ReferenceProfile",
    "SlideInfo",
    "SlotWindow",
    "TimeWindowSpec",
    "WindowCounts",
    "__version__",
    "build_profile",
    "evaluate",
    "warmup",
]
