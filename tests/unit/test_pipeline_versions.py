"""Per-model-version references in the pipeline: routing, capture, fallback, ignore,
eviction, the active version in metrics and /status, drift events, checkpoints."""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor.app.daemon import header_version
from monitor.config import Config, validate_config
from monitor.model.alerting import Alerting
from monitor.model.reference_file import ModelReference
from monitor.pipeline import BatchOutcome, Pipeline
from monitor.publish.health import Health
from monitor.publish.metrics import Metrics
from monitor.publish.results import ResultsStore
from monitor.publish.status import status_document
from monitor.state.checkpoint import Checkpoint, decode_checkpoint, encode_checkpoint
from monitor.stats import FeatureKind, ReferenceProfile, build_profile
from monitor.webhooks.formats import drift_payload
from tests.support.metrics import parse_samples, sample_value
from tests.support.results import INVALID_REASONS

KINDS = {"x": FeatureKind.NUMERIC, "c": FeatureKind.CATEGORICAL}
WINDOW = {"events": 300, "slide": 100}
CAPTURE = 400


def config(**versions: Any) -> Config:
    return validate_config(
        {
            "kafka": {"bootstrap_servers": "127.0.0.1:9", "topics": ["t"]},
            "models": {
                "m": {
                    "reference": {"capture_events": CAPTURE},
                    "window": WINDOW,
                    "bins": 10,
                    # JS and PSI noise is large for windows this small: thresholds above it.
                    "thresholds": {"psi": 0.3, "js": 0.2},
                    "features": {"x": {"type": "numeric"}, "c": {"type": "categorical"}},
                    "alert": {"min_features": 1, "consecutive": 2, "cooldown_seconds": 0},
                    "versions": {"capture_events": CAPTURE, **versions},
                }
            },
        }
    )


@functools.cache
def profile(shift: float = 0.0, seed: int = 0) -> ReferenceProfile:
    """One object per arguments: a profile records its creation time, which is part of the
    checkpoint fingerprint, so pipelines that exchange checkpoints share the same one."""
    rng = np.random.default_rng(seed)
    return build_profile(
        "m",
        {"x": rng.normal(shift, 1.0, 5000), "c": rng.choice(["a", "b", "c"], 5000).tolist()},
        KINDS,
    )


def events(
    n: int, *, seed: int, version: str | None = None, shift: float = 0.0, t0: float = 1.7e9
) -> list[bytes]:
    """``n`` events of model m; ``version`` in the event's version field when given."""
    rng = np.random.default_rng(seed)
    out = []
    for i, (x, c) in enumerate(
        zip(rng.normal(shift, 1.0, n), rng.choice(["a", "b", "c"], n), strict=True)
    ):
        event: dict[str, Any] = {"model": "m", "ts": t0 + i, "features": {"x": x, "c": str(c)}}
        if version is not None:
            event["version"] = version
        out.append(json.dumps(event).encode())
    return out


def run(pipeline: Pipeline, payloads: list[bytes], **kw: Any) -> BatchOutcome:
    """Feed in batches of 100 messages, like a consumer would."""
    total = BatchOutcome()
    headers = kw.pop("headers", None)
    for start in range(0, len(payloads), 100):
        chunk = payloads[start : start + 100]
        hv = None if headers is None else headers[start : start + 100]
        total.merge(pipeline.process(chunk, np.zeros(len(chunk)), "t", hv, **kw))
    return total


def fired(outcome: BatchOutcome) -> list[str | None]:
    found = [*outcome.evaluations, *outcome.performance]
    return [e.drift_event.version for e in found if e.drift_event is not None]


def with_default() -> Pipeline:
    return Pipeline(config(references={"v1": "v1.json"}), {"m": ModelReference(profile(), versions={
        "v1": profile(seed=1)
    })})  # fmt: skip


# ----------------------------------------------------------------------------- routing


def test_routing_by_event_field_feeds_each_versions_own_monitor() -> None:
    pipeline = with_default()
    versioned = pipeline.versioned["m"]
    run(pipeline, events(150, seed=1, version="v1") + events(50, seed=2))
    assert versioned.monitors["v1"].events_seen == 150
    assert versioned.default.events_seen == 50  # rows without a version: the default reference
    assert versioned.active == ""  # the newest rows had no version
    assert pipeline.events_seen("m") == 200


