"""Sequential tests in a model: defaults, budget thresholds, the alert lifecycle, checkpoints."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from monitor.config import Config, validate_config
from monitor.model.monitor import ModelMonitor
from monitor.pipeline import Pipeline
from monitor.publish.status import model_document
from monitor.stats import FeatureKind, ReferenceProfile, build_profile
from monitor.stats.budget_split import DEFAULT_WEIGHTS

FEATURES = ("x", "y", "c")
CATEGORIES = ["a", "b", "c", "d"]
SHARES = [0.4, 0.3, 0.2, 0.1]


def config(tests: list[str] | None = None, budget: bool = True, **alert: Any) -> Config:
    model: dict[str, Any] = {
        "reference": "m.json",
        "window": {"events": 2000, "slide": 500},
        "features": {
            "x": {"type": "numeric"},
            "y": {"type": "numeric"},
            "c": {"type": "categorical"},
        },
        "alert": {"consecutive": 3, "cooldown_seconds": 0, **alert},
    }
    if budget:
        model["alert"].update(
            {"false_alarms_per_month": 1, "events_per_second": 10, "calibration_draws": 100}
        )
    if tests is not None:
        model["tests"] = tests
    return validate_config(
        {"kafka": {"bootstrap_servers": "127.0.0.1:9092", "topics": ["t"]}, "models": {"m": model}}
    )


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(0)
    return build_profile(
        "m",
        {
            "x": rng.normal(size=20_000),
            "y": rng.gamma(2.0, size=20_000),
            "c": rng.choice(CATEGORIES, 20_000, p=SHARES).tolist(),
        },
        {"x": FeatureKind.NUMERIC, "y": FeatureKind.NUMERIC, "c": FeatureKind.CATEGORICAL},
    )


def events(n: int, seed: int, start: int, *, scale: float = 1.0) -> list[bytes]:
    """Stationary events, or with ``x`` scaled by ``scale`` (a change the mean misses)."""
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=n) * scale).tolist()
    y = rng.gamma(2.0, size=n).tolist()
    c = rng.choice(CATEGORIES, n, p=SHARES).tolist()
    return [
        orjson.dumps(
            {"model": "m", "ts": 1e9 + start + i, "features": {"x": x[i], "y": y[i], "c": c[i]}}
        )
        for i in range(n)
    ]


def feed(pipeline: Pipeline, payloads: list[bytes]) -> list[Any]:
    return list(pipeline.process(payloads, np.zeros(len(payloads))).evaluations)


def test_on_by_default_with_a_budget_and_by_name_without() -> None:
    with_budget = config()
    assert with_budget.models["m"].tests_for("x")[-2:] == ("cusum", "bin_cusum")
    assert with_budget.models["m"].tests_for("c")[-1] == "bin_cusum"
    assert "cusum" not in with_budget.models["m"].tests_for("c")  # numeric only
    assert "cusum" not in config(budget=False).models["m"].tests_for("x")
    assert config(["psi"]).models["m"].tests_for("x") == ("psi",)  # as written
    named = config(["psi", "cusum"], budget=False).models["m"]
    assert named.tests_for("x") == ("psi", "cusum")
    assert named.thresholds_for("x").cusum == 20.0  # the documented default


def test_budget_sets_the_thresholds_and_they_are_exported(profile: ReferenceProfile) -> None:
    pipeline = Pipeline(config(), {"m": profile})
    feed(pipeline, events(600, 1, 0))
    monitor = pipeline.monitors["m"]
    assert isinstance(monitor, ModelMonitor) and monitor.calibration is not None
    sequential = monitor.calibration.sequential
    assert set(sequential) == set(FEATURES) and set(sequential["c"]) == {"bin_cusum"}
    h = sequential["x"]["cusum"].h
    assert 15 < h < 40 and monitor.thresholds["x"].cusum == h
    # shares by the default weights: 3 features x (psi, ks/chi2, js, missing) window checks,
    # 2 cusum and 3 bin_cusum
    cal = monitor.calibration.calibration
    w = DEFAULT_WEIGHTS
    total = w.window * cal.checks_per_evaluation + 2 * w.cusum + 3 * w.bin_cusum
    assert cal.alpha_test == pytest.approx(cal.alpha_evaluation * w.window / total)
    assert sequential["x"]["cusum"].arl_events == pytest.approx(10 * 2_592_000 * total / w.cusum)
    assert sequential["x"]["bin_cusum"].arl_events == pytest.approx(
        10 * 2_592_000 * total / w.bin_cusum
    )
    status = pipeline.results.get("m")
    assert status is not None and status.threshold_values[("x", "cusum")] == h
    assert status.threshold_values[("c", "bin_cusum")] == sequential["c"]["bin_cusum"].h
    assert status.calibration is not None
    assert status.calibration.critical_values["x"]["cusum"] == h
    feed(pipeline, events(2000, 2, 600))
    result = monitor.last_result
    assert result is not None
    x = next(f for f in result.features if f.name == "x")
    assert 0 <= x.scores["cusum"] < h and "bin_cusum" in x.scores and not x.drifted


def test_an_alarm_fires_at_once_and_one_episode_gives_one_trigger(
    profile: ReferenceProfile,
) -> None:
    pipeline = Pipeline(config(), {"m": profile})
    quiet = feed(pipeline, events(4000, 3, 0))
    assert not any(e.drift_event for e in quiet)
    # x's spread grows by 40 %: its mean is unchanged
    drifting = feed(pipeline, events(6000, 4, 4000, scale=1.4))
    alarms = [e for e in drifting if e.trigger == "sequential"]
    first = alarms[0]
    assert first.alert.status.state.name == "FIRING"  # no waiting for 3 evaluations
    assert first.drift_event is not None
    assert first.last_event - 4000 < 500  # before the first slide after the change
    (crossed,) = [f for f in first.drift_event.drifted_features if f.feature == "x"][:1]
    assert crossed.test in ("cusum", "bin_cusum") and crossed.score > crossed.threshold
    assert sum(e.drift_event is not None for e in drifting) == 1
    assert len(alarms) == 1  # later alarms only keep x latched while the alert fires
    assert all(e.alert.status.state.name == "FIRING" for e in drifting if e.trigger == "slide")
    # /status names the latest alarm of each feature: test, statistic, threshold, when
    status = pipeline.results.get("m")
    assert status is not None
    alarm = model_document(status)["alert"]["sequential_alarms"]["x"]
    assert alarm["test"] in ("cusum", "bin_cusum") and alarm["compared"] == "score"
    assert alarm["statistic"] > alarm["threshold"] > 15 and alarm["event"] > 4000
    assert alarm["time"] >= 1e9 + 4000
    # back to the reference: the latch runs out within a window, the episode resolves
    after = feed(pipeline, events(4000, 5, 10_000))
    assert after[-1].alert.status.state.name in ("OK", "RESOLVED")
    assert not any(e.drift_event for e in after)


def test_checkpoint_mid_stream_restores_identical_statistics(profile: ReferenceProfile) -> None:
    stream = events(3000, 6, 0) + events(3000, 7, 3000, scale=1.3)
    straight = Pipeline(config(), {"m": profile})
    whole = feed(straight, stream[:2500]) + feed(straight, stream[2500:])

    first = Pipeline(config(), {"m": profile})
    part = feed(first, stream[:1700])
    saved = first.monitors["m"].state(["t/0"])
    resumed = Pipeline(config(), {"m": profile})
    monitor = resumed.monitors["m"]
    assert isinstance(monitor, ModelMonitor)
    monitor.restore(saved)
    part += feed(resumed, stream[1700:3100]) + feed(resumed, stream[3100:])

    def summary(found: list[Any]) -> list[tuple[Any, ...]]:
        return [
            (e.trigger, e.last_event, e.alert.status, e.drift_event and e.drift_event.id,
             e.result.drifted_features)
            for e in found
        ]  # fmt: skip

    assert summary(part) == summary(whole)
    assert any(e.trigger == "sequential" for e in whole)
    one, two = straight.monitors["m"], resumed.monitors["m"]
    assert isinstance(one, ModelMonitor) and one.evaluator and two.evaluator
    assert one.evaluator.sequential and two.evaluator.sequential
    a, b = one.evaluator.sequential, two.evaluator.sequential
    np.testing.assert_array_equal(a.detectors.stats, b.detectors.stats)
    np.testing.assert_array_equal(a.detectors.recent, b.detectors.recent)
    assert a.last_alarm == b.last_alarm
