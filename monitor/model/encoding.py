"""Decoded columns in a reference profile's feature order, ready for the window kernels.

Decode hands over a model's columns in config order (and, with the reference known,
category codes instead of strings); the window wants numeric values and category codes in
the profile's order. :class:`ProfileEncoder` is fixed per installed profile, so the
column lookups are done once, and skipped entirely when the orders already agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from monitor.ingest.decode import CategoryCodes, ModelColumns
from monitor.stats import ReferenceProfile


class ProfileEncoder:
    """Column reordering and category encoding against one profile."""

    def __init__(
        self,
        profile: ReferenceProfile,
        numeric_columns: Sequence[str],
        categorical_columns: Sequence[str],
    ) -> None:
        self.profile = profile
        self._num_index = np.array(
            [numeric_columns.index(n) for n in profile.numeric_names], dtype=np.int64
        )
        self._cat_index = [categorical_columns.index(n) for n in profile.categorical_names]
        # Decoded columns already in profile order need no per-batch reordering copy.
        self._num_identity = len(self._num_index) == len(numeric_columns) and bool(
            np.array_equal(self._num_index, np.arange(len(self._num_index)))
        )
        self._cat_identity = self._cat_index == list(range(len(categorical_columns)))
        #: Columns with codes are already what the window wants (``encode`` returns them).
        self.passthrough = self._num_identity and self._cat_identity
        self._categorical_columns = list(categorical_columns)

    def category_codes(self) -> tuple[CategoryCodes, ...]:
        """What decode may hand over instead of category strings, per categorical column."""
        features = [self.profile.features[n] for n in self._categorical_columns]
        return tuple(
            CategoryCodes(f.category_codes, f.unseen_code)  # type: ignore[union-attr]
            for f in features
        )

    def encode(self, columns: ModelColumns) -> tuple[np.ndarray, np.ndarray]:
        """``(numeric, codes)`` in the profile's feature order."""
        profile = self.profile
        numeric = columns.numeric
        if not self._num_identity:
            numeric = numeric[:, self._num_index]
        rows = len(columns.ts)
        if columns.codes is not None:
            codes = columns.codes if self._cat_identity else columns.codes[:, self._cat_index]
        elif self._cat_index:
            codes = np.empty((rows, len(self._cat_index)), dtype=np.int64)
            for out, (name, source) in enumerate(
                zip(profile.categorical_names, self._cat_index, strict=True)
            ):
                feature = profile.features[name]
                codes[:, out] = feature.encode(columns.categorical[source])  # type: ignore[union-attr]
        else:
            codes = np.empty((rows, 0), dtype=np.int64)
        return np.ascontiguousarray(numeric, dtype=np.float64), codes
