"""Coverage-guided fuzzing of ``decode_batch`` and every model-server format
(``decode_messages``) with atheris (libFuzzer), one message a run.

Run by ``tests/unit/test_decode_hostile.py`` with a bounded number of runs; by hand:
``python tests/unit/fuzz_decode_atheris.py -runs=100000 -max_len=4096 CORPUS_DIR``.
Any exception from ``decode_batch`` or a broken invariant is a crash libFuzzer reports.
"""

from __future__ import annotations

import sys

import atheris
import numpy as np

with atheris.instrument_imports(include=["monitor.ingest.decode"]):
    from monitor.ingest.decode import DecodedBatch, DecodeSchema, ModelSchema, Reason, decode_batch
    from monitor.ingest.decode.formats import MessageBatch, decode_messages

SCHEMA = DecodeSchema(
    models={
        "fraud": ModelSchema(
            "fraud", numeric=("amount", "age"), categorical=("country",), prediction="numeric"
        ),
        "churn": ModelSchema(
            "churn", numeric=("tenure",), prediction="probabilities", classes=("no", "yes")
        ),
    }
)
KAFKA_TS = np.full(2, 1_764_150_000.0)
# The model servers' formats read the same bytes (Seldon as an inputs topic's value).
FORMATS = ("oip", "kserve", "seldon", "flat")
SELDON_TOPIC = "seldon.ns.model.fraud.inputs"


def decode_all(payloads: list[bytes]) -> list[DecodedBatch]:
    out = [decode_batch(payloads, KAFKA_TS[: len(payloads)], SCHEMA)]
    for fmt in FORMATS:
        schema = DecodeSchema(models=SCHEMA.models, format=fmt)
        batch = MessageBatch(
            payloads,
            KAFKA_TS[: len(payloads)],
            topics=lambda: [SELDON_TOPIC] * len(payloads),
        )
        out.append(decode_messages(batch, schema))
    return out


def one_input(data: bytes) -> None:
    # The whole input as one message, and split in two messages of one batch.
    half = len(data) // 2
    for payloads in ([data], [data[:half], data[half:]]):
        for batch in decode_all(payloads):
            check(batch, len(payloads))


def check(batch: DecodedBatch, n: int) -> None:
    """Every message accepted or rejected with a reason; no non-finite event time."""
    seen = {r.index for r in batch.rejected}
    for rejection in batch.rejected:
        if not isinstance(rejection.reason, Reason) or not rejection.detail:
            raise AssertionError(f"rejection without a reason: {rejection!r}")
    for cols in batch.models.values():
        seen.update(cols.msg_index.tolist())
        if not np.isfinite(cols.ts).all():
            raise AssertionError("non-finite event time accepted")
    if seen != set(range(n)):
        raise AssertionError(f"messages not accounted for: {seen}")


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
