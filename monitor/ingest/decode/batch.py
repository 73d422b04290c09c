"""One batch of one topic's message values to per-model columns: which path reads what.

The columnar scanner reads what it can for models with category codes; the object paths
read the rest and every model without codes; categories of coded models that took an
object path are encoded here, so every model's columns come out in one form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from monitor.ingest.decode import scanner_gate
from monitor.ingest.decode.block import as_list
from monitor.ingest.decode.coded import Coded
from monitor.ingest.decode.columnar import scanner_for
from monitor.ingest.decode.columns import DecodedBatch, merge_models
from monitor.ingest.decode.objects import decode_objects
from monitor.ingest.decode.schema import DecodeSchema, KafkaTimes, kafka_times

__all__ = ["decode_batch", "with_codes"]


def decode_batch(
    payloads: Sequence[bytes | None], kafka_ts: KafkaTimes, schema: DecodeSchema
) -> DecodedBatch:
    """Decode one batch of raw message values of one topic.

    ``payloads``: a list of message values, or a :class:`~monitor.ingest.decode.block.
    MessageBlock` of lines read from a file, which the scanner reads in place.

    ``kafka_ts`` holds each message's Kafka timestamp as float64 epoch seconds; it is the
    event time of events without ``ts``. Every message ends up either as rows of some
    model's :class:`ModelColumns` or as one :class:`Rejection` per event (one per message
    when the message itself cannot be read).

    Models whose schema carries category ``codes`` go through the columnar scanner first
    (:mod:`~monitor.ingest.decode.columnar`); the messages it passes on, and every other
    model's, take the object paths (:mod:`~monitor.ingest.decode.objects`); so does
    everything while :mod:`~monitor.ingest.decode.scanner_gate` is closed.
    """
    scanner = scanner_for(schema) if scanner_gate.is_open() else None
    if scanner is None:
        everything = as_list(payloads)
        return with_codes(decode_objects(everything, kafka_times(kafka_ts), schema), schema)
    fast, slow = scanner.scan(payloads, kafka_ts)
    if slow.size == 0:
        return DecodedBatch(fast, [], plain=frozenset(fast))
    sub = [payloads[i] for i in slow.tolist()]
    rest = with_codes(decode_objects(sub, kafka_times(kafka_ts)[slow], schema), schema)
    rejected = [replace(r, index=int(slow[r.index])) for r in rest.rejected]
    moved = {n: replace(c, msg_index=slow[c.msg_index]) for n, c in rest.models.items()}
    return DecodedBatch(merge_models(fast, moved), rejected, plain=frozenset(fast) - moved.keys())


def with_codes(batch: DecodedBatch, schema: DecodeSchema) -> DecodedBatch:
    """Categories of the models whose schema has ``codes`` as codes instead of strings."""
    models = dict(batch.models)
    for name, cols in batch.models.items():
        table = schema.models[name].codes
        if table is None or cols.codes is not None:
            continue
        codes = np.empty((cols.rows, len(table)), dtype=np.int64)
        for j, (column, values) in enumerate(zip(table, cols.categorical, strict=True)):
            if isinstance(values, Coded):  # the table's distinct values only
                codes[:, j] = values.encode_with(column.encode)
            else:
                codes[:, j] = column.encode(values)
        models[name] = replace(cols, categorical=[], codes=codes)
    return DecodedBatch(models, batch.rejected)
