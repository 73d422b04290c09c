"""One driftmon, 1,000 models x 20 features: it loads, counts exactly and serves a scrape.

The config, reference files, pipeline, metric catalogue and HTTP server are the real ones
(on 127.0.0.1); events are fed to the pipeline directly, so no broker is needed to show
what a scrape at this size returns. Its timing is in benchmarks/bench_many_startup.py.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry

from monitor.config import Config, load_config
from monitor.ingest.decode import Reason
from monitor.model.reference_file import load_references
from monitor.pipeline import Pipeline
from monitor.publish.health import Health
from monitor.publish.metrics import Metrics
from monitor.publish.server import Server
from tests.support.metrics import parse_samples, sample_value

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import many_models as mm

pytestmark = pytest.mark.integration

MODELS, FEATURES = 1000, 20


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    directory = tmp_path_factory.mktemp("many")
    mm.write_profile(directory / "ref.json", FEATURES)
    path = directory / "driftmon.yaml"
    path.write_text(mm.config_text(directory, MODELS, FEATURES, window=20, slide=10))
    return load_config(path)


@pytest.fixture(scope="module")
def served(config: Config) -> Iterator[tuple[Server, Pipeline, list[int]]]:
    registry, health = CollectorRegistry(), Health()
    pipeline = Pipeline(config, load_references(config))
    Metrics(
        registry,
        pipeline.results,
        health,
        invalid_reasons=[r.value for r in Reason],
        models=list(config.models),
        webhooks=[],
    )
    # 12 events per model on average, spread over every model, in batches of 5,000: the
    # few models that got 20 fill their window and evaluate, the others only count (a
    # scrape with every model evaluated is timed in benchmarks/bench_many_startup.py).
    events = mm.events(12 * MODELS, MODELS, FEATURES, seed=4)
    for start in range(0, len(events), 5000):
        chunk = events[start : start + 5000]
        pipeline.process(chunk, np.zeros(len(chunk)))
    index = {name: i for i, name in enumerate(mm.model_names(MODELS))}
    sent = [0] * MODELS
    for line in events:
        sent[index[orjson.loads(line)["model"]]] += 1
    with Server(registry, pipeline.results, health, port=0) as server:
        yield server, pipeline, sent


def test_a_thousand_model_config_with_the_limit_raised_loads(config: Config) -> None:
    assert len(config.models) == MODELS
    assert config.series_count == MODELS * (FEATURES + 1) * 4  # psi, ks (+ p-value), js
    assert config.limits.max_series >= config.series_count


def test_a_scrape_at_a_thousand_models_has_every_model_and_exact_counters(
    served: tuple[Server, Pipeline, list[int]],
) -> None:
    server, pipeline, sent = served
    resp = httpx.get(f"{server.url}/metrics", timeout=30)
    assert resp.status_code == 200
    wanted = ("driftmon_events_total{", "driftmon_window_events{", "driftmon_drift_score{")
    # Parsing all ~155,000 samples takes longer than the scrape: only the families checked.
    lines = [line for line in resp.text.splitlines() if line.startswith(wanted)]
    samples = parse_samples("\n".join(lines))
    names = mm.model_names(MODELS)

    def per_model(family: str) -> dict[str, float]:
        return {s.labels["model"]: s.value for s in samples if s.name == family}

    # Hot counters (events not rebuilt into the status) are exact per model at scrape.
    assert per_model("driftmon_events_total") == {
        n: float(k) for n, k in zip(names, sent, strict=True)
    }
    fills = per_model("driftmon_window_events")
    assert fills == {n: float(pipeline.status(n).window_events) for n in names}
    evaluated = [n for n in names if pipeline.status(n).evaluations]
    assert len(evaluated) >= 5
    score = sample_value(
        samples, "driftmon_drift_score", model=evaluated[-1], feature="x3", test="psi"
    )
    assert score is not None and score >= 0


def test_status_serves_every_model_or_one(served: tuple[Server, Pipeline, list[int]]) -> None:
    server, pipeline, sent = served
    whole = httpx.get(f"{server.url}/status", timeout=30).json()
    assert len(whole["models"]) == MODELS
    name = "m0999"
    for url in (f"{server.url}/status?model={name}", f"{server.url}/status/models/{name}"):
        resp = httpx.get(url)
        assert resp.status_code == 200
        doc = resp.json()
        assert list(doc["models"]) == [name]
        assert doc["models"][name] == whole["models"][name]
        assert doc["models"][name]["events"] == sent[999]
        assert "ready" in doc
    two = httpx.get(f"{server.url}/status", params=[("model", "m0001"), ("model", "m0002")])
    assert list(two.json()["models"]) == ["m0001", "m0002"]


def test_status_of_an_unknown_model_is_a_404_naming_it(
    served: tuple[Server, Pipeline, list[int]],
) -> None:
    server, _, _ = served
    for url in (f"{server.url}/status?model=m0999x", f"{server.url}/status/models/m0999x"):
        resp = httpx.get(url)
        assert resp.status_code == 404
        body = resp.json()
        assert body["error"] == "unknown model 'm0999x'"
        assert body["known_models"] == MODELS
        assert body["did_you_mean"] == {"m0999x": "m0999"}
    resp = httpx.get(f"{server.url}/status", params=[("model", "m0001"), ("model", "nope")])
    assert resp.status_code == 404 and resp.json()["error"] == "unknown model 'nope'"