def test_routing_by_kafka_header_when_the_field_is_absent() -> None:
    pipeline = with_default()
    versioned = pipeline.versioned["m"]
    payloads = events(100, seed=1) + events(100, seed=2, version="v1")
    headers: list[str | None] = ["v1"] * 100 + ["v9"] * 100  # the field wins over the header
    run(pipeline, payloads, headers=headers)
    assert versioned.monitors["v1"].events_seen == 200
    assert versioned.default.events_seen == 0
    assert pipeline.wants_header_versions("t") is True
    assert Pipeline(validate_config(_without_versions()), {}).wants_header_versions("t") is False


def _without_versions() -> dict[str, Any]:
    data = config().model_dump(mode="json", warnings=False)
    del data["models"]["m"]["versions"]
    return data


class _Msg:
    """The part of a Kafka message the header reader uses."""

    def __init__(self, headers: Any) -> None:
        self._headers = headers

    def headers(self) -> Any:
        return self._headers


def test_version_header_is_read_as_utf8_and_absent_or_invalid_is_none() -> None:
    assert header_version(_Msg([("trace", b"x"), ("version", b"v2")])) == "v2"  # type: ignore[arg-type]
    assert header_version(_Msg({"version": "v3"})) == "v3"  # type: ignore[arg-type]
    assert header_version(_Msg(None)) is None  # type: ignore[arg-type]
    assert header_version(_Msg([("version", b"\xff")])) is None  # type: ignore[arg-type]
    assert header_version(_Msg([("version", b"")])) is None  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ capture


def test_capture_of_a_new_version_does_not_alarm_while_the_old_versions_drift_still_would() -> None:
    pipeline = with_default()
    versioned = pipeline.versioned["m"]
    # v1 runs clean against its own reference.
    assert fired(run(pipeline, events(600, seed=1, version="v1"))) == []
    # v2 is deployed and its inputs are shifted by three standard deviations: its first
    # rows become its reference, so the deployment itself raises nothing.
    deployment = run(pipeline, events(1200, seed=2, version="v2", shift=3.0))
    assert fired(deployment) == []
    assert deployment.evaluations, "v2 was evaluated after its capture"
    assert all(not e.result.drifted_features for e in deployment.evaluations)
    assert all(e.version == "v2" for e in deployment.evaluations)
    v2 = versioned.monitors["v2"]
    assert v2.reference_ready and v2.captured == CAPTURE
    assert v2.events_seen == 1200 and versioned.router.is_ready("v2")
    # The same shift on v1 still alarms, with v1 in the event.
    assert fired(run(pipeline, events(600, seed=3, version="v1", shift=3.0))) == ["v1"]
    # And v2 drifting away from its own reference alarms with v2.
    assert fired(run(pipeline, events(600, seed=4, version="v2", shift=0.0))) == ["v2"]


def test_status_shows_the_capture_progress_and_each_versions_state() -> None:
    pipeline = with_default()
    run(pipeline, events(300, seed=1, version="v1"))
    run(pipeline, events(120, seed=2, version="v2"))
    status = pipeline.results.get("m")
    assert status is not None and status.version == "v2"
    doc = status_document(pipeline.results, Health())["models"]["m"]
    assert doc["active_version"] == "v2"
    assert doc["reference"]["state"] == "capturing"  # the model's fields: the active version
    assert doc["versions"]["v2"] == {
        "reference": "captured",
        "state": "capturing",
        "captured": 120,
        "capture_target": CAPTURE,
        "events": 120,
        "window_events": 0,
        "evaluations": 0,
        "alert_state": "ok",
        "last_evaluation": None,
    }
    v1 = doc["versions"]["v1"]
    assert (v1["reference"], v1["state"], v1["evaluations"]) == ("configured", "ready", 1)
    assert v1["last_evaluation"]["window_events"] == 300
    assert doc["versions"][""]["reference"] == "default"
    assert status.events_total == 420  # counters sum over the versions


# ---------------------------------------------------------------------- fallback, ignore


def test_fallback_compares_new_versions_with_the_default_reference() -> None:
    pipeline = with_default()
    pipeline = Pipeline(
        config(on_new_version="fallback"), {"m": ModelReference(profile(), versions={})}
    )
    versioned = pipeline.versioned["m"]
    outcome = run(pipeline, events(900, seed=5, version="v7", shift=3.0))
    assert versioned.default.events_seen == 900 and set(versioned.monitors) == {""}
    assert fired(outcome) == ["v7"]  # the default reference's alarm names the version
    assert versioned.active == "v7"
    assert pipeline.results.get("m").version == "v7"  # type: ignore[union-attr]


