"""Fault 5 of issue 6: the producers' schema changes in the middle of the stream.

One stream, four phases, through the real broker and daemon:

1. ``CLEAN`` ordinary events;
2. ``ADDED`` events that carry a feature nobody configured (``new_feature``): they are
   accepted, the extra key is ignored and counted in ``driftmon_unknown_features_total``;
3. ``DROPPED`` events without the configured ``velocity_1h``: they are accepted, the
   window's missing ratio of that feature climbs from 0 to 1, and the feature is reported
   *absent* (``driftmon_feature_absent``, ``/status``, one log line): a schema problem,
   not drift, so it is not flagged drifted and the model does not alert;
4. ``RETYPED`` events whose ``amount`` became a string: each is rejected as ``wrong_type``,
   logged (rate-limited) with its ``topic/partition/offset``, and the statistics do not
   see it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest

from monitor.demo import synthetic
from tests.integration.daemon_harness import events, write_config, write_reference
from tests.support.daemon import RunningDaemon
from tests.support.kafka import produce
from tests.support.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLEAN, ADDED, DROPPED, RETYPED = 5_000, 2_000, 5_000, 700


def reshape(messages: list[bytes], change: str) -> list[bytes]:
    out = []
    for raw in messages:
        event = orjson.loads(raw)
        if change == "added":
            event["features"]["new_feature"] = 1.0
        elif change == "dropped":
            del event["features"]["velocity_1h"]
        else:
            event["features"]["amount"] = f"{event['features']['amount']} EUR"
        out.append(orjson.dumps(event))
    return out


def test_schema_changes_are_counted_reported_and_rejected(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="monitor")
    topic = kafka_topic(partitions=1)
    config = write_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        group=f"{topic}-g",
        reference=write_reference(tmp_path),
    )
    ts = 1_764_150_000.0
    stream = events(CLEAN, seed=41, start_ts=ts)
    stream += reshape(events(ADDED, seed=42, start_ts=ts + 100, id_offset=CLEAN), "added")
    stream += reshape(events(DROPPED, seed=43, start_ts=ts + 200, id_offset=10**6), "dropped")
    stream += reshape(events(RETYPED, seed=44, start_ts=ts + 300, id_offset=10**7), "retyped")
    produce(kafka_bootstrap, topic, stream, key=synthetic.MODEL)

    accepted = CLEAN + ADDED + DROPPED
    with RunningDaemon(config) as run:
        wait_until(lambda: run.events_total >= accepted, 60, "accepted events consumed")
        wait_until(
            lambda: run.metric("driftmon_invalid_events_total", reason="wrong_type") == RETYPED,
            15,
            "retyped events rejected",
        )
        assert run.events_total == accepted
        assert run.metric("driftmon_events_total", model="fraud") == accepted

        # 2. The new feature: ignored (no series of its own) and counted once per event.
        assert run.metric("driftmon_unknown_features_total", model="fraud") == ADDED
        assert run.metric("driftmon_feature_drifted", model="fraud", feature="new_feature") is None

        # 3. The dropped feature: missing ratio 0 before, 1 once the window holds only
        # events without it; reported absent from the first slide without it, never drifted.
        def velocity(evaluation_index: int) -> tuple[float, tuple[str, ...], bool]:
            result = run.evaluations[evaluation_index].result
            (feature,) = [f for f in result.features if f.name == "velocity_1h"]
            return feature.missing_ratio, feature.crossed, feature.drifted

        last_clean = max(i for i, e in enumerate(run.evaluations) if e.last_event <= CLEAN + ADDED)
        assert velocity(last_clean) == (0.0, (), False)
        ratios = [velocity(i)[0] for i in range(last_clean, len(run.evaluations))]
        assert ratios == sorted(ratios), "missing ratio rises monotonically"
        assert velocity(-1) == (1.0, (), False)
        assert not any(velocity(i)[2] for i in range(last_clean, len(run.evaluations)))
        assert all(e.drift_event is None for e in run.evaluations)
        assert run.metric("driftmon_missing_ratio", model="fraud", feature="velocity_1h") == 1.0
        assert run.metric("driftmon_feature_absent", model="fraud", feature="velocity_1h") == 1.0
        assert run.metric("driftmon_feature_absent", model="fraud", feature="amount") == 0.0
        assert run.metric("driftmon_feature_drifted", model="fraud", feature="velocity_1h") == 0.0
        assert run.metric("driftmon_model_drifted", model="fraud") == 0.0
        assert run.evaluations[-1].result.drifted_features == ()
        last = run.get("/status").json()["models"]["fraud"]["last_evaluation"]
        assert last["absent_features"] == ["velocity_1h"]
        assert last["features"]["velocity_1h"]["absent"] is True
        absent_lines = [r for r in caplog.records if r.getMessage().startswith("feature absent")]
        assert [r.feature for r in absent_lines] == ["velocity_1h"]  # type: ignore[attr-defined]

        # 4. The retyped events: rejected, logged with their source within the rate
        # limit (5 lines a minute per reason), and the window did not see them.
        rejected = [r for r in caplog.records if r.getMessage() == "event rejected"]
        first = CLEAN + ADDED + DROPPED
        assert [r.source for r in rejected] == [f"{topic}/0/{first + i}" for i in range(5)]  # type: ignore[attr-defined]
        assert all(r.reason == "wrong_type" and "'amount'" in r.detail for r in rejected)  # type: ignore[attr-defined]
        assert run.evaluations[-1].last_event == accepted
        assert run.metric("driftmon_invalid_events_total", reason="not_json") == 0.0
