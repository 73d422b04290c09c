"""The false-alarm budget, min_effect and retrain grace wired through the pipeline.

Calibrated thresholds in evaluation, alerting and threshold lines; raw thresholds that win;
Benjamini-Hochberg against Bonferroni; effect sizes; the calibration kept in checkpoints and
profile files; replay; the retrain grace in state, metrics and /status.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import yaml
from prometheus_client import CollectorRegistry
from scipy import stats

from monitor.cli import EXIT_OK, main
from monitor.config import Config, validate_config
from monitor.demo import synthetic
from monitor.ingest.decode import Reason
from monitor.model.budget import budget_for
from monitor.model.monitor import ModelMonitor
from monitor.model.reference_file import CALIBRATION_KEY, load_references
from monitor.pipeline import Pipeline
from monitor.publish.health import Health
from monitor.publish.metrics import Metrics
from monitor.publish.results import ResultsStore
from monitor.publish.status import model_document
from monitor.state.checkpoint import decode_checkpoint, encode_checkpoint
from monitor.stats import FeatureKind, ReferenceProfile, build_profile
from tests.support.yaml_edit import REMOVE, KeyPath, edit_yaml

BUDGET: dict[str, Any] = {
    "false_alarms_per_month": 1,
    "events_per_second": 100,
    "calibration_draws": 200,
}
RAW_THRESHOLDS: dict[str, Any] = {"psi": 0.2, "ks_p_value": 0.001, "js": 0.1, "chi2_p_value": 0.001}
MODEL = ("models", "fraud")


def synthetic_yaml(
    reference: str,
    alert: Mapping[str, Any],
    thresholds: Mapping[str, Any] | None,
    edits: Sequence[tuple[KeyPath, Any]] = (),
) -> str:
    """The synthetic fraud model (window 4000/1000): ``alert`` keys added to its alert,
    its thresholds replaced by ``thresholds`` (none when ``None``), then ``edits``."""
    model = synthetic.model_config_yaml(reference, events=4000, slide=1000)
    text = "kafka: {bootstrap_servers: 127.0.0.1:9092, topics: [t]}\nmodels:\n" + model
    return edit_yaml(
        text,
        ((*MODEL, "thresholds"), REMOVE if thresholds is None else dict(thresholds)),
        *(((*MODEL, "alert", key), value) for key, value in alert.items()),
        *edits,
    )


def synthetic_config(
    reference: str = "fraud.json",
    *,
    alert: Mapping[str, Any] = BUDGET,
    thresholds: Mapping[str, Any] | None = None,
    edits: Sequence[tuple[KeyPath, Any]] = (),
) -> Config:
    """:func:`synthetic_yaml`, validated.

    Edited as YAML, not through ``model_dump``: a dumped config marks every threshold as
    written, and written thresholds win over calibrated ones.
    """
    return validate_config(yaml.safe_load(synthetic_yaml(reference, alert, thresholds, edits)))


@pytest.fixture(autouse=True)
def keep_monitor_logger() -> Iterator[None]:
    """``main`` configures the ``monitor`` logger; leave it as it was for other tests."""
    logger = logging.getLogger("monitor")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    return synthetic.reference_profile()


def stream(n: int, seed: int, *, drift: bool = False, start: float = 1_764_150_000.0):
    cols = synthetic.generate(np.random.default_rng(seed), n, drift=drift)
    return list(synthetic.to_events(cols, start_ts=start, step_seconds=0.01))


def feed(pipeline: Pipeline, payloads: list[bytes]):
    return pipeline.process(payloads, np.zeros(len(payloads)))


# ------------------------------------------------------------------ calibrated thresholds


def test_calibrated_critical_values_drive_evaluation_alerting_and_threshold_lines(
    profile: ReferenceProfile,
) -> None:
    pipeline = Pipeline(synthetic_config(), {"fraud": profile})
    monitor = pipeline.monitors["fraud"]
    assert monitor.calibration_pending
    status = pipeline.results.get("fraud")
    assert status is not None and status.calibration is not None
    assert status.calibration.source == "pending" and status.threshold_values == {}

    feed(pipeline, stream(4000, 1))  # the first events calibrate, then evaluate
    assert monitor.calibration is not None and not monitor.calibration_pending
    critical = monitor.calibration.calibration.threshold_values()
    amount = critical["amount"]
    assert monitor.thresholds["amount"].psi == amount["psi"] < 0.2  # far below the raw 0.2
    assert monitor.thresholds["amount"].ks_p_value == amount["ks_p_value"]
    assert monitor.thresholds["country"].chi2_p_value == critical["country"]["chi2_p_value"]
    assert monitor.alerting.thresholds["amount"] == amount
    status = pipeline.results.get("fraud")
    assert status is not None and status.calibration is not None
    assert status.threshold_values[("amount", "psi")] == amount["psi"]
    assert status.threshold_values[("country", "chi2")] == critical["country"]["chi2_p_value"]
    report = status.calibration
    assert report.source == "computed" and report.seconds is not None and report.seconds > 0
    assert report.critical_values == critical and report.overridden == {}
    assert report.window_events == 4000 and report.evaluations_per_month == 100 * 2_592_000 / 1000
    assert report.alpha_test == monitor.calibration.calibration.alpha_test


def test_explicit_raw_thresholds_win_over_the_calibrated_ones(profile: ReferenceProfile) -> None:
    config = synthetic_config(
        thresholds={"psi": 0.5},
        edits=[((*MODEL, "features", "country", "thresholds"), {"js": 0.3, "psi": None})],
    )
    pipeline = Pipeline(config, {"fraud": profile})
    monitor = pipeline.monitors["fraud"]
    monitor.ensure_calibrated()
    pipeline.publish()
    assert monitor.calibration is not None
    critical = monitor.calibration.calibration.threshold_values()
    assert monitor.thresholds["amount"].psi == 0.5  # model-level raw threshold
    assert monitor.thresholds["amount"].js == critical["amount"]["js"]  # not written: calibrated
    assert monitor.thresholds["country"].js == 0.3  # feature-level raw threshold
    assert monitor.thresholds["country"].psi is None  # explicitly off for this feature
    assert monitor.alerting.thresholds["amount"]["psi"] == 0.5
    assert "psi" not in monitor.alerting.thresholds["country"]
    status = pipeline.results.get("fraud")
    assert status is not None and status.calibration is not None
    assert status.threshold_values[("amount", "psi")] == 0.5
    assert ("country", "psi") not in status.threshold_values
    assert status.calibration.overridden == {
        **dict.fromkeys(synthetic.NUMERIC + synthetic.CATEGORICAL + ("prediction",), {"psi": 0.5}),
        "country": {"psi": None, "js": 0.3},
    }


# ------------------------------------------------------------------ bonferroni against bh


N_FEATURES = 20


def quantiles(n: int, shift: float = 0.0) -> np.ndarray:
    """A sample without sampling noise: the normal's quantiles at (i + 0.5) / n."""
    return np.asarray(stats.norm.ppf((np.arange(n) + 0.5) / n) + shift)


