"""Drift confirmation: turns per-evaluation flags into alert states and drift events.

A feature is drifted in one evaluation when any of its tests crosses its threshold (the
statistics engine decides that). A model is *confirmed* drifted when at least
``min_features`` features are drifted in ``consecutive`` evaluations in a row, and it
recovers as soon as an evaluation falls short of ``min_features``.

Lifecycle, exported as ``driftmon_alert_state`` (the numbers are the gauge values)::

    ok (0) --drift seen--> pending (1) --consecutive reached--> firing (2)
      ^                       |                                   |
      |                 drift gone                           drift gone
      |                       v                                   v
      +-------------------- ok (0) <------ next evaluation --- resolved (3)

A confirmed episode hands one :class:`~monitor.webhooks.event.DriftEvent` to the webhooks,
at most once per ``cooldown_seconds``. Time here is *event time* (the end of the evaluated
window), so a replay of history triggers exactly when the live daemon would have.

A sequential test's alarm (``cusum``, ``bin_cusum``; :mod:`monitor.model.sequential`) is
folded in at once with ``immediate=True``: it goes straight to firing when ``min_features``
features are drifted, without waiting for ``consecutive`` evaluations.

Retrain grace (``retrain_grace_seconds``): once a trigger went out, a retrain is in flight,
and further triggers of the model are suppressed until the grace has passed (event time,
like the cooldown) or :meth:`Alerting.clear_grace` is called (a new model version is
deployed). The alert state still moves (an episode still fires and resolves); only the
event is withheld and counted in :attr:`RetrainGrace.suppressed`. One
:class:`RetrainGrace` is shared by every :class:`Alerting` of a model (drift and
performance), so a retrain started by either holds back both. The difference from
``cooldown_seconds``: the cooldown is per alert, silent, and measured from that alert's
last trigger; the grace is per model, counted, reported in ``/status``, and ends early
when the model version changes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any

from monitor.model.checks import check_of
from monitor.stats import DriftResult
from monitor.webhooks.event import DriftedFeature, DriftEvent

logger = logging.getLogger(__name__)


class AlertState(IntEnum):
    """Alert lifecycle states; the value is what ``driftmon_alert_state`` exports."""

    OK = 0
    PENDING = 1
    FIRING = 2
    RESOLVED = 3


@dataclass(frozen=True)
class AlertRule:
    """The ``alert:`` section of one model."""

    min_features: int = 1
    consecutive: int = 2
    cooldown_seconds: float = 3600.0


@dataclass(frozen=True)
class AlertStatus:
    """Alert bookkeeping of one model; small and immutable so it checkpoints trivially."""

    state: AlertState = AlertState.OK
    consecutive: int = 0
    last_trigger_time: float | None = None
    episodes: int = 0

    @property
    def drifted(self) -> bool:
        return self.state is AlertState.FIRING


@dataclass(frozen=True)
class AlertOutcome:
    """What one evaluation did to a model's alert."""

    status: AlertStatus
    previous: AlertState
    event: DriftEvent | None

    @property
    def changed(self) -> bool:
        return self.status.state is not self.previous


def _utc_rfc3339(epoch_seconds: float) -> str:
    from datetime import UTC, datetime

    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def drift_event_id(
    model: str, episode_start: float, slide_index: int, version: str | None = None
) -> str:
    """A deterministic id for one drift episode.

    The same stream replayed (or re-consumed after a crash) produces the same id, so the
    webhook outbox can deduplicate and orchestrators can use it as an idempotency key.
    Episodes of different model versions get different ids; without a version the id is
    the one driftmon always gave.
    """
    key = f"{model}|{episode_start!r}|{slide_index}"
    if version is not None:
        key += f"|{version}"
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"drift-{digest[:24]}"


def build_drift_event(
    result: DriftResult,
    *,
    thresholds: Mapping[str, Mapping[str, float]],
    event_id: str,
    at: float,
    window_start: float | None,
    window_end: float | None,
    version: str | None = None,
    reference_missing: Mapping[str, float] | None = None,
) -> DriftEvent:
    """Render a drift result as the event every webhook format sends; ``reference_missing``
    (feature -> the reference's missing share) gives the missing-ratio checks their value."""
    drifted: list[DriftedFeature] = []
    for feature in result.features:
        if not feature.drifted:
            continue
        limits = thresholds.get(feature.name, {})
        for key in feature.crossed:
            # "ks_p_value" is a threshold on the ks test's p-value: `compared` says so; the
            # score stays the statistic so receivers see both.
            test, compared = check_of(key)
            score = feature.scores.get(test, feature.missing_ratio)
            increase = None
            if compared == "missing_ratio_increase" and reference_missing is not None:
                increase = feature.missing_ratio - reference_missing.get(feature.name, 0.0)
            drifted.append(
                DriftedFeature(
                    feature=feature.name,
                    test=test,
                    score=float(score),
                    threshold=float(limits.get(key, float("nan"))),
                    p_value=feature.p_values.get(test),
                    compared=compared,
                    missing_ratio_increase=increase,
                )
            )
    return DriftEvent(
        id=event_id,
        time=_utc_rfc3339(at),
        model=result.model,
        window_events=result.window_events,
        window_start=window_start,
        window_end=window_end,
        drifted_features=tuple(drifted),
        features_monitored=len(result.features),
        version=version,
    )


