"""Reference capture: a model's first ``capture_events`` rows become its reference profile.

:class:`ReferenceCapture` holds the rows taken so far (they move with checkpoints under
``capture.``) and builds the profile once it has enough; the monitor then installs it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from monitor.config import ModelConfig
from monitor.ingest.decode import ModelColumns
from monitor.stats import FeatureKind, ReferenceProfile, build_profile

logger = logging.getLogger(__name__)


class ReferenceCapture:
    """The rows of one model taken into its reference so far."""

    def __init__(
        self,
        name: str,
        config: ModelConfig,
        kinds: Mapping[str, FeatureKind],
        numeric_columns: Sequence[str],
        categorical_columns: Sequence[str],
        target: int,
    ) -> None:
        self.name = name
        self.config = config
        self.kinds = kinds
        self.numeric_columns = numeric_columns
        self.categorical_columns = categorical_columns
        self.target = target
        self.captured = 0
        self._chunks: list[ModelColumns] = []

    def take(self, columns: ModelColumns) -> tuple[ModelColumns | None, ReferenceProfile | None]:
        """Take rows into the capture: the rows left for the window (``None`` when none
        are), and the profile when this batch completed the capture."""
        rows = len(columns.ts)
        take = min(self.target - self.captured, rows)
        self._chunks.append(columns.slice_rows(0, take))
        self.captured += take
        profile = self._finish() if self.captured >= self.target else None
        return (columns.slice_rows(take, rows) if take < rows else None), profile

    def _finish(self) -> ReferenceProfile:
        numeric = np.concatenate([c.numeric for c in self._chunks], axis=0)
        data: dict[str, object] = {}
        for i, name in enumerate(self.numeric_columns):
            data[name] = numeric[:, i]
        for j, name in enumerate(self.categorical_columns):
            values: list[str | None] = []
            for chunk in self._chunks:
                values.extend(chunk.categorical[j])
            data[name] = values
        profile = build_profile(
            self.name,
            data,  # type: ignore[arg-type]
            dict(self.kinds),
            bins=self.config.bins,
            max_categories=self.config.max_categories,
            psi_buckets=self.config.psi_buckets,
            source=f"stream:{self.captured} events",
        )
        self._chunks = []
        logger.info(
            "reference captured from the stream",
            extra={"model": self.name, "events": self.captured},
        )
        return profile

    # -- checkpoints ---------------------------------------------------------------------

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The rows held so far, as ``capture.`` scalars and arrays (empty when none)."""
        if not self._chunks:
            return {}, {}
        arrays = {"capture.numeric": np.concatenate([c.numeric for c in self._chunks])}
        scalars = {
            "capture.categorical": [
                [v for chunk in self._chunks for v in chunk.categorical[j]]
                for j in range(len(self.categorical_columns))
            ]
        }
        arrays["capture.ts"] = np.concatenate([c.ts for c in self._chunks])
        return scalars, arrays

    def restore(self, scalars: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self._chunks = []
        self.captured = int(scalars.get("captured", 0))
        if "capture.numeric" not in arrays:
            return
        ts = arrays["capture.ts"]
        rows = len(ts)
        self._chunks.append(
            ModelColumns(
                numeric=arrays["capture.numeric"],
                categorical=[list(values) for values in scalars.get("capture.categorical", [])],
                ts=ts,
                ids=[None] * rows,
                msg_index=np.zeros(rows, dtype=np.int64),
                versions=[None] * rows,
            )
        )
