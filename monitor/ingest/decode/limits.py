"""Length limits on the strings an event carries past the decoder.

The decoder bounds a message's size; these bound what one string may cost downstream,
where it is kept for long: an id waits in the label join and its checkpoint, a version
becomes a Prometheus label value and a ``/status`` key, a category is kept by a reference
capture. Applied once per batch to every model's columns, whatever format decoded them:

* an **id** longer than :data:`MAX_ID_CHARS` or a **version** longer than
  :data:`MAX_VERSION_CHARS` rejects its event (``too_long``: counted, logged,
  dead-lettered), since truncating either could join or label it as another;
* a **category** longer than :data:`MAX_CATEGORY_CHARS` is cut to that length: the event
  still counts, and any such value is a category the reference has not seen anyway.

    >>> import numpy as np
    >>> from monitor.ingest.decode.columns import DecodedBatch, ModelColumns
    >>> cols = ModelColumns(numeric=np.zeros((2, 0)), categorical=[["a" * 300, "b"]],
    ...     ts=np.zeros(2), ids=["x" * 300, "ok"], msg_index=np.array([0, 1]))
    >>> out = enforce_limits(DecodedBatch({"m": cols}, []))
    >>> out.models["m"].ids, [len(c) for c in out.models["m"].categorical[0]]
    (['ok'], [1])
    >>> [(r.index, str(r.reason)) for r in out.rejected]
    [(0, 'too_long')]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from monitor.ingest.decode.coded import Coded, Values
from monitor.ingest.decode.columns import DecodedBatch, ModelColumns
from monitor.ingest.decode.schema import Reason, Rejection

__all__ = ["MAX_CATEGORY_CHARS", "MAX_ID_CHARS", "MAX_VERSION_CHARS", "enforce_limits"]

#: Request ids, trace ids and ``<request id>:<row>`` fit with room to spare.
MAX_ID_CHARS = 256
#: The label-value length config names already obey (``LABEL_PATTERN``).
MAX_VERSION_CHARS = 64
MAX_CATEGORY_CHARS = 256


def enforce_limits(batch: DecodedBatch) -> DecodedBatch:
    """The batch with over-long ids and versions rejected and long categories cut."""
    models: dict[str, ModelColumns] = {}
    rejected = list(batch.rejected)
    changed = False
    plain = batch.plain
    if plain and plain >= batch.models.keys():
        return batch  # the scanner's columns alone: no per-model pass
    for name, cols in batch.models.items():
        if name in plain:  # no strings to check
            models[name] = cols
            continue
        bad = _over(cols.ids, MAX_ID_CHARS, "id") | _over(
            cols.versions, MAX_VERSION_CHARS, "version"
        )
        if bad:
            changed = True
            rows = sorted(bad)
            rejected.extend(
                Rejection(int(cols.msg_index[row]), Reason.too_long, bad[row]) for row in rows
            )
            cols = cols.drop_rows(rows)
        cut = _cut_categories(cols.categorical)
        if cut is not None:
            changed = True
            cols = replace(cols, categorical=cut)
        models[name] = cols
    return DecodedBatch(models, rejected, plain) if changed else batch


def _over(values: Values, limit: int, what: str) -> dict[int, str]:
    """Rows whose string is longer than ``limit``, with the rejection detail."""
    if _longest(values) <= limit:
        return {}  # the common case: one C-level pass, no per-row Python
    return {
        row: f"{what} of {len(v)} characters, more than {limit}"
        for row, v in enumerate(values)
        if v is not None and len(v) > limit
    }


def _cut_categories(columns: Sequence[Values]) -> list[Values] | None:
    if all(_longest(column) <= MAX_CATEGORY_CHARS for column in columns):
        return None
    return [
        c.mapped(_cut) if isinstance(c, Coded) else [None if v is None else _cut(v) for v in c]
        for c in columns
    ]


def _cut(value: str) -> str:
    return value[:MAX_CATEGORY_CHARS]


def _longest(values: Values) -> int:
    if isinstance(values, Coded):  # its table, not its rows
        return values.longest()
    # C-level passes only (filter drops None and ""): this runs on every batch.
    return max(map(len, filter(None, values)), default=0)