class RetrainGrace:
    """Suppression of a model's retrain triggers while a retrain is in flight.

    ``until`` is the event time the current grace ends (``None``: no grace running);
    ``suppressed`` counts the triggers withheld (model state: it moves with checkpoints).

    >>> grace = RetrainGrace(600.0)
    >>> grace.active(100.0)
    False
    >>> grace.start(100.0)
    >>> grace.active(699.0), grace.active(700.0)
    (True, False)
    >>> grace.clear()
    >>> grace.active(150.0)
    False
    """

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.until: float | None = None
        self.suppressed = 0

    def active(self, at: float) -> bool:
        """True when a trigger at event time ``at`` falls inside the grace."""
        return self.until is not None and at < self.until

    def start(self, at: float) -> None:
        """A trigger went out at event time ``at`` (no grace when ``seconds`` is 0)."""
        self.until = at + self.seconds if self.seconds > 0 else None

    def clear(self) -> None:
        """End the grace now (the model version changed)."""
        self.until = None

    def state(self) -> dict[str, float | int | None]:
        """The checkpointed part: when the grace ends and what it withheld."""
        return {"until": self.until, "suppressed": self.suppressed}

    def restore(self, saved: Mapping[str, Any] | None) -> None:
        """Resume from :meth:`state` (a checkpoint without one: no grace running)."""
        saved = saved or {}
        until = saved.get("until")
        self.until = None if until is None else float(until)
        self.suppressed = int(saved.get("suppressed", 0))


class Alerting:
    """The confirmation state machine of one model (of one model version).

    ``version`` is the model version the evaluations belong to; it is carried by the
    drift events (``None``: the model has no versions, or rows without one).
    ``grace``: the model's :class:`RetrainGrace`, shared with its other alerts (a new,
    inactive one when not given).
    """

    def __init__(
        self,
        model: str,
        rule: AlertRule,
        thresholds: Mapping[str, Mapping[str, float]],
        status: AlertStatus | None = None,
        version: str | None = None,
        grace: RetrainGrace | None = None,
    ) -> None:
        self.model = model
        self.rule = rule
        self.thresholds = thresholds
        self.status = status or AlertStatus()
        self.version = version
        self.grace = grace if grace is not None else RetrainGrace()

    def set_thresholds(self, thresholds: Mapping[str, Mapping[str, float]]) -> None:
        """The thresholds drift events quote from now on (a calibration replaced them)."""
        self.thresholds = thresholds

    def set_version(self, version: str | None) -> None:
        """The model version the next evaluations belong to (carried by drift events)."""
        self.version = version

    def restore(self, status: AlertStatus) -> None:
        """Resume the state machine where a checkpoint left it."""
        self.status = status

    def clear_grace(self) -> None:
        """End the model's retrain grace now, so the next confirmed episode triggers.

        Called when the model version changes: the retrain that the grace waited for has
        been deployed. The grace is shared by the model's alerts, so this clears it for
        all of them.
        """
        if self.grace.until is not None:
            logger.info("retrain grace cleared", extra={"model": self.model})
        self.grace.clear()

    def observe(
        self,
        result: DriftResult,
        *,
        at: float,
        slide_index: int,
        window_start: float | None = None,
        window_end: float | None = None,
        reference_missing: Mapping[str, float] | None = None,
        immediate: bool = False,
    ) -> AlertOutcome:
        """Fold one evaluation into the alert state; ``at`` is the event time of the window end.

        ``immediate``: a sequential test's alarm, decided already: it confirms at once when
        ``min_features`` features are drifted (no ``consecutive`` evaluations needed), and
        changes nothing when they are not (an evaluation in between would).
        """
        previous = self.status.state
        meets = len(result.drifted_features) >= self.rule.min_features
        status = self.status
        event: DriftEvent | None = None
        if immediate and not meets:
            return AlertOutcome(status=status, previous=previous, event=None)
        if meets:
            consecutive = status.consecutive + 1
            if immediate:
                consecutive = max(consecutive, self.rule.consecutive)
            if consecutive >= self.rule.consecutive:
                state = AlertState.FIRING
            else:
                state = AlertState.PENDING
            status = replace(status, consecutive=consecutive, state=state)
            if state is AlertState.FIRING and previous is not AlertState.FIRING:
                status = replace(status, episodes=status.episodes + 1)
                cooled = (
                    status.last_trigger_time is None
                    or at - status.last_trigger_time >= self.rule.cooldown_seconds
                )
                if cooled and self.grace.active(at):
                    self.grace.suppressed += 1
                    logger.info(
                        "drift confirmed within the retrain grace, trigger suppressed",
                        extra={
                            "model": self.model,
                            "grace_until": self.grace.until,
                            "suppressed": self.grace.suppressed,
                        },
                    )
                elif cooled:
                    event = build_drift_event(
                        result,
                        thresholds=self.thresholds,
                        event_id=drift_event_id(self.model, at, slide_index, self.version),
                        at=at,
                        window_start=window_start,
                        window_end=window_end,
                        version=self.version,
                        reference_missing=reference_missing,
                    )
                    status = replace(status, last_trigger_time=at)
                    self.grace.start(at)
                else:
                    logger.info(
                        "drift confirmed within cooldown, no trigger",
                        extra={"model": self.model, "cooldown_seconds": self.rule.cooldown_seconds},
                    )
        else:
            state = AlertState.RESOLVED if previous is AlertState.FIRING else AlertState.OK
            if status.consecutive or state is not previous:  # a quiet model's status stays
                status = replace(status, consecutive=0, state=state)
        self.status = status
        if status.state is not previous:
            logger.info(
                "alert state changed",
                extra={
                    "model": self.model,
                    "from_state": previous.name.lower(),
                    "to_state": status.state.name.lower(),
                    "drifted_features": ",".join(result.drifted_features),
                    "consecutive": status.consecutive,
                    "triggered": event is not None,
                },
            )
        return AlertOutcome(status=status, previous=previous, event=event)
