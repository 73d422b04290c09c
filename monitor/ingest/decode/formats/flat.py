"""``flat``: one JSON object per row, features at the top level (BentoML's monitoring
rows, hand-written loggers), with the configured names for the model, id, timestamp and
prediction fields; every other key is a feature (unmonitored ones are counted unknown).

``{"amount": 132.5, "country": "DE", "prediction": 0.87, "request_id": "r-1",
"timestamp": "2026-11-26T10:00:00.120"}``: times without an offset are read in the topic's
``timezone`` (or ``timestamps.timezone``). A message may also be an array of rows.
"""

from __future__ import annotations

from monitor.ingest.decode.batch import with_codes
from monitor.ingest.decode.columns import DecodedBatch, ModelColumns
from monitor.ingest.decode.formats.batch import MessageBatch
from monitor.ingest.decode.objects import chunks, decode_chunk
from monitor.ingest.decode.schema import DecodeSchema, Rejection, kafka_times

__all__ = ["decode_flat"]


def decode_flat(batch: MessageBatch, schema: DecodeSchema) -> DecodedBatch:
    """The general object path, with the features read from the top level of each row."""
    payloads = batch.payloads
    ts = kafka_times(batch.kafka_ts)
    rejected: list[Rejection] = []
    parts: dict[str, list[ModelColumns]] = {}
    for start, stop in chunks(payloads):
        cols = decode_chunk(
            payloads[start:stop], range(start, stop), ts, schema, rejected, top_level=True
        )
        for name, c in cols.items():
            parts.setdefault(name, []).append(c)
    models = {name: ModelColumns.concat(cols) for name, cols in parts.items()}
    return with_codes(DecodedBatch(models, rejected), schema)
