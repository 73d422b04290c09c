"""Hostile strings past the decoder (hardening, items 1-3): long ids, versions and
categories cost bounded memory, checkpoint bytes and label length."""

from __future__ import annotations

import json

import numpy as np

from monitor.config import validate_config
from monitor.ingest.decode.limits import MAX_CATEGORY_CHARS, MAX_ID_CHARS, MAX_VERSION_CHARS
from monitor.performance.join import EvictionReason, JoinLimits, JoinStore
from monitor.pipeline import Pipeline


def test_one_long_id_does_not_blow_up_the_join_checkpoint() -> None:
    """2,000 pending predictions plus one 100 KB id made a fixed-width '<U100000' array:
    800 MB. Packed, the state costs the ids' own bytes."""
    store = JoinStore(JoinLimits(max_delay_seconds=1e9))
    ids = [f"req-{i}" for i in range(2_000)] + ["x" * 100_000]
    store.add_predictions(ids, np.zeros(len(ids)), np.arange(len(ids), dtype=np.float64))
    state = store.state_dict()
    array_bytes = sum(v.nbytes for v in state.values() if isinstance(v, np.ndarray))
    assert array_bytes < 300_000, array_bytes
    back = JoinStore.from_state_dict(store.limits, state)
    assert back.pending_predictions == 2_001
    rows = back.add_labels(["x" * 100_000], np.ones(1), np.array([5_000.0]))
    assert len(rows) == 1


def test_the_join_store_is_bounded_in_bytes_as_well_as_count() -> None:
    limits = JoinLimits(max_delay_seconds=1e9, max_pending=1_000_000, max_pending_bytes=2_000_000)
    store = JoinStore(limits)
    for batch in range(20):
        ids = [f"{batch}-{i}-" + "y" * 200 for i in range(1_000)]
        ts = np.full(len(ids), float(batch))
        store.add_predictions(ids, np.zeros(len(ids)), ts)
    assert store._preds.held_bytes() <= 2_000_000
    assert store.evicted_predictions[EvictionReason.CAPACITY] > 0
    assert store.pending_predictions + store.evicted_predictions["capacity"] == 20_000
    # The oldest went first: everything left is from the newest batches.
    ids, _, _ = store._preds.live()
    assert min(int(i.split("-")[0]) for i in ids) >= 10


CONFIG = {
    "models": {
        "m": {
            "reference": {"capture_events": 100},
            "window": {"events": 100, "slide": 50},
            "features": {"x": {"type": "numeric"}, "c": {"type": "categorical"}},
            "versions": {"capture_events": 100},
        }
    },
}


def _event(i: int, *, id_: str | None = None, version: str = "v1", cat: str = "a") -> bytes:
    event = {
        "model": "m",
        "ts": 1.7e9 + i,
        "id": id_ or f"r{i}",
        "version": version,
        "features": {"x": float(i % 7), "c": cat},
    }
    return json.dumps(event).encode()


def test_long_ids_and_versions_are_rejected_and_long_categories_cut() -> None:
    pipeline = Pipeline(validate_config(CONFIG), {})
    payloads = [
        _event(0),
        _event(1, id_="i" * (MAX_ID_CHARS + 1)),
        _event(2, version="v" * (MAX_VERSION_CHARS + 1)),
        _event(3, cat="c" * 200_000),
        _event(4, id_="i" * MAX_ID_CHARS, version="v" * MAX_VERSION_CHARS),
    ]
    outcome = pipeline.process(payloads, np.zeros(len(payloads)))
    assert sorted((r.index, str(r.reason)) for r in outcome.rejected) == [
        (1, "too_long"),
        (2, "too_long"),
    ]
    details = sorted(r.detail for r in outcome.rejected)
    assert details[0].startswith("id of 257 characters")
    assert details[1].startswith("version of 65 characters")
    assert outcome.accepted == {"m": 3}
    status = pipeline.status("m")
    assert status.versions and all(len(v.version) <= MAX_VERSION_CHARS for v in status.versions)
    state = pipeline.model_state("m", [])
    stored = json.dumps(state.scalars, default=str)
    assert "c" * (MAX_CATEGORY_CHARS + 1) not in stored
    array_bytes = sum(a.nbytes for a in state.arrays.values())
    assert array_bytes < 1_000_000, array_bytes
