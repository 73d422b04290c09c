"""driftmon: streaming drift and model monitoring.

The library API is the statistics engine: build a reference profile, feed batches to a
slot window, evaluate the window against the profile.
"""

from __future__ import annotations

from monitor import _numba_cache

# Before anything below imports numba: it reads NUMBA_CACHE_DIR once, at import.
_numba_cache.configure()

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
