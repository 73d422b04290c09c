"""The one interface the pipeline drives every model through.

A model without versions is a :class:`~monitor.model.monitor.ModelMonitor`; a model with a
``versions`` section is a :class:`~monitor.model.versioned.VersionedModel` of several. Both
implement :class:`Model`, so the pipeline, the daemon and recovery never ask which.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from monitor.config import ModelConfig
from monitor.ingest.decode import CategoryCodes, ModelColumns
from monitor.model.evaluation import ModelStep
from monitor.model.monitor import ModelMonitor
from monitor.model.reference_file import ModelReference
from monitor.model.state import ModelState
from monitor.model.status import HotCounts, ModelStatus
from monitor.model.versioned import VersionedModel


class Model(Protocol):
    """One monitored model: feeds its rows, reports and checkpoints itself."""

    name: str

    @property
    def default(self) -> ModelMonitor:
        """The monitor of the model's top-level reference."""
        ...

    @property
    def reads_versions(self) -> bool:
        """Whether rows are routed by version (the ``version`` header is read)."""
        ...

    @property
    def category_codes(self) -> tuple[CategoryCodes, ...] | None:
        """Codes decode may hand over instead of category strings, if any."""
        ...

    @property
    def reference_ready(self) -> bool: ...

    @property
    def events_seen(self) -> int:
        """Rows fed to the windows and captures, over every version."""
        ...

    @property
    def calibration_pending(self) -> bool: ...

    def ensure_calibrated(self) -> None: ...

    def feed(
        self, columns: ModelColumns, header_versions: Sequence[str | None] | None = None
    ) -> ModelStep: ...

    def status(self) -> ModelStatus: ...

    @property
    def steady(self) -> bool:
        """Whether feeding rows without an evaluation or a performance window changes
        only :meth:`hot_counts` of the status (so the status is not rebuilt)."""
        ...

    def hot_counts(self) -> HotCounts: ...

    def state(self, partitions: Sequence[str]) -> ModelState: ...

    def restore(self, state: ModelState) -> None:
        """Resume from :meth:`state`; ``CheckpointError`` when it does not fit."""
        ...

    def fresh(self) -> Model:
        """The same model with empty state."""
        ...


def build_model(
    name: str,
    config: ModelConfig,
    reference: ModelReference,
    *,
    numeric_columns: Sequence[str],
    categorical_columns: Sequence[str],
) -> Model:
    """The model for a config section and what its reference files hold."""
    monitor = ModelMonitor(
        name,
        config,
        reference.profile,
        numeric_columns=numeric_columns,
        categorical_columns=categorical_columns,
        reference_performance=reference.performance,
        calibration=reference.calibration,
    )
    if config.versions is None:
        return monitor
    return VersionedModel(monitor, reference.versions)
