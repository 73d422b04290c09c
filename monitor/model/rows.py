"""Row selection over a model's decoded columns (``ModelColumns``).

Every field of :class:`~monitor.ingest.decode.ModelColumns` is carried, so a capture, a
label split or a version route never loses one.
"""

from __future__ import annotations

import numpy as np

from monitor.ingest.decode import ModelColumns

__all__ = ["slice_columns", "take_rows"]


def slice_columns(columns: ModelColumns, start: int, stop: int) -> ModelColumns:
    """Rows ``start:stop`` of a model's decoded columns."""
    return ModelColumns(
        numeric=columns.numeric[start:stop],
        categorical=[values[start:stop] for values in columns.categorical],
        ts=columns.ts[start:stop],
        ids=columns.ids[start:stop],
        msg_index=columns.msg_index[start:stop],
        unknown_features=0,
        versions=columns.versions[start:stop],
        labels=None if columns.labels is None else columns.labels[start:stop],
        codes=None if columns.codes is None else columns.codes[start:stop],
    )


def take_rows(columns: ModelColumns, rows: np.ndarray) -> ModelColumns:
    """The given rows (sorted int64 indices) of a model's decoded columns."""
    pick = rows.tolist()
    return ModelColumns(
        numeric=columns.numeric[rows],
        categorical=[[values[i] for i in pick] for values in columns.categorical],
        ts=columns.ts[rows],
        ids=[columns.ids[i] for i in pick],
        msg_index=columns.msg_index[rows],
        unknown_features=columns.unknown_features,
        versions=[columns.versions[i] for i in pick],
        labels=None if columns.labels is None else [columns.labels[i] for i in pick],
        codes=None if columns.codes is None else columns.codes[rows],
    )
