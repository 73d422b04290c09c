"""The drift confirmation state machine: min_features, consecutive, cooldown, lifecycle."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.model.alerting import Alerting, AlertRule, AlertState, RetrainGrace, drift_event_id


@dataclass(frozen=True)
class FakeFeature:
    name: str
    drifted: bool
    crossed: tuple[str, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)
    p_values: dict[str, float] = field(default_factory=dict)
    missing_ratio: float = 0.0


@dataclass(frozen=True)
class FakeResult:
    model: str
    features: tuple[FakeFeature, ...]
    window_events: int = 1000

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drifted)


THRESHOLDS = {"a": {"psi": 0.2, "ks_p_value": 0.001}, "b": {"psi": 0.2}}


def result(*drifted: str) -> FakeResult:
    features = []
    for name in ("a", "b", "c"):
        if name in drifted:
            features.append(
                FakeFeature(
                    name,
                    True,
                    crossed=("psi", "ks_p_value") if name == "a" else ("psi",),
                    scores={"psi": 0.5, "ks": 0.3},
                    p_values={"ks": 1e-9},
                )
            )
        else:
            features.append(FakeFeature(name, False, scores={"psi": 0.01}))
    return FakeResult("fraud", tuple(features))


def machine(**rule: float) -> Alerting:
    return Alerting("fraud", AlertRule(**rule), THRESHOLDS)  # type: ignore[arg-type]


def observe(alerting: Alerting, res: FakeResult, at: float, slide: int = 0):
    return alerting.observe(res, at=at, slide_index=slide)  # type: ignore[arg-type]


def test_consecutive_evaluations_confirm_then_recover_through_the_lifecycle() -> None:
    alerting = machine(min_features=1, consecutive=2, cooldown_seconds=3600)
    states = []
    events = []
    for i, res in enumerate([result(), result("a"), result("a"), result("a"), result(), result()]):
        outcome = observe(alerting, res, at=1000.0 + i, slide=i)
        states.append(outcome.status.state)
        events.append(outcome.event)
    assert states == [
        AlertState.OK,
        AlertState.PENDING,
        AlertState.FIRING,
        AlertState.FIRING,
        AlertState.RESOLVED,
        AlertState.OK,
    ]
    assert [e is not None for e in events] == [False, False, True, False, False, False]


def test_a_gap_resets_the_consecutive_count() -> None:
    alerting = machine(min_features=1, consecutive=2)
    for i, res in enumerate([result("a"), result(), result("a"), result()]):
        outcome = observe(alerting, res, at=float(i))
        assert outcome.status.state is not AlertState.FIRING
        assert outcome.event is None


def test_min_features_counts_distinct_drifted_features() -> None:
    alerting = machine(min_features=2, consecutive=1)
    assert observe(alerting, result("a"), at=0.0).status.state is AlertState.OK
    outcome = observe(alerting, result("a", "b"), at=1.0)
    assert outcome.status.state is AlertState.FIRING
    assert outcome.event is not None
    assert {f.feature for f in outcome.event.drifted_features} == {"a", "b"}


def test_cooldown_suppresses_a_second_trigger_until_it_elapses() -> None:
    alerting = machine(min_features=1, consecutive=1, cooldown_seconds=100)
    first = observe(alerting, result("a"), at=0.0)
    assert first.event is not None
    observe(alerting, result(), at=10.0)  # resolved
    again = observe(alerting, result("a"), at=50.0)  # a new episode inside the cooldown
    assert again.status.state is AlertState.FIRING and again.event is None
    observe(alerting, result(), at=60.0)
    later = observe(alerting, result("a"), at=150.0)
    assert later.event is not None
    assert later.status.episodes == 3


def test_the_event_names_each_crossed_threshold_with_score_and_limit() -> None:
    alerting = machine(min_features=1, consecutive=1)
    event = observe(alerting, result("a"), at=1_764_150_000.0, slide=7).event
    assert event is not None
    by_test = {(f.feature, f.test): f for f in event.drifted_features}
    assert by_test[("a", "psi")].score == 0.5
    assert by_test[("a", "psi")].threshold == 0.2
    ks = by_test[("a", "ks")]
    assert (ks.score, ks.threshold, ks.p_value) == (0.3, 0.001, 1e-9)
    # What each threshold was compared with is named, not left to be guessed.
    assert (by_test[("a", "psi")].compared, ks.compared, ks.value) == ("score", "p_value", 1e-9)
    assert event.features_monitored == 3
    assert event.time == "2025-11-26T09:40:00.000Z"
    assert event.id == drift_event_id("fraud", 1_764_150_000.0, 7)


def test_a_missing_ratio_check_carries_the_increase_it_compared() -> None:
    limits = {"v": {"missing_ratio": 0.1}}
    alerting = Alerting("fraud", AlertRule(min_features=1, consecutive=1), limits)
    absent = FakeFeature("v", True, crossed=("missing_ratio",), missing_ratio=1.0)
    res = FakeResult("fraud", (absent,))
    event = alerting.observe(res, at=1.0, slide_index=0, reference_missing={"v": 0.02}).event  # type: ignore[arg-type]
    assert event is not None
    (check,) = event.drifted_features
    assert (check.test, check.compared, check.score) == (
        "missing_ratio",
        "missing_ratio_increase",
        1.0,
    )
    assert check.missing_ratio_increase == 0.98 and check.value == 0.98


def test_event_ids_are_deterministic_and_distinct_per_episode() -> None:
    assert drift_event_id("m", 1.0, 2) == drift_event_id("m", 1.0, 2)
    assert drift_event_id("m", 1.0, 2) != drift_event_id("m", 1.0, 3)
    assert drift_event_id("m", 1.0, 2) != drift_event_id("n", 1.0, 2)


# ------------------------------------------------------------------------ retrain grace


def graced(grace_seconds: float, **rule: float) -> Alerting:
    return Alerting(
        "fraud",
        AlertRule(**rule),  # type: ignore[arg-type]
        THRESHOLDS,
        grace=RetrainGrace(grace_seconds),
    )


def episode(alerting: Alerting, at: float):
    """One confirmed episode (consecutive=1) at ``at``, resolved right after."""
    outcome = observe(alerting, result("a"), at=at)
    observe(alerting, result(), at=at + 1)
    return outcome


def test_grace_suppresses_triggers_until_it_passes_while_the_state_still_moves() -> None:
    alerting = graced(1000.0, min_features=1, consecutive=1, cooldown_seconds=0)
    assert episode(alerting, 0.0).event is not None
    assert alerting.grace.until == 1000.0
    inside = episode(alerting, 500.0)
    assert inside.status.state is AlertState.FIRING and inside.event is None
    assert inside.status.episodes == 2
    assert episode(alerting, 999.0).event is None
    assert alerting.grace.suppressed == 2
    after = episode(alerting, 1000.0)  # event time reached the end of the grace
    assert after.event is not None and alerting.grace.until == 2000.0
    assert alerting.grace.suppressed == 2


def test_clear_grace_lets_the_next_episode_trigger() -> None:
    alerting = graced(1000.0, min_features=1, consecutive=1, cooldown_seconds=0)
    assert episode(alerting, 0.0).event is not None
    assert episode(alerting, 10.0).event is None
    alerting.clear_grace()  # a new model version went live
    assert alerting.grace.until is None
    assert episode(alerting, 20.0).event is not None
    assert alerting.grace.suppressed == 1


def test_zero_grace_is_off() -> None:
    alerting = graced(0.0, min_features=1, consecutive=1, cooldown_seconds=0)
    assert all(episode(alerting, float(t)).event is not None for t in (0, 10, 20))
    assert alerting.grace.until is None and alerting.grace.suppressed == 0


def test_one_grace_is_shared_by_the_alerts_of_a_model() -> None:
    grace = RetrainGrace(100.0)
    rule = AlertRule(min_features=1, consecutive=1, cooldown_seconds=0)
    drift = Alerting("fraud", rule, THRESHOLDS, grace=grace)
    performance = Alerting("fraud", rule, THRESHOLDS, grace=grace)
    assert episode(drift, 0.0).event is not None
    assert episode(performance, 50.0).event is None  # the retrain is already in flight
    assert grace.suppressed == 1
    performance.clear_grace()  # clearing through either alert clears the model's grace
    assert episode(drift, 60.0).event is not None


def test_the_cooldown_applies_first_and_is_not_counted_as_suppressed() -> None:
    alerting = graced(50.0, min_features=1, consecutive=1, cooldown_seconds=100)
    assert episode(alerting, 0.0).event is not None
    assert episode(alerting, 20.0).event is None  # inside both: the cooldown holds it back
    assert alerting.grace.suppressed == 0
    assert episode(alerting, 120.0).event is not None  # both over
