"""The library surface is exactly what monitor.__all__ says."""

from __future__ import annotations

import monitor
import monitor.stats


def test_monitor_all_is_pinned():
    assert monitor.__all__ == [
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
    assert monitor.__version__ == "0.1.0"
    for name in monitor.__all__:
        assert hasattr(monitor, name)


def test_stats_all_is_complete():
    assert len(set(monitor.stats.__all__)) == len(monitor.stats.__all__)
    public = {n for n in vars(monitor.stats) if not n.startswith("_")}
    import types

    # Submodules appear as attributes once anything imports them; they are not API names.
    modules = {n for n in public if isinstance(getattr(monitor.stats, n), types.ModuleType)}
    assert set(monitor.stats.__all__) == public - modules - {"annotations"}
