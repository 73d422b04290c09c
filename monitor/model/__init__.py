"""One model's life: reference, windows, thresholds, alerts, versions, performance, state.

The names other areas use are re-exported here.
"""

from monitor.model.evaluation import Evaluation, ModelStep
from monitor.model.model import Model, build_model
from monitor.model.monitor import ModelMonitor
from monitor.model.reference_file import ModelReference, ReferenceFile, load_references
from monitor.model.versioned import VersionedModel

__all__ = [
    "Evaluation",
    "Model",
    "ModelMonitor",
    "ModelReference",
    "ModelStep",
    "ReferenceFile",
    "VersionedModel",
    "build_model",
    "load_references",
]
