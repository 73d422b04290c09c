"""The garbage collector's settings for the consume loop.

Every ``confluent_kafka.Message`` is a GC-tracked object, and the loop allocates one per
event: at the default threshold (700) a batch of 5,000 triggers seven young collections,
and the messages still alive in the batch in flight are promoted until a full collection
walks the whole heap, mostly the hundreds of thousands of objects numba, numpy and scipy
create at import. Profiled on the strict end-to-end benchmark, that was the largest cost
of the loop thread. Messages form no cycles (refcounting frees them), so after start-up
the heap built so far is frozen (never walked again; ``gc.freeze``) and young collections
run every ``YOUNG_THRESHOLD`` allocations instead of 700. Cycles are still collected.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "settle_after_start"]

#: Allocations between young collections: several batches of messages, a few MB of cycles
#: at most between two collections.
YOUNG_THRESHOLD = 50_000


def settle_after_start() -> None:
    """Freeze what start-up allocated and collect the young generation less often.

    Idempotent; call once everything long-lived (modules, kernels, the pipeline) exists.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(max(YOUNG_THRESHOLD, gc.get_threshold()[0]), older, oldest)