def many_features_config(correction: str) -> Config:
    return validate_config(
        {
            "kafka": {"bootstrap_servers": "127.0.0.1:9092", "topics": ["t"]},
            "models": {
                "m": {
                    "reference": "m.json",
                    "window": {"events": 2000, "slide": 2000},
                    "features": {f"x{i}": {"type": "numeric"} for i in range(N_FEATURES)},
                    "tests": ["ks"],
                    "thresholds": {"missing_ratio": None},
                    "alert": {
                        "min_features": 1,
                        "consecutive": 1,
                        "false_alarms_per_month": 1,
                        "events_per_second": 10,
                        "correction": correction,
                        "calibration_draws": 100,
                    },
                }
            },
        }
    )


def test_bh_flags_features_that_bonferroni_misses_through_the_pipeline() -> None:
    names = [f"x{i}" for i in range(N_FEATURES)]
    reference = quantiles(20_000)
    profile = build_profile(
        "m", dict.fromkeys(names, reference), dict.fromkeys(names, FeatureKind.NUMERIC)
    )
    # Every feature shifted by 0.14 sd: each KS p-value is too large for Bonferroni's
    # per-check level, but all twenty are small together, which BH rewards.
    values = quantiles(2000, 0.14)[np.random.default_rng(0).permutation(2000)]
    payloads = [
        orjson.dumps({"model": "m", "ts": 1e9 + i, "features": dict.fromkeys(names, float(v))})
        for i, v in enumerate(values)
    ]
    drifted: dict[str, tuple[str, ...]] = {}
    for correction in ("bonferroni", "bh"):
        pipeline = Pipeline(many_features_config(correction), {"m": profile})
        (evaluation,) = feed(pipeline, payloads).evaluations
        drifted[correction] = evaluation.result.drifted_features
        calibration = pipeline.monitors["m"].calibration
        assert calibration is not None
        cal = calibration.calibration
        p_values = [f.p_values["ks"] for f in evaluation.result.features]
        assert all(cal.alpha_test < p < cal.alpha_evaluation for p in p_values)
        status = pipeline.results.get("m")
        assert status is not None and status.calibration is not None
        assert status.calibration.correction == correction
        assert (evaluation.drift_event is not None) == (correction == "bh")
    assert drifted["bonferroni"] == ()
    assert drifted["bh"] == tuple(names)


