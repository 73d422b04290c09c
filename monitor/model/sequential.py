"""A model's sequential detectors (``cusum``, ``bin_cusum``) in its alert lifecycle.

The detectors (:mod:`monitor.stats.sequential`) see every event of the window's stream,
batch by batch, in the order the window takes them. An alarm drifts its feature at once:
:class:`SequentialPart` turns it into a result the model's alert folds in immediately,
without waiting for a slide or for ``consecutive`` evaluations (the detector's threshold
already carries the false-alarm budget). After an alarm the detector re-arms (restarts
from 0) and the feature stays *latched*, drifted in every evaluation whose window holds an
alarm of it: a change that persists alarms again and keeps its one episode firing; once
it is gone the latch runs out within a window, the episode resolves, and the next alarm
starts a new episode. So one episode gives one trigger.

State (the detectors' statistics and recent-data memory, each feature's last alarm) goes
into the model's checkpoint under ``sequential.``, so a restore resumes every statistic
exactly where the checkpoint left it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from monitor.stats import (
    REGISTRY,
    SEQUENTIAL_TESTS,
    DriftResult,
    DriftThresholds,
    FeatureKind,
    FeatureResult,
    ReferenceProfile,
)
from monitor.stats.binned import BinnedRows
from monitor.stats.profile import NumericProfile
from monitor.stats.sequential import SequentialDetectors, build_plan, cells_of


@dataclass(frozen=True)
class SequentialAlarm:
    """One alarm: ``index`` is the event's 1-based position in the window's stream."""

    index: int
    ts: float
    feature: str
    test: str
    statistic: float


def sequential_tests(tests: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Feature -> the sequential tests among ``tests`` (features without any left out)."""
    out = {f: [t for t in names if REGISTRY[t].sequential] for f, names in tests.items()}
    return {f: names for f, names in out.items() if names}


def _limits(thresholds: Mapping[str, DriftThresholds]) -> dict[str, dict[str, float | None]]:
    return {
        name: {test: getattr(limits, test) for test in SEQUENTIAL_TESTS}
        for name, limits in thresholds.items()
    }


class SequentialPart:
    """The detectors of one model's installed reference, and their latches."""

    def __init__(
        self,
        profile: ReferenceProfile,
        tests: Mapping[str, Sequence[str]],
        thresholds: Mapping[str, DriftThresholds],
    ) -> None:
        self.profile = profile
        self.tests = sequential_tests(tests)
        self.detectors = SequentialDetectors(build_plan(profile, self.tests, _limits(thresholds)))
        self._thresholds = thresholds
        #: feature -> its latest alarm.
        self.last_alarm: dict[str, SequentialAlarm] = {}

    def use_thresholds(self, thresholds: Mapping[str, DriftThresholds]) -> None:
        """Follow the model's thresholds (a calibration replaced them); state is kept."""
        if thresholds is not self._thresholds:
            self._thresholds = thresholds
            self.detectors.set_thresholds(_limits(thresholds))

    def cells(self, numeric: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The batch's cells (features x rows), computed once for the whole batch."""
        plan = self.detectors.plan
        return cells_of(numeric, codes, plan.edges, plan.n_cells)

    def cells_binned(self, binned: BinnedRows) -> np.ndarray:
        """The cells of rows binned by scale-out's stage 1 (code ``1 + cell``, ``0``
        missing): the same cells as binning their values here."""
        columns = np.concatenate((binned.num_cols, binned.cat_cols))
        return np.ascontiguousarray(binned.codes[:, columns].T, dtype=np.int32) - 1

    def advance(self, cells: np.ndarray, ts: np.ndarray, first_index: int) -> list[SequentialAlarm]:
        """Run the detectors over ``cells`` (rows whose first is event ``first_index`` of
        the window's stream, event times ``ts``); the alarms in event order."""
        found = []
        for a in self.detectors.run_cells(cells):
            alarm = SequentialAlarm(
                first_index + a.row, float(ts[a.row]), a.feature, a.test, a.statistic
            )
            self.last_alarm[a.feature] = alarm
            found.append(alarm)
        return found

    def latched(self, first_index: int) -> dict[str, SequentialAlarm]:
        """Features whose latest alarm is at or after event ``first_index``."""
        return {f: a for f, a in self.last_alarm.items() if a.index >= first_index}

    def merge(self, result: DriftResult, first_index: int) -> DriftResult:
        """``result`` with the detectors' statistics as scores and the features latched
        since ``first_index`` drifted (their score: the statistic that alarmed)."""
        scores = self.detectors.scores()
        latched = self.latched(first_index)
        features = []
        for f in result.features:
            mine = scores.get(f.name)
            if mine is None:
                features.append(f)
                continue
            merged = {**f.scores, **mine}
            alarm = latched.get(f.name)
            if alarm is None:
                features.append(replace(f, scores=merged))
                continue
            merged[alarm.test] = alarm.statistic
            crossed = f.crossed if alarm.test in f.crossed else (*f.crossed, alarm.test)
            features.append(replace(f, scores=merged, crossed=crossed, drifted=True))
        return replace(result, features=tuple(features))

    def blank(self, model: str, window_events: int) -> DriftResult:
        """A result with no window statistics (before the window's first evaluation)."""
        features = []
        for name, f in self.profile.features.items():
            kind = FeatureKind.NUMERIC if isinstance(f, NumericProfile) else FeatureKind.CATEGORICAL
            features.append(
                FeatureResult(
                    name=name,
                    kind=kind,
                    n=0,
                    missing_ratio=math.nan,
                    scores={},
                    p_values={},
                    crossed=(),
                    drifted=False,
                    enough_data=False,
                )  # fmt: skip
            )
        return DriftResult(model, window_events, tuple(features))

    # -- checkpoints -------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Detector arrays and the latest alarms (JSON), for ``put_state_dict``."""
        state = self.detectors.state_dict()
        state["alarms"] = [
            [a.feature, a.index, a.ts, a.test, a.statistic] for a in self.last_alarm.values()
        ]
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict`; ``ValueError`` when it does not fit."""
        self.detectors.load_state_dict(state)
        alarms: dict[str, SequentialAlarm] = {}
        for feature, index, ts, test, statistic in state.get("alarms", []):
            if feature not in self.profile.features or test not in SEQUENTIAL_TESTS:
                raise ValueError(f"checkpointed alarm of unknown feature or test {feature!r}")
            alarms[str(feature)] = SequentialAlarm(
                int(index), float(ts), str(feature), str(test), float(statistic)
            )
        self.last_alarm = alarms
