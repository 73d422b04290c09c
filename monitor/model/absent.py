"""Features absent from every event of a window: a schema problem, not drift.

A feature the producer stopped sending (renamed, dropped, nested elsewhere) has a window
missing ratio climbing to 1.0, which the missing-ratio check would flag as drift and
answer with a retrain, though no retrain can fix a producer that does not send the
feature. A feature is *absent* in an evaluation when no event of the newest slide carried
it (so as soon as the producer stops, not only once the whole window lacks it, which
would be after the missing-ratio check had already fired), or when the whole window
lacks it. :class:`AbsentFeatures` names such features in every evaluation, logs one line when a
feature becomes absent and one when it is back (one per episode, not per evaluation),
and, unless ``alert.retrain_on_absent_feature`` is set, takes them out of the drift
decision: they are reported absent (``driftmon_feature_absent``, ``/status``), not
drifted, and count neither toward ``min_features`` nor in a drift event.

>>> from monitor.stats import DriftResult, FeatureKind, FeatureResult
>>> def feature(name, missing):
...     return FeatureResult(name, FeatureKind.NUMERIC, 0 if missing == 1 else 90, missing,
...                          {}, {}, ("missing_ratio",) if missing == 1 else (), missing == 1, True)
>>> absent = AbsentFeatures("fraud", retrain=False)
>>> result = absent.apply(
...     DriftResult("fraud", 100, (feature("amount", 0.1), feature("age", 1.0))), frozenset()
... )
>>> absent.current, result.drifted_features
(('age',), ())
"""

from __future__ import annotations

import logging
from dataclasses import replace
from operator import attrgetter

from monitor.stats import DriftResult

logger = logging.getLogger(__name__)

_MISSING_RATIO = attrgetter("missing_ratio")


class AbsentFeatures:
    """Which features of one model (or version) are absent, and what that does to drift."""

    def __init__(self, model: str, *, retrain: bool, version: str | None = None) -> None:
        self.model = model
        self.retrain = retrain
        self.version = version
        #: Features missing from every event of the latest evaluated window.
        self.current: tuple[str, ...] = ()

    def apply(self, result: DriftResult, newest_slot_absent: frozenset[str]) -> DriftResult:
        """Note the absent features of ``result`` (``newest_slot_absent``: the features no
        event of the newest slide carried); without ``retrain``, the result with them no
        longer drifted."""
        features = result.features
        if newest_slot_absent or (
            result.window_events and any(map((1.0).__le__, map(_MISSING_RATIO, features)))
        ):
            absent = tuple(
                f.name
                for f in features
                if f.name in newest_slot_absent or (f.missing_ratio >= 1.0 and result.window_events)
            )
        else:  # every evaluation of a healthy model: one C-level pass over the features
            absent = ()
        if absent != self.current:
            self._log_changes(absent)
            self.current = absent
        if not absent or self.retrain:
            return result
        features = tuple(
            replace(f, drifted=False, crossed=()) if f.name in absent and f.drifted else f
            for f in result.features
        )
        return replace(result, features=features)

    def _log_changes(self, absent: tuple[str, ...]) -> None:
        where = {"model": self.model}
        if self.version is not None:
            where["version"] = self.version
        for name in absent:
            if name not in self.current:
                logger.warning(
                    "feature absent: no event of the newest slide carries it; a schema "
                    "problem, not drift",
                    extra={
                        **where,
                        "feature": name,
                        "counted_as_drift": self.retrain,
                        "hint": "check that the producer still sends this feature under "
                        "this name; alert.retrain_on_absent_feature decides whether it "
                        "counts as drift",
                    },
                )
        for name in self.current:
            if name not in absent:
                logger.info("feature present again", extra={**where, "feature": name})