def test_ignore_drops_unknown_versions_and_counts_them() -> None:
    pipeline = Pipeline(
        config(on_new_version="ignore", references={"v1": "v1.json"}),
        {"m": ModelReference(profile(), versions={"v1": profile()})},
    )
    outcome = run(pipeline, events(300, seed=1, version="v1") + events(250, seed=2, version="v9"))
    assert outcome.ignored_versions == {"m": 250}
    assert outcome.accepted == {"m": 550}
    status = pipeline.results.get("m")
    assert status is not None
    assert status.ignored_version_events == 250 and status.events_total == 300
    assert status.version == "v1"  # a dropped version never becomes active
    assert sample_value(
        scrape(pipeline.results), "driftmon_ignored_version_events_total", model="m"
    ) == (250)


# ------------------------------------------------------------------------------ bounds


def test_max_versions_evicts_the_least_recently_seen_and_keeps_counters() -> None:
    pipeline = Pipeline(config(max_versions=3), {"m": ModelReference(profile(), versions={})})
    versioned = pipeline.versioned["m"]
    for i, name in enumerate(["a", "b", "c", "d"]):
        run(pipeline, events(50, seed=i, version=name))
    assert set(versioned.monitors) == {"", "c", "d"}
    assert set(versioned.router.versions) == {"", "c", "d"}
    assert pipeline.events_seen("m") == 200  # evicted versions' events still counted
    # "a" comes back as a new version and is captured again.
    run(pipeline, events(10, seed=9, version="a"))
    assert versioned.monitors["a"].captured == 10 and "c" not in versioned.monitors


def test_a_configured_version_evicted_and_seen_again_uses_its_profile() -> None:
    pipeline = Pipeline(
        config(references={"v1": "v1.json"}, max_versions=2),
        {"m": ModelReference(profile(), versions={"v1": profile()})},
    )
    versioned = pipeline.versioned["m"]
    run(pipeline, events(50, seed=1, version="v2"))
    assert "v1" not in versioned.monitors
    run(pipeline, events(50, seed=2, version="v1"))
    assert versioned.monitors["v1"].reference_ready and versioned.router.is_ready("v1")


# ------------------------------------------------------------------ metrics, grace, events


def scrape(store: ResultsStore) -> str:
    from prometheus_client import generate_latest

    registry = CollectorRegistry()
    Metrics(registry, store, Health(), invalid_reasons=INVALID_REASONS, models=["m"])
    return generate_latest(registry).decode()


def info_series(text: str) -> list[dict[str, str]]:
    return [dict(s.labels) for s in parse_samples(text) if s.name == "driftmon_model_info"]


def test_model_info_moves_with_the_active_version() -> None:
    pipeline = with_default()
    assert info_series(scrape(pipeline.results)) == []  # no rows yet, no active version
    run(pipeline, events(100, seed=1, version="v1"))
    assert info_series(scrape(pipeline.results)) == [{"model": "m", "version": "v1"}]
    run(pipeline, events(100, seed=2, version="v2"))
    text = scrape(pipeline.results)
    assert info_series(text) == [{"model": "m", "version": "v2"}]  # v1's series is gone
    assert sample_value(text, "driftmon_reference_ready", model="m") == 0.0  # v2 is capturing
    run(pipeline, events(100, seed=3))
    assert info_series(scrape(pipeline.results)) == [{"model": "m", "version": ""}]


def test_a_version_change_clears_the_retrain_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    cleared: list[str | None] = []
    monkeypatch.setattr(Alerting, "clear_grace", lambda self: cleared.append(self.version))
    pipeline = with_default()
    run(pipeline, events(100, seed=1, version="v1"))
    run(pipeline, events(100, seed=2, version="v1"))
    assert cleared == []  # the first version seen and repeats change nothing
    run(pipeline, events(100, seed=3, version="v2"))
    assert sorted(map(str, cleared)) == ["None", "v1", "v2"]  # every monitor of the model


def test_drift_event_and_payload_carry_the_version() -> None:
    pipeline = with_default()
    outcome = run(pipeline, events(900, seed=6, version="v1", shift=3.0))
    (event,) = [e.drift_event for e in outcome.evaluations if e.drift_event is not None]
    assert event.version == "v1"
    assert drift_payload(event)["version"] == "v1"
    assert type(event).from_dict(event.to_dict()) == event
    # Versioned episodes get their own ids; an unversioned event's id is unchanged.
    from monitor.model.alerting import drift_event_id

    assert drift_event_id("m", 1.0, 3) != drift_event_id("m", 1.0, 3, "v1")
    assert drift_event_id("m", 1.0, 3, None) == drift_event_id("m", 1.0, 3)


