"""A feature missing from every event of a window is reported as absent, a schema
problem: its own metric, /status, one log line per episode, and no drift or retrain for
it unless alert.retrain_on_absent_feature says so."""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from monitor.config import Config, validate_config
from monitor.model.monitor import model_fingerprint
from monitor.pipeline import BatchOutcome, Pipeline
from monitor.publish.health import Health
from monitor.publish.metrics import Metrics
from monitor.publish.status import status_document
from monitor.stats import FeatureKind, ReferenceProfile, build_profile
from tests.support.metrics import sample_value
from tests.support.results import INVALID_REASONS

WINDOW = {"events": 300, "slide": 100}


def config(**alert: Any) -> Config:
    return validate_config(
        {
            "kafka": {"bootstrap_servers": "127.0.0.1:9", "topics": ["t"]},
            "models": {
                "m": {
                    "reference": "unused.json",
                    "window": WINDOW,
                    "bins": 10,
                    "thresholds": {"psi": 0.3, "js": 0.2},
                    "features": {"x": {"type": "numeric"}, "c": {"type": "categorical"}},
                    "alert": {"min_features": 1, "consecutive": 2, "cooldown_seconds": 0, **alert},
                }
            },
        }
    )


@functools.cache
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(0)
    return build_profile(
        "m",
        {"x": rng.normal(0, 1.0, 5000), "c": rng.choice(["a", "b", "c"], 5000).tolist()},
        {"x": FeatureKind.NUMERIC, "c": FeatureKind.CATEGORICAL},
    )


def events(n: int, *, seed: int, send_x: bool = True, t0: float = 1.7e9) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for i, (x, c) in enumerate(
        zip(rng.normal(0, 1, n), rng.choice(["a", "b", "c"], n), strict=True)
    ):
        features: dict[str, Any] = {"c": str(c)}
        if send_x:
            features["x"] = x
        out.append(json.dumps({"model": "m", "ts": t0 + i, "features": features}).encode())
    return out


def run(pipeline: Pipeline, payloads: list[bytes]) -> BatchOutcome:
    total = BatchOutcome()
    for start in range(0, len(payloads), 100):
        chunk = payloads[start : start + 100]
        total.merge(pipeline.process(chunk, np.zeros(len(chunk)), "t"))
    return total


def scrape(pipeline: Pipeline) -> str:
    registry = CollectorRegistry()
    Metrics(registry, pipeline.results, Health(), invalid_reasons=INVALID_REASONS, models=["m"])
    return generate_latest(registry).decode()


def absent_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage().split(":")[0] for r in caplog.records if r.name == "monitor.model.absent"
    ]


def test_an_absent_feature_is_reported_on_its_own_and_sends_no_retrain(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipeline = Pipeline(config(), {"m": profile()})
    run(pipeline, events(300, seed=1))
    assert pipeline.results.get("m").absent_features == ()  # type: ignore[union-attr]
    with caplog.at_level(logging.INFO, logger="monitor.model.absent"):
        outcome = run(pipeline, events(900, seed=2, send_x=False, t0=1.7e9 + 300))
    last = outcome.evaluations[-1].result
    (x,) = [f for f in last.features if f.name == "x"]
    assert x.missing_ratio == 1.0
    assert not x.drifted and x.crossed == ()
    assert last.drifted_features == ()
    assert all(e.drift_event is None for e in outcome.evaluations), (
        "no retrain for a schema problem"
    )
    status = pipeline.results.get("m")
    assert status is not None and status.absent_features == ("x",) and status.alert_state == "ok"

    text = scrape(pipeline)
    assert sample_value(text, "driftmon_feature_absent", model="m", feature="x") == 1.0
    assert sample_value(text, "driftmon_feature_absent", model="m", feature="c") == 0.0
    assert sample_value(text, "driftmon_feature_drifted", model="m", feature="x") == 0.0
    document = status_document(pipeline.results, Health())["models"]["m"]["last_evaluation"]
    assert document["absent_features"] == ["x"]
    assert document["features"]["x"]["absent"] is True
    assert document["features"]["c"]["absent"] is False
    # One line when the episode starts, however many evaluations it lasts.
    assert absent_logs(caplog) == ["feature absent"]
    (record,) = [r for r in caplog.records if r.name == "monitor.model.absent"]
    assert (record.model, record.feature) == ("m", "x")  # type: ignore[attr-defined]

    with caplog.at_level(logging.INFO, logger="monitor.model.absent"):
        run(pipeline, events(300, seed=3, t0=1.7e9 + 1200))
    assert absent_logs(caplog)[-1] == "feature present again"
    assert pipeline.results.get("m").absent_features == ()  # type: ignore[union-attr]
    assert sample_value(scrape(pipeline), "driftmon_feature_absent", model="m", feature="x") == 0.0


def test_retrain_on_absent_feature_counts_it_as_drift() -> None:
    pipeline = Pipeline(config(retrain_on_absent_feature=True), {"m": profile()})
    run(pipeline, events(300, seed=1))
    outcome = run(pipeline, events(900, seed=2, send_x=False, t0=1.7e9 + 300))
    assert outcome.evaluations[-1].result.drifted_features == ("x",)
    [event] = [e.drift_event for e in outcome.evaluations if e.drift_event is not None]
    assert [(f.feature, f.test) for f in event.drifted_features] == [("x", "missing_ratio")]
    assert pipeline.results.get("m").absent_features == ("x",)  # type: ignore[union-attr]


def test_the_new_key_keeps_checkpoints_of_older_configs_restorable() -> None:
    m = config().models["m"]
    flagged = config(retrain_on_absent_feature=True).models["m"]
    assert model_fingerprint(m, None, profile()) == model_fingerprint(flagged, None, profile())
