"""What to monitor of one model's performance: the ``task`` and ``performance`` sections.

:class:`PerformanceSpec` checks the combination (metrics offered for the task, thresholds
only on monitored metrics, estimation only where calibrated probabilities exist) and
raises ``ValueError`` with the key path, which the config layer reports as a problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from monitor.performance.estimate import ESTIMATED_METRICS
from monitor.performance.join import JoinLimits
from monitor.performance.metrics import METRICS, Task
from monitor.performance.thresholds import Threshold

__all__ = ["EstimationSpec", "PerformanceSpec"]


@dataclass(frozen=True)
class EstimationSpec:
    """``performance.estimation``: the window counts predictions, labelled or not."""

    metrics: tuple[str, ...] = ESTIMATED_METRICS
    window_events: int = 5000
    window_slide: int = 500
    thresholds: Mapping[str, Threshold] = field(default_factory=dict)


@dataclass(frozen=True)
class PerformanceSpec:
    """The ``task`` and ``performance`` sections of one model.

    ``n_classes`` is ``len(classes)`` for multiclass; ``prediction_width`` is 1 for a
    score, value or class index and ``k`` for probability rows. Raises ``ValueError``
    with the key path on an inconsistent combination.
    """

    task: Task
    metrics: tuple[str, ...] = ()
    window_events: int = 5000
    window_slide: int = 500
    thresholds: Mapping[str, Threshold] = field(default_factory=dict)
    join: JoinLimits = field(default_factory=JoinLimits)
    classes: tuple[str, ...] = ()
    prediction_width: int = 1
    decision_threshold: float = 0.5
    estimation: EstimationSpec | None = None
    #: Prediction rows carry the model's own predicted class index as an extra last
    #: column (``performance.predicted_label``); the class metrics use it.
    predicted_label: bool = False

    def __post_init__(self) -> None:
        valid = METRICS[self.task]
        if not self.metrics:
            object.__setattr__(self, "metrics", valid)
        for key, names, allowed in (
            ("metrics", self.metrics, valid),
            ("thresholds", tuple(self.thresholds), self.metrics),
        ):
            bad = [m for m in names if m not in allowed]
            if bad:
                raise ValueError(
                    f"performance.{key}: {', '.join(bad)} not available for {self.task} "
                    f"(choose from {', '.join(allowed)})"
                )
        if self.predicted_label and self.task is Task.REGRESSION:
            raise ValueError("performance.predicted_label: a regression has no class")
        if self.task is Task.MULTICLASS and len(self.classes) < 2:
            raise ValueError("performance: a multiclass model needs prediction.classes")
        if self.estimation is not None:
            if self.task is Task.REGRESSION:
                raise ValueError("performance.estimation: not offered for regression")
            if self.task is Task.MULTICLASS and self.prediction_width != self.n_classes:
                raise ValueError("performance.estimation: needs probability predictions")
            bad = [
                m
                for m in (*self.estimation.metrics, *self.estimation.thresholds)
                if m not in ESTIMATED_METRICS
            ]
            if bad:
                raise ValueError(
                    f"performance.estimation: {', '.join(bad)} cannot be estimated "
                    f"(choose from {', '.join(ESTIMATED_METRICS)})"
                )

    @property
    def stored_width(self) -> int:
        """Columns of a prediction row in the join and the window (with the class)."""
        return self.prediction_width + int(self.predicted_label)

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.task is Task.MULTICLASS else 2