# --------------------------------------------------------------------------- checkpoints


def checkpointed(pipeline: Pipeline) -> Any:
    state = pipeline.model_state("m", ["t/0"])
    return decode_checkpoint(encode_checkpoint(Checkpoint("r", 0.0, {}, {"m": state}))).models["m"]


@pytest.mark.parametrize("split_at", [700, 850, 1100])
def test_checkpoint_round_trip_with_two_versions(split_at: int) -> None:
    """v1 configured, v2 captured (mid-capture at 850, mid-window after): exact resume."""
    stream = (
        events(600, seed=1, version="v1")
        + events(700, seed=2, version="v2", shift=1.0)
        + events(300, seed=3, version="v1", shift=3.0)
        + events(400, seed=4, version="v2", shift=-1.0)
    )
    straight = with_default()
    expected = run(straight, stream)

    first = with_default()
    got = run(first, stream[:split_at])
    second = with_default()
    second.restore_model("m", checkpointed(first))
    got.merge(run(second, stream[split_at:]))

    def key(outcome: BatchOutcome) -> list[Any]:
        return [(e.version, e.first_event, e.last_event, e.result) for e in outcome.evaluations]

    assert key(got) == key(expected)
    assert fired(got) == fired(expected) == ["v1", "v2"]
    a, b = straight.versioned["m"], second.versioned["m"]
    assert a.router.state_dict() == b.router.state_dict()
    assert set(a.monitors) == set(b.monitors) == {"", "v1", "v2"}
    for version, monitor in a.monitors.items():
        other = b.monitors[version]
        assert (monitor.events_seen, monitor.evaluations, monitor.alerting.status) == (
            other.events_seen,
            other.evaluations,
            other.alerting.status,
        )
    assert untimed(straight.results.get("m")) == untimed(second.results.get("m"))


def untimed(status: Any) -> Any:
    """A status without its wall-clock evaluation times."""
    import dataclasses

    return dataclasses.replace(
        status,
        last_evaluation_time=None,
        versions=tuple(dataclasses.replace(v, last_evaluation_time=None) for v in status.versions),
    )


def test_a_checkpoint_without_versions_still_loads() -> None:
    """State written before the model had a versions section restores its default."""
    plain = Pipeline(validate_config(_without_versions()), {})
    stream = events(450, seed=1)
    run(plain, stream[:250])
    state = checkpointed(plain)
    assert "versions" not in state.scalars

    versioned = Pipeline(config(), {"m": ModelReference(versions={})})
    versioned.restore_model("m", state)
    assert versioned.monitors["m"].events_seen == 250
    straight = Pipeline(validate_config(_without_versions()), {})
    run(straight, stream)
    run(versioned, stream[250:])
    assert versioned.monitors["m"].evaluations == straight.monitors["m"].evaluations
    assert versioned.monitors["m"].last_result == straight.monitors["m"].last_result


def test_a_version_whose_profile_changed_starts_again_alone() -> None:
    first = with_default()
    run(first, events(400, seed=1, version="v1") + events(300, seed=2, version="v2"))
    state = checkpointed(first)
    other = Pipeline(
        config(references={"v1": "v1.json"}),
        {"m": ModelReference(profile(), versions={"v1": profile(shift=0.5, seed=7)})},
    )
    other.restore_model("m", state)
    versioned = other.versioned["m"]
    assert versioned.monitors["v1"].events_seen == 0  # its profile changed: starts again
    assert versioned.monitors["v2"].events_seen == 300  # the captured version resumed
    assert versioned.active == "v2"


def test_versions_without_their_profiles_are_refused() -> None:
    from monitor.errors import ProfileError

    with pytest.raises(ProfileError, match="v1"):
        Pipeline(config(references={"v1": "v1.json"}), {"m": profile()})


def test_config_without_versions_keeps_its_fingerprint() -> None:
    """A model without versions fingerprints exactly as before the versions section (and
    alert.retrain_on_absent_feature, which changes decisions, not state) existed."""
    import hashlib

    cfg = validate_config(_without_versions())
    data = copy.deepcopy(cfg.models["m"].model_dump(mode="json", warnings=False))
    del data["versions"]
    del data["alert"]["retrain_on_absent_feature"]
    expected = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    assert Pipeline(cfg, {}).monitors["m"].fingerprint == expected
