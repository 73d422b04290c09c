"""Scale-out: a model's last event time and waiting halves are exported by its owner only."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from monitor.publish.health import Health
from monitor.publish.metrics import Metrics
from monitor.publish.results import ResultsStore

FAMILY = "driftmon_last_event_timestamp_seconds"


def exported(registry: CollectorRegistry) -> dict[str, float]:
    return {
        s.labels["model"]: s.value
        for family in registry.collect()
        if family.name == FAMILY
        for s in family.samples
    }


def test_only_owned_models_export_their_last_event_time() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(
        registry, ResultsStore(), Health(), invalid_reasons=["bad"], models=["a", "b"]
    )
    metrics.own_models(set())  # stage 2 starts owning nothing
    assert exported(registry) == {}
    metrics.own_models({"a"})
    metrics.note_last_events({"a": 100.0})
    assert exported(registry) == {"a": 100.0}
    metrics.own_models({"b"})  # a handed over, b taken: the stale 100 goes with it
    metrics.note_last_events({"b": 200.0})
    assert exported(registry) == {"b": 200.0}
    metrics.own_models({"a", "b"})  # a is back: exported again from its next batch
    metrics.note_last_events({"a": 300.0})
    assert exported(registry) == {"a": 300.0, "b": 200.0}
    metrics.bind_models(["b"])  # a leaves the config while owned
    metrics.own_models(set())
    metrics.bind_models(["a", "b"])  # a disowned model can leave and come back
    assert exported(registry) == {"a": 0.0}


def pending(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (s.labels["model"], s.labels["half"]): s.value
        for family in registry.collect()
        if family.name == "driftmon_pairing_pending"
        for s in family.samples
    }


def test_only_the_owner_exports_its_waiting_halves() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(
        registry, ResultsStore(), Health(), invalid_reasons=["bad"], models=["a", "b"]
    )
    metrics.own_models({"a"})
    metrics.count_pairing({}, {"a": 3}, {("a", "request"): 5.0, ("a", "response"): 2.0})
    assert pending(registry) == {("a", "request"): 5.0, ("a", "response"): 2.0}
    metrics.own_models({"b"})  # a handed over: its new owner reports them, not a stale 5
    assert pending(registry) == {}
    metrics.own_models({"a", "b"})
    metrics.count_pairing({}, {"a": 1}, {("a", "request"): 4.0, ("a", "response"): 0.0})
    assert pending(registry) == {("a", "request"): 4.0, ("a", "response"): 0.0}
