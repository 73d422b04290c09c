"""The statistics engine: reference profiles, slot windows and drift tests.

Imports numpy, numba, scipy and ``monitor.errors`` only.
"""

from __future__ import annotations

from monitor.stats.drift import (
    DEFAULT_TESTS,
    EPSILON,
    MISSING_RATIO_KEY,
    REGISTRY,
    SEQUENTIAL_TESTS,
    TESTS,
    THRESHOLD_SCALES,
    WINDOW_TESTS,
    DriftResult,
    DriftTest,
    DriftThresholds,
    FeatureResult,
    ThresholdScale,
    evaluate,
)
from monitor.stats.profile import (
    MAX_OTHER_VALUES,
    OTHER,
    PROFILE_SCHEMA_VERSION,
    UNSEEN,
    CategoricalProfile,
    CategoryCodes,
    FeatureKind,
    NumericProfile,
    ReferenceProfile,
    build_profile,
)
from monitor.stats.warmup import warmup
from monitor.stats.window import (
    CountWindowSpec,
    SlideInfo,
    SlotWindow,
    TimeWindowSpec,
    WindowCounts,
)

__all__ = [
    "DEFAULT_TESTS",
    "EPSILON",
    "MAX_OTHER_VALUES",
    "MISSING_RATIO_KEY",
    "OTHER",
    "PROFILE_SCHEMA_VERSION",
    "REGISTRY",
    "SEQUENTIAL_TESTS",
    "TESTS",
    "WINDOW_TESTS",
    "THRESHOLD_SCALES",
    "UNSEEN",
    "CategoricalProfile",
    "CategoryCodes",
    "CountWindowSpec",
    "DriftResult",
    "DriftTest",
    "DriftThresholds",
    "FeatureKind",
    "FeatureResult",
    "NumericProfile",
    "ReferenceProfile",
    "SlideInfo",
    "SlotWindow",
    "ThresholdScale",
    "TimeWindowSpec",
    "WindowCounts",
    "build_profile",
    "evaluate",
    "warmup",
]
