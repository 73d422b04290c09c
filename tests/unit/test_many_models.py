"""A batch spread over many models does exactly what feeding each model its own rows does.

The pipeline splits a batch by model in one pass and, for a model whose batch moved only
its hot counts (events, window fill), publishes those instead of rebuilding its status.
Hypothesis draws the interleaving of models over the events and where batches end; the
spread pipeline must give every model the same windows, evaluations and counters as a
pipeline fed one model at a time, and what the results store shows must equal each
model's freshly built status.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.app.replay import evaluation_record
from monitor.config import Config, validate_config
from monitor.errors import ConfigError
from monitor.ingest.decode import scanner_gate
from monitor.model.status import ModelStatus
from monitor.pipeline import Pipeline
from monitor.stats import FeatureKind, ReferenceProfile, build_profile, slot_batch

MODELS = ("a", "b", "c", "d", "e")
CAPTURING = "e"  # captures its reference from its first 100 events


def config() -> Config:
    models: dict[str, Any] = {
        name: {
            "reference": f"{name}.json",
            "window": {"events": 40, "slide": 10},
            "features": {"x": {"type": "numeric"}, "c": {"type": "categorical"}},
            "tests": ["psi", "ks", "chi2"],
            "alert": {"min_features": 1, "consecutive": 1},
        }
        for name in MODELS
    }
    models[CAPTURING]["reference"] = {"capture_events": 100}
    return validate_config({"models": models})


def profile(name: str) -> ReferenceProfile:
    rng = np.random.default_rng(len(name))
    data: dict[str, Any] = {
        "x": rng.normal(0, 1, 500),
        "c": [f"v{i}" for i in rng.integers(0, 4, 500)],
    }
    kinds = {"x": FeatureKind.NUMERIC, "c": FeatureKind.CATEGORICAL}
    return build_profile(name, data, kinds)


def pipeline() -> Pipeline:
    return Pipeline(config(), {n: profile(n) for n in MODELS if n != CAPTURING})


def events(models: list[int]) -> list[bytes]:
    rng = np.random.default_rng(7)
    shift = np.linspace(0.0, 3.0, len(models))  # drift grows: some evaluations alert
    return [
        orjson.dumps(
            {
                "model": MODELS[m],
                "ts": 1.7e9 + i,
                "features": {"x": round(float(rng.normal(shift[i], 1)), 4), "c": f"v{i % 5}"},
            }
        )
        for i, m in enumerate(models)
    ]


def feed(p: Pipeline, payloads: list[bytes], cuts: list[int]) -> list[dict[str, Any]]:
    """Feed ``payloads`` in batches ending at ``cuts``; every evaluation's record."""
    records: list[dict[str, Any]] = []
    bounds = [0, *sorted(set(cuts)), len(payloads)]
    for start, stop in zip(bounds, bounds[1:], strict=False):
        if stop > start:
            outcome = p.process(payloads[start:stop], np.zeros(stop - start))
            records += [evaluation_record(e) for e in outcome.evaluations]
    return records


def comparable(status: ModelStatus) -> ModelStatus:
    return replace(status, last_evaluation_time=None)  # the wall clock of the evaluation


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    models=st.lists(st.integers(0, len(MODELS) - 1), min_size=120, max_size=400),
    cuts=st.lists(st.integers(0, 400), max_size=6),
)
def test_spread_batches_equal_each_model_fed_alone(models: list[int], cuts: list[int]) -> None:
    assert scanner_gate.is_open()  # the columnar split is what is under test
    payloads = events(models)
    spread = pipeline()
    spread_records = feed(spread, payloads, [c for c in cuts if c < len(payloads)])

    alone = pipeline()
    alone_records: list[dict[str, Any]] = []
    for index in range(len(MODELS)):
        own = [p for p, m in zip(payloads, models, strict=True) if m == index]
        alone_records += feed(alone, own, [])

    by_model = sorted(spread_records, key=lambda r: (r["model"], r["slide"]))
    assert by_model == sorted(alone_records, key=lambda r: (r["model"], r["slide"]))
    for name in MODELS:
        model_spread, model_alone = spread.models[name], alone.models[name]
        expected = comparable(model_alone.status())
        assert comparable(model_spread.status()) == expected
        # The store (hot counts laid over the last full status) shows the same thing.
        shown = spread.results.get(name)
        assert shown is not None and comparable(shown) == expected
        assert shown.events_total == models.count(MODELS.index(name))
        window_spread, window_alone = model_spread.default.window, model_alone.default.window
        if window_alone is None:
            assert window_spread is None
            continue
        assert window_spread is not None
        left, right = window_spread.state_dict(), window_alone.state_dict()
        assert left.keys() == right.keys()
        for key, value in left.items():
            np.testing.assert_array_equal(np.asarray(value), np.asarray(right[key]), key)


