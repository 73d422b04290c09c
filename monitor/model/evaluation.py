"""A model's window against its installed reference, and what one evaluation produces.

:class:`WindowEvaluator` exists once a reference is installed (from a file, a capture or
a checkpoint): it holds the profile in configuration order, the sliding window and the
column encoder, and turns every slide of a full window into an :class:`Evaluation`
decided by the model's thresholds, effect sizes and alert.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from monitor.config import CountWindowConfig, ModelConfig
from monitor.errors import CheckpointError
from monitor.ingest.decode import ModelColumns
from monitor.model.absent import AbsentFeatures
from monitor.model.alerting import Alerting, AlertOutcome
from monitor.model.budget import apply_min_effects
from monitor.model.calibration import ModelThresholds
from monitor.model.encoding import ProfileEncoder
from monitor.model.performance import PerformanceEvaluation
from monitor.model.sequential import SequentialAlarm, SequentialPart, sequential_tests
from monitor.stats import (
    CountWindowSpec,
    DriftResult,
    ReferenceProfile,
    SlideInfo,
    SlotWindow,
    TimeWindowSpec,
    evaluate,
)
from monitor.webhooks.event import DriftEvent


@dataclass(frozen=True)
class Evaluation:
    """One window evaluation of one model."""

    model: str
    slide: SlideInfo
    first_event: int  # 1-based index of the window's first event in the model's stream
    last_event: int
    result: DriftResult
    alert: AlertOutcome
    duration_seconds: float
    version: str | None = None  # models with versions: the version whose window this is
    #: ``slide`` (a window evaluation) or ``sequential`` (an alarm of a sequential test,
    #: decided at once; ``last_event`` is the alarming event).
    trigger: str = "slide"

    @property
    def drift_event(self) -> DriftEvent | None:
        return self.alert.event


@dataclass
class ModelStep:
    """What one batch of a model's rows did: evaluations, performance windows, rows
    of unknown versions dropped (``versions.on_new_version: ignore``)."""

    evaluations: list[Evaluation]
    performance: list[PerformanceEvaluation]
    ignored: int = 0


def window_spec(config: ModelConfig) -> CountWindowSpec | TimeWindowSpec:
    """The statistics engine's window spec for a model's ``window:`` section."""
    window = config.window
    if isinstance(window, CountWindowConfig):
        return CountWindowSpec(events=window.events, slide=window.slide)
    return TimeWindowSpec(
        seconds=window.seconds, slide_seconds=window.slide_seconds, min_events=window.min_events
    )


def restrict_profile(profile: ReferenceProfile, names: Sequence[str]) -> ReferenceProfile:
    """The profile limited to the configured features, in configuration order."""
    return replace(profile, features={name: profile.features[name] for name in names})


class WindowEvaluator:
    """The window of one model against its installed reference profile."""

    def __init__(
        self,
        name: str,
        config: ModelConfig,
        profile: ReferenceProfile,
        *,
        numeric_columns: Sequence[str],
        categorical_columns: Sequence[str],
        limits: ModelThresholds,
        alerting: Alerting,
        min_effects: Mapping[str, Mapping[str, float]],
        absent: AbsentFeatures | None = None,
    ) -> None:
        self.name = name
        self.profile = profile
        self.window = SlotWindow(profile, window_spec(config))
        self.encoder = ProfileEncoder(profile, numeric_columns, categorical_columns)
        self._limits = limits
        self._alerting = alerting
        self._min_effects = min_effects
        self._absent = absent
        #: The sequential detectors, when the model's tests name any.
        self.sequential = (
            SequentialPart(profile, limits.tests, limits.thresholds)
            if sequential_tests(limits.tests)
            else None
        )
        features = profile.features
        self._reference_events = sum(int(f.n + f.missing) for f in features.values()) // max(
            1, len(features)
        )
        #: feature -> the reference's missing share.
        self.reference_missing = {
            name: f.missing / (f.n + f.missing) if f.n + f.missing else 0.0
            for name, f in profile.features.items()
        }

    def resume(
        self, config: ModelConfig, window_state: dict[str, Any], sequential: dict[str, Any]
    ) -> None:
        """Replace the window and the sequential detectors with checkpointed ones (empty
        states leave them as they are)."""
        if window_state:
            spec = window_spec(config)
            self.window = SlotWindow.from_state_dict(self.profile, spec, window_state)
        self.resume_sequential(sequential)

    @property
    def reference_events(self) -> int:
        """Events the reference was built from (per feature, averaged)."""
        return self._reference_events

    def fill(self, capacity: int | None) -> tuple[int, float]:
        """Events in the window and how full it is (of ``capacity`` for count windows)."""
        window = self.window
        if capacity:
            return window.events, min(1.0, window.events / capacity)
        return window.events, window.fill_ratio

    def run(self, columns: ModelColumns, offset: int) -> list[Evaluation]:
        """Feed one batch; every slide's evaluation and every alarm that changed the
        alert, in event order (``offset`` as for :meth:`evaluate`)."""
        found: list[Evaluation] = []
        for step in self.slides(columns):
            if isinstance(step, SequentialAlarm):
                alarm = self.alarm(step, offset)
                if alarm is not None:
                    found.append(alarm)
            else:
                found.append(self.evaluate(step, offset))
        return found

    def sequential_state(self) -> dict[str, Any]:
        """The sequential detectors' checkpoint entries (none without them)."""
        return self.sequential.state_dict() if self.sequential is not None else {}

    def resume_sequential(self, state: dict[str, Any]) -> None:
        """Resume the sequential detectors from a checkpoint (a state without them keeps
        them fresh); ``CheckpointError`` when it does not fit the profile."""
        if self.sequential is None or not state:
            return
        try:
            self.sequential.restore(state)
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(
                f"checkpoint of model {self.name!r}: sequential detectors: {exc}"
            ) from None

    def slides(self, columns: ModelColumns) -> Iterator[SlideInfo | SequentialAlarm]:
        """Feed rows to the window and the sequential detectors; in event order, every
        alarm and every slide at which the window is full."""
        window = self.window
        part = self.sequential
        binned = columns.binned
        if binned is not None:  # scale-out: binned by stage 1, counted as they are
            fed = window.feed_binned(binned, columns.ts)
        else:
            numeric, codes = self.encoder.encode(columns)
            fed = window.feed(numeric, codes, columns.ts)
        if part is None:
            for slide in fed:
                if window.is_full:
                    yield slide
            return
        part.use_thresholds(self._limits.thresholds)
        cells = part.cells_binned(binned) if binned is not None else part.cells(numeric, codes)
        ts = columns.ts
        before = window.events_seen
        done = 0
        for slide in fed:
            upto = window.events_seen - before
            yield from part.advance(cells[:, done:upto], ts[done:upto], before + done + 1)
            done = upto
            if window.is_full:
                yield slide
        yield from part.advance(cells[:, done:], ts[done:], before + done + 1)

    def evaluate(self, slide: SlideInfo, offset: int) -> Evaluation:
        """Decide the window at ``slide``; ``offset``: the model's events before the
        window's first event (its reference capture)."""
        started = time.perf_counter()
        profile, window, limits = self.profile, self.window, self._limits
        result = evaluate(profile, window, tests=limits.tests, thresholds=limits.thresholds)
        result = limits.decide(result)
        if self._min_effects:
            result = apply_min_effects(result, self._min_effects, self.reference_missing)
        if self._absent is not None:  # absent features: a schema problem, not drift
            result = self._absent.apply(result, window.newest_slot_absent())
        if self.sequential is not None:  # latched alarms drift their features
            result = self.sequential.merge(result, window.events_seen - window.events + 1)
        last = offset + window.events_seen
        at = slide.end if slide.end is not None else time.time()
        outcome = self._alerting.observe(
            result,
            at=at,
            slide_index=slide.slide_index,
            window_start=slide.start,
            window_end=slide.end,
            reference_missing=self.reference_missing,
        )
        return Evaluation(
            model=self.name,
            slide=slide,
            first_event=last - result.window_events + 1,
            last_event=last,
            result=result,
            alert=outcome,
            duration_seconds=time.perf_counter() - started,
        )

    def alarm(self, alarm: SequentialAlarm, offset: int) -> Evaluation | None:
        """Fold a sequential alarm into the alert at once (``None`` when the alert is
        already firing: the alarm only keeps its feature latched)."""
        if self._alerting.status.drifted or self.sequential is None:
            return None
        started = time.perf_counter()
        window = self.window
        # Only what the checkpoint holds decides (so a restore changes nothing): the
        # features latched now, by alarms within a window's length of this one.
        blank = self.sequential.blank(self.name, window.events)
        result = self.sequential.merge(blank, alarm.index - max(window.events, 1) + 1)
        slide = SlideInfo(
            slide_index=alarm.index, window_events=window.events, start=None, end=alarm.ts
        )
        outcome = self._alerting.observe(
            result,
            at=alarm.ts,
            slide_index=alarm.index,
            window_start=None,
            window_end=alarm.ts,
            reference_missing=self.reference_missing,
            immediate=True,
        )
        return Evaluation(
            model=self.name,
            slide=slide,
            first_event=offset + alarm.index - result.window_events + 1,
            last_event=offset + alarm.index,
            result=result,
            alert=outcome,
            duration_seconds=time.perf_counter() - started,
            trigger="sequential",
        )
