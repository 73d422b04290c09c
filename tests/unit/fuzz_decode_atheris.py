"""Coverage-guided fuzzing of ``decode_batch`` with atheris (libFuzzer), one message a run.

Run by ``tests/unit/test_decode_hostile.py`` with a bounded number of runs; by hand:
``python tests/unit/fuzz_decode_atheris.py -runs=100000 -max_len=4096 CORPUS_DIR``.
Any exception from ``decode_batch`` or a broken invariant is a crash libFuzzer reports.
"""

from __future__ import annotations

import sys

import atheris
import numpy as np

with atheris.instrument_imports(include=["monitor.ingest.decode"]):
    from monitor.ingest.decode import DecodeSchema, ModelSchema, Reason, decode_batch

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


def one_input(data: bytes) -> None:
    # The whole input as one message, and split in two messages of one batch.
    half = len(data) // 2
    for payloads in ([data], [data[:half], data[half:]]):
        batch = decode_batch(payloads, KAFKA_TS[: len(payloads)], SCHEMA)
        seen = {r.index for r in batch.rejected}
        for rejection in batch.rejected:
            if not isinstance(rejection.reason, Reason) or not rejection.detail:
                raise AssertionError(f"rejection without a reason: {rejection!r}")
        for cols in batch.models.values():
            seen.update(cols.msg_index.tolist())
            if not np.isfinite(cols.ts).all():
                raise AssertionError("non-finite event time accepted")
        if seen != set(range(len(payloads))):
            raise AssertionError(f"messages not accounted for: {seen}")


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