def test_bh_keeps_the_raw_decision_of_an_overridden_check(profile: ReferenceProfile) -> None:
    # A raw psi threshold of 0 flags every feature; BH must not take that decision away.
    config = synthetic_config(alert={**BUDGET, "correction": "bh"}, thresholds={"psi": 0})
    pipeline = Pipeline(config, {"fraud": profile})
    evaluations = feed(pipeline, stream(4000, 1)).evaluations
    assert evaluations
    result = evaluations[-1].result
    assert all("psi" in f.crossed for f in result.features)
    assert len(result.drifted_features) == len(result.features)


# ------------------------------------------------------------------------------ min_effect


def one_feature(min_effect: str = "") -> Config:
    alert = (
        "{min_features: 1, consecutive: 1, false_alarms_per_month: 1, events_per_second: 100,"
        f" calibration_draws: 100{min_effect}}}"
    )
    text = (
        "kafka: {bootstrap_servers: 127.0.0.1:9092, topics: [t]}\n"
        "models:\n"
        "  m:\n"
        "    reference: m.json\n"
        "    window: {events: 100000, slide: 50000}\n"
        "    features: {x: {type: numeric}}\n"
        "    tests: [psi, ks]\n"
        f"    alert: {alert}\n"
    )
    return validate_config(yaml.safe_load(text))


def window_of(shift: float, start: int) -> list[bytes]:
    values = quantiles(100_000, shift)[np.random.default_rng(start).permutation(100_000)]
    return [
        orjson.dumps({"model": "m", "ts": 1e9 + start + i, "features": {"x": float(v)}})
        for i, v in enumerate(values)
    ]


@pytest.mark.slow
def test_min_effect_drops_a_significant_but_tiny_shift_while_a_real_one_fires() -> None:
    profile = build_profile("m", {"x": quantiles(200_000)}, {"x": FeatureKind.NUMERIC})
    tiny = window_of(0.03, 0)  # 0.03 sd in a window of 100,000 events: significant
    real = window_of(1.0, 100_000)
    plain = Pipeline(one_feature(), {"m": profile})
    (significant,) = feed(plain, tiny).evaluations
    feature = significant.result.features[0]
    assert feature.drifted and "ks_p_value" in feature.crossed  # the budget alone alarms
    assert feature.scores["psi"] < 0.01

    effect = Pipeline(one_feature(", min_effect: {psi: 0.1}"), {"m": profile})
    (suppressed,) = feed(effect, tiny).evaluations
    assert suppressed.result.drifted_features == () and suppressed.drift_event is None
    evaluations = feed(effect, real).evaluations
    assert evaluations[-1].result.drifted_features == ("x",)
    assert evaluations[-1].result.features[0].scores["psi"] >= 0.1
    assert sum(e.drift_event is not None for e in evaluations) == 1
    status = effect.results.get("m")
    assert status is not None and status.min_effect == {"x": {"psi": 0.1}}
    assert model_document(status)["alert"]["min_effect"] == {"x": {"psi": 0.1}}


