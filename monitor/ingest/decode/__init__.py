"""Raw message payloads to per-model columns, plus a reason for every rejected event.

The event format is issue 3's contract (field names configurable per topic)::

    {"model": "fraud", "ts": 1764150000.25, "id": "req-81f2",
     "features": {"amount": 132.5, "country": "DE"}, "prediction": 0.87}

A message may also be a JSON array of such objects; each is accepted or rejected on its
own. Value encodings follow docs/ARCHITECTURE.md ("Feature values and encodings").

Decoding is columnar and has two paths. The fast one decodes each message with a msgspec
decoder generated from the schema (one typed Struct field per monitored feature), so type
checks happen inside the decoder and no dicts are built; the Structs of a chunk become one
numpy object matrix whose columns are the model's columns. Any message it refuses takes the
general path: orjson to dicts, grouped by model, every column pulled out with one C-level
``map`` and checked, which classifies every reject reason. Both paths give exactly the same
result (tests/unit/test_decode.py checks this); without msgspec only the general path runs.
Models whose schema carries category codes are read first by a Numba scanner straight
into code columns (:mod:`~monitor.ingest.decode.columnar`). A rejection is a value, never
an exception: the valid events of the batch go on.

Modules: ``schema`` (what to read, reject reasons), ``columns`` (the answer and its row
operations), ``batch`` (which path reads what), ``columnar`` and ``scanner`` (the Numba
path), ``typed`` (msgspec), ``objects`` (orjson, every reject reason), ``values`` (value
checks both object paths share).

Example::

    >>> import numpy as np
    >>> schema = DecodeSchema(models={"fraud": ModelSchema("fraud", numeric=("amount",),
    ...                                                    categorical=("country",))})
    >>> batch = decode_batch(
    ...     [b'{"model": "fraud", "ts": 5, "features": {"amount": 1.5, "country": "DE"}}',
    ...      b'{"model": "fraud", "features": {"amount": "1.5"}}', b"{oops"],
    ...     np.zeros(3), schema)
    >>> cols = batch.models["fraud"]
    >>> cols.numeric.tolist(), cols.categorical, cols.ts.tolist()
    ([[1.5]], [['DE']], [5.0])
    >>> [(r.index, str(r.reason)) for r in batch.rejected]
    [(2, 'not_json'), (1, 'wrong_type')]
"""

from __future__ import annotations

from monitor.ingest.decode.batch import decode_batch
from monitor.ingest.decode.columns import DecodedBatch, ModelColumns
from monitor.ingest.decode.schema import (
    CategoryCodes,
    DecodeSchema,
    EventFields,
    KafkaTimes,
    ModelSchema,
    PredictionKind,
    Reason,
    Rejection,
    build_decode_schema,
)

__all__ = [
    "CategoryCodes",
    "DecodeSchema",
    "DecodedBatch",
    "EventFields",
    "KafkaTimes",
    "ModelColumns",
    "ModelSchema",
    "PredictionKind",
    "Reason",
    "Rejection",
    "build_decode_schema",
    "decode_batch",
]
