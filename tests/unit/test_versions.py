"""VersionRouter: per-version references, capture instead of alarms, bounded state."""

from __future__ import annotations

import pytest

from monitor.model.versions import DEFAULT_VERSION, Action, VersionRouter


def actions(result):
    return [(s.version, s.action, s.rows.tolist()) for s in result.slices]


def test_known_versions_are_monitored_and_rows_keep_batch_order():
    r = VersionRouter(["v1", "v2"])
    out = r.route(["v2", "v1", "v2", None])
    assert actions(out) == [
        ("v2", Action.MONITOR, [0, 2]),
        ("v1", Action.MONITOR, [1]),
        (DEFAULT_VERSION, Action.MONITOR, [3]),
    ]
    assert r.active_version == DEFAULT_VERSION
    assert out.new_versions == ()


def test_single_version_batch_fast_path():
    r = VersionRouter(["v1"])
    assert actions(r.route(["v1"] * 5)) == [("v1", Action.MONITOR, [0, 1, 2, 3, 4])]
    assert r.route([]).slices == ()


def test_new_version_is_captured_instead_of_alarming():
    r = VersionRouter(["v1"], capture_events=5)
    first = r.route(["v2", "v2", "v1"])
    assert first.new_versions == ("v2",)
    assert first.slices[0].action is Action.CAPTURE
    assert first.slices[0].capture_remaining == 3
    second = r.route(["v2"] * 4)
    assert second.slices[0].capture_remaining == 0
    assert not r.is_ready("v2")
    r.mark_ready("v2")
    assert r.route(["v2"]).slices[0].action is Action.MONITOR
    assert r.active_version == "v2"


def test_fallback_and_ignore_policies():
    fb = VersionRouter(["v1"], on_new_version="fallback")
    assert fb.route(["v9"]).slices[0].action is Action.FALLBACK
    assert "v9" not in fb.versions
    no_default = VersionRouter(["v1"], on_new_version="fallback", has_default=False)
    assert no_default.route(["v9"]).slices[0].action is Action.SKIP
    ig = VersionRouter(["v1"], on_new_version="ignore")
    assert ig.route(["v9"]).slices[0].action is Action.SKIP


def test_state_is_bounded_and_keeps_the_default_reference():
    r = VersionRouter(max_versions=3)
    r.route(["a"])
    r.route(["b"])
    out = r.route(["c"])
    assert out.evicted == ("a",)
    assert set(r.versions) == {DEFAULT_VERSION, "b", "c"}
    r.route([None])
    assert r.route(["d"]).evicted == ("b",)


def test_checkpoint_round_trip():
    r = VersionRouter(["v1"], capture_events=10)
    r.route(["v2", "v2"])
    state = r.state_dict()
    back = VersionRouter(["v1"], capture_events=10)
    back.load_state_dict(state)
    assert back.versions == r.versions and back.active_version == "v2"
    assert back.route(["v2"]).slices[0].capture_remaining == 7


@pytest.mark.parametrize(
    "kwargs", [{"on_new_version": "alarm"}, {"capture_events": 0}, {"max_versions": 0}]
)
def test_bad_settings(kwargs):
    with pytest.raises(ValueError):
        VersionRouter(**kwargs)


def test_a_configured_version_evicted_and_seen_again_is_monitored_not_captured():
    r = VersionRouter(["v1"], max_versions=2)
    assert r.route(["v2"]).evicted == ("v1",)
    assert r.is_listed("v1") and "v1" not in r.versions
    out = r.route(["v1"])
    assert actions(out) == [("v1", Action.MONITOR, [0])]
    assert out.new_versions == ()


def test_a_skipped_version_never_becomes_active():
    r = VersionRouter(["v1"], on_new_version="ignore")
    r.route(["v1", "v9"])
    assert r.active_version == "v1"
    r.route(["v9", "v9"])
    assert r.active_version == "v1"
    assert VersionRouter(on_new_version="ignore").route(["v9"]).slices[0].action is Action.SKIP


def test_captured_counts_rows_until_ready():
    r = VersionRouter(capture_events=10)
    r.route(["v2"] * 4)
    assert r.captured("v2") == 4
    r.mark_ready("v2")
    assert r.captured("v2") == 0 and r.captured("unknown") == 0