def test_per_feature_min_effect_applies_to_its_feature_only(profile: ReferenceProfile) -> None:
    # Raw thresholds, no budget: min_effect works on its own too.
    config = synthetic_config(
        alert={"min_effect": {"psi": 5}},
        thresholds=RAW_THRESHOLDS,
        edits=[((*MODEL, "features", "amount", "min_effect"), {"psi": 0.1})],
    )
    pipeline = Pipeline(config, {"fraud": profile})
    feed(pipeline, stream(4000, 1))
    result = feed(pipeline, stream(4000, 2, drift=True, start=1_764_150_040.0)).evaluations[-1]
    # psi of no drifted feature reaches 5; amount's own minimum of 0.1 is reached.
    assert result.result.drifted_features == ("amount",)


# --------------------------------------------------------------------- checkpoints


def roundtrip(monitor: ModelMonitor):
    """The model state through the real checkpoint encoding."""
    from monitor.state.checkpoint import Checkpoint

    state = monitor.state([])
    ckpt = Checkpoint(replica="r", written_at=1.0, offsets={}, models={monitor.name: state})
    return decode_checkpoint(encode_checkpoint(ckpt), "test").models[monitor.name]


def test_the_calibration_is_checkpointed_and_reused_not_recomputed(
    profile: ReferenceProfile,
) -> None:
    config = synthetic_config()
    first = Pipeline(config, {"fraud": profile})
    feed(first, stream(6000, 1))
    before = first.monitors["fraud"]
    assert before.calibration is not None and before.calibration.source == "computed"
    state = roundtrip(before)
    assert state.scalars["calibration"]["digest"] == before.calibration.digest

    second = Pipeline(config, {"fraud": profile})
    monitor = second.monitors["fraud"]
    assert monitor.calibration_pending
    monitor.restore(state)
    assert not monitor.calibration_pending
    assert monitor.calibration is not None and monitor.calibration.source == "checkpoint"
    assert monitor.calibration.seconds == before.calibration.seconds  # the original cost
    assert monitor.thresholds == before.thresholds
    feed(second, stream(2000, 3, start=1_764_150_060.0))
    assert monitor.calibration.source == "checkpoint"  # evaluating did not recompute it
    status = second.results.get("fraud")
    assert status is not None and status.calibration is not None
    assert status.calibration.source == "checkpoint"
    assert model_document(status)["calibration"]["source"] == "checkpoint"


def test_a_calibration_for_other_inputs_is_not_reused(profile: ReferenceProfile) -> None:
    config = synthetic_config()
    first = Pipeline(config, {"fraud": profile})
    first.monitors["fraud"].ensure_calibrated()
    state = roundtrip(first.monitors["fraud"])
    state.scalars["calibration"]["digest"] = "0" * 64  # made for another profile or budget
    monitor = Pipeline(config, {"fraud": profile}).monitors["fraud"]
    monitor.restore(state)
    assert monitor.calibration_pending
    monitor.ensure_calibrated()
    assert monitor.calibration is not None and monitor.calibration.source == "computed"


def test_a_captured_reference_is_calibrated_once_and_restored_with_it() -> None:
    config = synthetic_config(edits=[((*MODEL, "reference"), {"capture_events": 3000})])
    first = Pipeline(config, {})
    feed(first, stream(8000, 1))
    source = first.monitors["fraud"]
    assert source.calibration is not None and source.calibration.source == "computed"
    second = Pipeline(config, {})
    assert second.monitors["fraud"].calibration is None  # capturing: nothing to calibrate
    second.monitors["fraud"].restore(roundtrip(source))
    restored = second.monitors["fraud"]
    assert restored.calibration is not None and restored.calibration.source == "checkpoint"
    assert restored.thresholds == source.thresholds


def test_a_handover_keeps_the_file_profiles_calibration(profile: ReferenceProfile) -> None:
    pipeline = Pipeline(synthetic_config(), {"fraud": profile})
    pipeline.monitors["fraud"].ensure_calibrated()
    pipeline.reset("fraud")  # partitions revoked: fresh state, same reference
    monitor = pipeline.monitors["fraud"]
    assert monitor.calibration is not None and not monitor.calibration_pending


