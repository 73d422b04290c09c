"""Model performance: delayed labels joined to predictions, and estimates before they arrive.

* :mod:`~monitor.performance.join`: the bounded join store (either arrival order, event
  time limits, evictions and duplicates counted).
* :mod:`~monitor.performance.metrics`: realised metrics over a window of joined rows,
  defined as scikit-learn defines them.
* :mod:`~monitor.performance.estimate`: confidence-based estimation for classifiers.
* :mod:`~monitor.performance.spec`: what to monitor (the ``task`` and ``performance``
  sections); :mod:`~monitor.performance.thresholds`: the limits and their crossings.
* :mod:`~monitor.performance.labels`: raw label values encoded, label-delay buckets.
* :mod:`~monitor.performance.reference`: the metric values and estimator of the reference.
* :mod:`~monitor.performance.monitor`: one model's monitor (join, windows, evaluations);
  :mod:`~monitor.performance.result`: what it reports, and the alert input.
* :mod:`~monitor.performance.payload`: a confirmed performance alert as a webhook event.

Imports: numpy, numba, :mod:`monitor.errors`, :mod:`monitor.stats` (result types) and
:mod:`monitor.webhooks.event`; nothing above them in the data flow.
"""

from monitor.performance.estimate import (
    ESTIMATED_METRICS,
    IsotonicCalibrator,
    PerformanceEstimator,
)
from monitor.performance.join import EvictionReason, JoinedRows, JoinLimits, JoinStore
from monitor.performance.labels import LABEL_DELAY_BUCKETS, encode_labels
from monitor.performance.metrics import (
    HIGHER_IS_BETTER,
    METRICS,
    PerformanceWindow,
    Task,
    WindowSlide,
    compute_metrics,
)
from monitor.performance.monitor import PerformanceMonitor
from monitor.performance.payload import performance_event, performance_payload
from monitor.performance.reference import ReferencePerformance
from monitor.performance.result import PerformanceResult, PerformanceStatus
from monitor.performance.spec import EstimationSpec, PerformanceSpec
from monitor.performance.thresholds import Crossing, Threshold

__all__ = [
    "ESTIMATED_METRICS",
    "HIGHER_IS_BETTER",
    "LABEL_DELAY_BUCKETS",
    "METRICS",
    "Crossing",
    "EstimationSpec",
    "EvictionReason",
    "IsotonicCalibrator",
    "JoinLimits",
    "JoinStore",
    "JoinedRows",
    "PerformanceEstimator",
    "PerformanceMonitor",
    "PerformanceResult",
    "PerformanceSpec",
    "PerformanceStatus",
    "PerformanceWindow",
    "ReferencePerformance",
    "Task",
    "Threshold",
    "WindowSlide",
    "compute_metrics",
    "encode_labels",
    "performance_event",
    "performance_payload",
]
