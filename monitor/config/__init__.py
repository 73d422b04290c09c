"""The YAML configuration contract as frozen pydantic models.

``load_config(path)`` reads the YAML file, overlays ``DRIFTMON_`` environment variables
(``__`` separates nesting levels, values are parsed as YAML scalars or flow collections),
validates everything and raises one :class:`~monitor.errors.ConfigError` that lists every
problem as ``key.path: message (hint: ...)``. It never lets a pydantic or YAML traceback
through.

Model names, feature names and prediction classes become Prometheus label values, so they
are restricted to a safe character set and length. The number of drift series a config
creates (models x features x tests) is checked against ``limits.max_series`` at load.

The package is split by section; this module re-exports the names the rest of driftmon
uses:

* ``service``: ``kafka``, ``http``, ``log``, ``state`` and ``limits``;
* ``windows``: a model's ``reference`` and ``window``;
* ``features`` and ``thresholds``: features, prediction, tests and their thresholds;
* ``alert``, ``versions``, ``performance``: the rest of a model; ``model``: ``ModelConfig``;
* ``timestamps``: how event times written without an offset are read;
* ``root``: ``Config`` and its cross-section checks;
* ``loader`` and ``env``: reading a file and the ``DRIFTMON_`` overlay;
* ``problems``: turning validation errors into messages and hints.

Example::

    >>> cfg = Config.model_validate({
    ...     "kafka": {"bootstrap_servers": "127.0.0.1:9092", "topics": ["ml.inference"]},
    ...     "models": {"fraud": {
    ...         "reference": {"capture_events": 5000},
    ...         "window": {"events": 2000, "slide": 500},
    ...         "features": {"amount": {"type": "numeric"}, "country": {"type": "categorical"}},
    ...         "prediction": {"type": "numeric"},
    ...     }},
    ... })
    >>> cfg.models["fraud"].feature_kinds()
    {'amount': 'numeric', 'country': 'categorical', 'prediction': 'numeric'}
    >>> cfg.models["fraud"].tests_for("country")
    ('psi', 'js', 'chi2')
    >>> cfg.series_count
    12
"""

from __future__ import annotations

from monitor.config.alert import AlertConfig
from monitor.config.env import ENV_PREFIX
from monitor.config.features import FeatureConfig, FeatureKindName, PredictionConfig
from monitor.config.loader import (
    load_config,
    read_config_data,
    reference_files,
    reference_path,
    validate_config,
)
from monitor.config.model import ModelConfig
from monitor.config.performance import (
    ESTIMATED_METRICS,
    PERFORMANCE_METRICS,
    EstimationConfig,
    JoinConfig,
    MetricThresholdConfig,
    PerformanceConfig,
    PerformanceWindowConfig,
    TaskName,
)
from monitor.config.problems import render_problems
from monitor.config.root import OFFLINE_TOPIC, Config
from monitor.config.scaleout import ScaleOutConfig
from monitor.config.service import (
    FieldNames,
    HttpConfig,
    KafkaConfig,
    LimitsConfig,
    LogConfig,
    StateConfig,
    TopicConfig,
)
from monitor.config.thresholds import MinEffectConfig, PartialThresholds, ThresholdsConfig
from monitor.config.timestamps import TimestampsConfig
from monitor.config.versions import VersionsConfig
from monitor.config.windows import CaptureReference, CountWindowConfig, TimeWindowConfig
from monitor.stats import TESTS  # the drift-test names a config may list

__all__ = [
    "ENV_PREFIX",
    "ESTIMATED_METRICS",
    "OFFLINE_TOPIC",
    "PERFORMANCE_METRICS",
    "TESTS",
    "AlertConfig",
    "CaptureReference",
    "ScaleOutConfig",
    "Config",
    "CountWindowConfig",
    "EstimationConfig",
    "FeatureConfig",
    "FeatureKindName",
    "FieldNames",
    "HttpConfig",
    "JoinConfig",
    "KafkaConfig",
    "LimitsConfig",
    "LogConfig",
    "MetricThresholdConfig",
    "MinEffectConfig",
    "ModelConfig",
    "PartialThresholds",
    "PerformanceConfig",
    "PerformanceWindowConfig",
    "PredictionConfig",
    "StateConfig",
    "TaskName",
    "ThresholdsConfig",
    "TimeWindowConfig",
    "TimestampsConfig",
    "TopicConfig",
    "VersionsConfig",
    "load_config",
    "read_config_data",
    "reference_files",
    "reference_path",
    "render_problems",
    "validate_config",
]