def test_a_batch_touching_one_model_of_many_rebuilds_only_its_status() -> None:
    p = pipeline()
    p.process(events([0] * 35 + [4] * 105), np.zeros(140))  # e captured, a 5 short of full
    before = {name: p.results.snapshot().parts()[0][name] for name in MODELS}
    outcome = p.process(events([1, 1, 1]), np.zeros(3))
    assert outcome.accepted == {"b": 3} and not outcome.evaluations
    statuses, hot = p.results.snapshot().parts()
    # No model's status was rebuilt: b's three events are in its hot counts only.
    assert all(statuses[name] is before[name] for name in MODELS)
    assert set(hot) == {"a", "b"}  # a's first 35 events moved only its counts too
    assert hot["b"].events_total == 3 and statuses["b"].events_total == 0
    assert p.results.get("b").events_total == 3  # type: ignore[union-attr]
    # An evaluation rebuilds the status and drops the hot counts it replaces.
    outcome = p.process(events([0] * 10), np.zeros(10))
    assert [e.model for e in outcome.evaluations] == ["a"]
    statuses, hot = p.results.snapshot().parts()
    assert statuses["a"] is not before["a"] and statuses["a"].events_total == 45
    assert "a" not in hot and statuses["b"] is before["b"]


def test_max_series_error_names_the_five_largest_models_and_the_total_in_one_line() -> None:
    features = {f"f{i}": {"type": "numeric"} for i in range(20)}
    window, tests = {"events": 1000, "slide": 100}, ["psi", "ks"]
    models: dict[str, Any] = {
        f"m{k:04d}": {"reference": "r.json", "window": window, "features": features, "tests": tests}
        for k in range(1000)
    }
    models["m0500"] = {
        **models["m0500"],
        "features": {f"f{i}": {"type": "numeric"} for i in range(40)},
    }
    models["m0007"] = {**models["m0007"], "tests": ["psi", "ks", "js"]}
    with pytest.raises(ConfigError) as raised:
        validate_config({"models": models})
    (problem,) = raised.value.problems
    assert problem.path == "limits.max_series"
    # 998 models x 20 features x (psi, ks, ks p-value) + 40 x 3 + 20 x 4
    assert problem.message.startswith("this config creates 60080 drift score/p-value series")
    assert "over 1,000 models" in problem.message and "limit of 10000" in problem.message
    assert "largest: m0500=120, m0007=80, m0000=60, m0001=60, m0002=60 and 995 more models" in (
        problem.message
    )
    assert "\n" not in problem.message and len(problem.message) < 300
    assert "m0999" not in problem.message
    assert "raise limits.max_series to at least 60080" in problem.hint
    assert "drop tests (models.<name>.tests)" in problem.hint


def test_rows_that_only_count_are_binned_for_all_models_in_one_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = pipeline()
    p.process(events([0, 1, 2, 3] * 5), np.zeros(20))  # every window: an open slot, 5 rows
    calls: list[int] = []
    real = slot_batch.count_open_slots

    def spy(*args: Any) -> slot_batch.Counted:
        calls.append(len(args[1]))
        return real(*args)

    monkeypatch.setattr("monitor.model.counted.count_open_slots", spy)
    outcome = p.process(events([0, 1, 2, 3, 0, 1]), np.zeros(6))
    assert calls == [4]  # four steady models, one call
    assert outcome.accepted == {"a": 2, "b": 2, "c": 1, "d": 1}
    assert p.results.get("a").events_total == 7  # type: ignore[union-attr]
    # each model's latest event time comes from the kernel that counted its rows
    assert outcome.last_event_time == {
        "a": 1.7e9 + 4,
        "b": 1.7e9 + 5,
        "c": 1.7e9 + 2,
        "d": 1.7e9 + 3,
    }
    assert outcome.model_messages["a"].tolist() == [0, 4]