def test_a_time_window_without_a_rate_calibrates_for_min_events(profile: ReferenceProfile) -> None:
    time_window = [((*MODEL, "window"), {"seconds": 600, "slide_seconds": 60, "min_events": 500})]
    config = synthetic_config(alert={"false_alarms_per_month": 1}, edits=time_window)
    budget = budget_for(config.models["fraud"])
    assert budget is not None
    assert (budget.window_events, budget.evaluations_per_month_value) == (500, 43_200)
    rated = budget_for(synthetic_config(alert=BUDGET, edits=time_window).models["fraud"])
    assert rated is not None and rated.window_events == 60_000
    pipeline = Pipeline(config, {"fraud": profile})
    pipeline.monitors["fraud"].ensure_calibrated()
    pipeline.publish()
    status = pipeline.results.get("fraud")
    assert status is not None and status.calibration is not None
    assert status.calibration.window_events == 500
    assert status.calibration.events_per_second is None


# ------------------------------------------------------------- profile files and replay


def write_jsonl(path: Path, payloads: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(payloads) + b"\n")
    return path


def write_config(
    tmp_path: Path, alert: Mapping[str, Any] = BUDGET, reference: str = "fraud.json"
) -> Path:
    path = tmp_path / "driftmon.yaml"
    path.write_text(synthetic_yaml(reference, alert, thresholds=None))
    return path


def test_baseline_stores_the_calibration_and_start_up_reuses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The baseline's config cannot point at the profile it is about to write.
    config_path = write_config(tmp_path, reference="{capture_events: 1000}")
    events = write_jsonl(tmp_path / "reference.jsonl", stream(20_000, 7))
    code = main(
        ["baseline", "--config", str(config_path), "--model", "fraud", "--input", str(events),
         "--output", str(tmp_path / "fraud.json")]
    )  # fmt: skip
    assert code == EXIT_OK
    assert "calibrated for 1 false alarm(s) a month" in capsys.readouterr().out
    document = json.loads((tmp_path / "fraud.json").read_text())
    assert CALIBRATION_KEY in document

    from monitor.config import load_config

    config = load_config(write_config(tmp_path))
    pipeline = Pipeline(config, load_references(config, tmp_path))
    monitor = pipeline.monitors["fraud"]
    assert not monitor.calibration_pending
    assert monitor.calibration is not None and monitor.calibration.source == "profile"
    status = pipeline.results.get("fraud")
    assert status is not None and status.calibration is not None
    assert status.calibration.source == "profile"

    # Another budget: the stored calibration does not fit and is not used.
    other = load_config(write_config(tmp_path, {**BUDGET, "false_alarms_per_month": 2}))
    pipeline = Pipeline(other, load_references(other, tmp_path))
    assert pipeline.monitors["fraud"].calibration_pending


def replay_lines(tmp_path: Path, name: str, payloads: list[bytes]) -> list[dict[str, Any]]:
    events = write_jsonl(tmp_path / f"{name}.jsonl", payloads)
    report = tmp_path / f"{name}.report.jsonl"
    config = tmp_path / "driftmon.yaml"
    code = main(
        ["replay", "--config", str(config), "--input", str(events), "--output", str(report)]
    )
    assert code == EXIT_OK
    return [json.loads(line) for line in report.read_text().splitlines()]


@pytest.mark.slow
def test_replay_with_a_budget_stays_quiet_on_a_stationary_stream_and_fires_on_a_shift(
    tmp_path: Path,
) -> None:
    write_config(tmp_path)
    synthetic.reference_profile().save(tmp_path / "fraud.json")
    quiet = replay_lines(tmp_path, "stationary", stream(40_000, 11))
    assert len(quiet) == 37
    assert not any(r["drifted_features"] for r in quiet)
    assert not any(r["triggered"] for r in quiet)
    assert {r["alert_state"] for r in quiet} == {"ok"}

    shifted = stream(8000, 12) + stream(8000, 13, drift=True, start=1_764_150_080.0)
    loud = replay_lines(tmp_path, "shifted", shifted)
    assert sum(r["triggered"] for r in loud) == 1
    assert set(loud[-1]["drifted_features"]) == set(synthetic.DRIFTED_FEATURES)
    assert loud[-1]["alert_state"] == "firing"


# -------------------------------------------------------------------------- retrain grace


