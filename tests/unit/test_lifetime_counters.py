"""Exported counters only go up for the life of the process: a model reset (partitions
lost) or a restore from another replica's checkpoint moves the model's own totals, never
the ``driftmon_*_total`` a Prometheus ``increase()`` reads."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from monitor.config import validate_config
from monitor.pipeline import Pipeline
from monitor.publish.health import Health
from monitor.publish.metrics import Metrics
from monitor.publish.results import ResultsStore
from tests.support.metrics import sample_value
from tests.support.results import INVALID_REASONS

CONFIG = {
    "kafka": {"bootstrap_servers": "127.0.0.1:9", "topics": ["t"]},
    "models": {
        "m": {
            "reference": {"capture_events": 200},
            "window": {"events": 300, "slide": 100},
            "features": {"x": {"type": "numeric"}},
        }
    },
}


def payloads(n: int, start: int = 0) -> list[bytes]:
    xs = np.random.default_rng(start).normal(size=n)
    return [
        f'{{"model": "m", "ts": {1.7e9 + start + i}, "features": {{"x": {x:.6f}}}}}'.encode()
        for i, x in enumerate(xs)
    ]


def exported(registry: CollectorRegistry, name: str) -> float:
    value = sample_value(generate_latest(registry).decode(), name, model="m")
    assert value is not None, name
    return value


def test_counters_survive_a_reset_and_ignore_a_restore() -> None:
    config = validate_config(CONFIG)
    registry, results = CollectorRegistry(), ResultsStore()
    Metrics(registry, results, Health(), invalid_reasons=INVALID_REASONS, models=["m"])
    pipeline = Pipeline(config, {}, results)

    pipeline.process(payloads(600), np.zeros(600))
    assert exported(registry, "driftmon_events_total") == 600
    evaluations = exported(registry, "driftmon_evaluations_total")
    assert evaluations > 0
    saved = pipeline.model_state("m", ["t/0"])  # as another replica would checkpoint it

    pipeline.reset("m")  # partitions lost: the model starts over
    assert pipeline.events_seen("m") == 0
    assert exported(registry, "driftmon_events_total") == 600
    assert exported(registry, "driftmon_evaluations_total") == evaluations

    pipeline.process(payloads(100, start=600), np.zeros(100))
    assert exported(registry, "driftmon_events_total") == 700

    pipeline.reset("m")
    pipeline.restore_model("m", saved)  # handed over: 600 events of someone else's count
    assert pipeline.events_seen("m") == 600
    assert exported(registry, "driftmon_events_total") == 700
    pipeline.process(payloads(50, start=700), np.zeros(50))
    assert exported(registry, "driftmon_events_total") == 750
    assert exported(registry, "driftmon_evaluations_total") >= evaluations
