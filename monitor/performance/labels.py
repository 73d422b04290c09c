"""Labels as they arrive: raw JSON values to float64, and the buckets of their delay."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from monitor.performance.metrics import Task
from monitor.performance.spec import PerformanceSpec

__all__ = ["LABEL_DELAY_BUCKETS", "encode_labels"]

#: Suggested buckets of ``driftmon_label_delay_seconds``: seconds (clicks) to a month
#: (chargebacks), in event time.
LABEL_DELAY_BUCKETS = (
    1.0,
    10.0,
    60.0,
    600.0,
    3600.0,
    6 * 3600.0,
    86_400.0,
    3 * 86_400.0,
    7 * 86_400.0,
    14 * 86_400.0,
    30 * 86_400.0,
)


def encode_labels(values: Sequence[Any], spec: PerformanceSpec) -> np.ndarray:
    """Raw label values (as decoded from JSON) to float64; NaN marks an unusable label.

    Binary: ``0``/``1``, ``true``/``false``, or a name from ``classes`` (``classes[1]`` is
    the positive class). Multiclass: a class name (integers match their decimal string)
    to its index. Regression: a finite number.
    """
    out = np.full(len(values), math.nan)
    if spec.task is Task.REGRESSION:
        for i, v in enumerate(values):
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                out[i] = float(v)
        return out
    index = {name: float(i) for i, name in enumerate(spec.classes)}
    if spec.task is Task.BINARY:
        index.update({"0": 0.0, "1": 1.0, "false": 0.0, "true": 1.0})
    for i, v in enumerate(values):
        if isinstance(v, bool):
            key = "true" if v else "false"
        elif isinstance(v, int) or (isinstance(v, float) and v.is_integer()):
            key = str(int(v))
        elif isinstance(v, str):
            key = v
        else:
            continue
        out[i] = index.get(key, math.nan)
    return out