def test_grace_suppresses_the_second_episode_and_is_reported_and_checkpointed(
    profile: ReferenceProfile,
) -> None:
    config = synthetic_config(
        alert={**BUDGET, "retrain_grace_seconds": 3600, "cooldown_seconds": 0},
    )
    pipeline = Pipeline(config, {"fraud": profile})
    t0 = 1_764_150_000.0
    episodes: list[bytes] = []
    for k in range(2):  # clean, drifted, clean again: two confirmed episodes 200 s apart
        start = t0 + 200 * k
        episodes += stream(6000, 20 + k, start=start)
        episodes += stream(6000, 30 + k, drift=True, start=start + 60)
        episodes += stream(6000, 40 + k, start=start + 120)
    evaluations = feed(pipeline, episodes).evaluations
    firing = [e for e in evaluations if e.alert.changed and e.alert.status.state.name == "FIRING"]
    assert len(firing) == 2  # the state moved twice ...
    assert [e.drift_event is not None for e in firing] == [True, False]  # ... one trigger
    monitor = pipeline.monitors["fraud"]
    assert monitor.retrain_triggers == 1 and monitor.grace.suppressed == 1
    until = monitor.grace.until
    assert until is not None and until == firing[0].alert.status.last_trigger_time + 3600

    status = pipeline.results.get("fraud")
    assert status is not None
    assert (status.retrain_suppressed, status.retrain_grace_until) == (1, until)
    alert = model_document(status)["alert"]
    assert alert["retrain_suppressed"] == 1 and alert["retrain_grace_seconds"] == 3600
    assert alert["retrain_grace_until"] == until

    registry = CollectorRegistry(auto_describe=True)
    Metrics(registry, pipeline.results, Health(), invalid_reasons=[r.value for r in Reason])
    assert registry.get_sample_value("driftmon_retrain_suppressed_total", {"model": "fraud"}) == 1
    assert registry.get_sample_value("driftmon_retrain_triggers_total", {"model": "fraud"}) == 1

    restored = Pipeline(config, {"fraud": profile}).monitors["fraud"]
    restored.restore(roundtrip(monitor))
    assert (restored.grace.until, restored.grace.suppressed) == (until, 1)
    restored.alerting.clear_grace()
    assert restored.grace.until is None


def test_status_document_without_a_budget_has_no_calibration(profile: ReferenceProfile) -> None:
    config = synthetic_config(alert={"min_features": 1}, thresholds=RAW_THRESHOLDS)
    pipeline = Pipeline(config, {"fraud": profile})
    status = pipeline.results.get("fraud")
    assert status is not None and status.calibration is None
    document = model_document(status)
    assert "calibration" not in document and "min_effect" not in document["alert"]
    assert document["alert"]["retrain_suppressed"] == 0


def test_status_document_reports_the_calibration(profile: ReferenceProfile) -> None:
    store = ResultsStore()
    pipeline = Pipeline(synthetic_config(), {"fraud": profile}, store)
    pipeline.monitors["fraud"].ensure_calibrated()
    pipeline.publish()
    status = store.get("fraud")
    assert status is not None
    doc = model_document(status)["calibration"]
    assert doc["source"] == "computed" and doc["seconds"] > 0
    assert doc["budget"] == {
        "false_alarms_per_month": 1.0,
        "events_per_second": 100.0,
        "window_events": 4000,
        "slide_events": 1000,
        "evaluations_per_month": 259_200.0,
        "looks_per_month": 259_200.0,
        "consecutive": 2,
        "min_features": 1,
    }
    assert (doc["correction"], doc["dependence"]) == ("bonferroni", "union")
    assert doc["budget_weights"] == {"window": 1.0, "cusum": 1.0, "bin_cusum": 0.3}
    assert doc["checks_per_evaluation"] == 52  # 13 features x (3 tests + missing ratio)
    assert doc["alpha_test"] == pytest.approx(doc["alpha_evaluation"] / 52)
    assert set(doc["critical_values"]["amount"]) == {"psi", "ks_p_value", "js", "missing_ratio"}
    assert set(doc["critical_values"]["country"]) == {"psi", "js", "chi2_p_value", "missing_ratio"}
    json.dumps(doc, allow_nan=False)  # strict JSON
    assert status.calibration is not None and asdict(status.calibration)["draws"] == 200
