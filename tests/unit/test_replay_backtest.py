"""Backtesting with ``replay``: blocks wider than ``max_delay_seconds`` join every label
within it, and the summary tells realised from estimated records and what the join did."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from monitor.app.replay import replay
from monitor.model.reference_file import ModelReference
from tests.unit.test_pipeline_performance import (
    T0,
    label,
    make_config,
    make_profile,
    prediction,
    reference,
    scenario,
)

DELAY = 100.0  # max_delay_seconds; the stream has one prediction per second


def labelled_stream(n: int, seed: int = 3) -> tuple[list[bytes], int, int]:
    """Predictions in event-time order: a third with an inline label (delay 0), a third
    with a label event up to ``DELAY`` later (placed at its own event time), a sixth with
    a label ``DELAY + 50`` s later, the rest unlabelled. Returns the lines, the labels
    within ``DELAY`` and the labels beyond it."""
    p, y = scenario(n, seed=seed)
    rng = np.random.default_rng(seed)
    timed: list[tuple[float, int, bytes]] = []
    within = beyond = 0
    for i in range(n):
        t = T0 + i
        kind = i % 6
        if kind in (0, 1):
            timed.append((t, 0, prediction(i, float(p[i]), t, label=int(y[i]))))
            within += 1
            continue
        timed.append((t, 0, prediction(i, float(p[i]), t)))
        if kind in (2, 3):
            lt = t + float(rng.uniform(0, DELAY))
            timed.append((lt, 1, label(i, int(y[i]), lt)))
            within += 1
        elif kind == 4:
            timed.append((t + DELAY + 50, 1, label(i, int(y[i]), t + DELAY + 50)))
            beyond += 1
    timed.sort(key=lambda r: (r[0], r[1]))
    return [line for _, _, line in timed], within, beyond


def test_blocks_wider_than_max_delay_join_every_label_within_it(tmp_path: Path) -> None:
    lines, within, beyond = labelled_stream(3000)
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    config = make_config(
        join={"max_delay_seconds": DELAY, "max_pending": 100_000},
        estimation={"window": {"events": 200, "slide": 100}},
    )
    refs = {"fraud": ModelReference(make_profile(), performance=reference())}
    out = tmp_path / "report.jsonl"
    with out.open("wb") as handle:
        # 500 lines span ~350 s of event time, over three times max_delay
        summary = replay(config, refs, source, handle, chunk_lines=500)
    join = summary.join
    assert join is not None
    assert join.labels == within + beyond
    assert join.joined == within  # every label within max_delay joined
    # expired: the labels beyond max_delay and the predictions without a label in time,
    # except those still within max_delay of the end of the stream
    unlabelled = 3000 - within
    assert join.expired + join.pending_predictions + join.pending_labels == unlabelled + beyond
    # the stream ends with late labels: only the last max_delay of them still wait
    assert join.pending_predictions == 0 and 0 < join.pending_labels <= DELAY / 6 + 1
    assert join.capacity == join.duplicates == join.invalid == 0

    records = [json.loads(r) for r in out.read_text().splitlines()]
    kinds = [r["kind"] for r in records if r["type"] == "performance"]
    assert summary.realised_evaluations == kinds.count("realised") == (within - 200) // 100 + 1
    assert summary.estimated_evaluations == kinds.count("estimated") == (3000 - 200) // 100 + 1
    assert summary.performance_evaluations == len(kinds)
    report = "\n".join(summary.report())
    assert f"{summary.realised_evaluations} realised and {summary.estimated_evaluations} " in report
    assert f"{within + beyond} received, {within} joined, {join.expired} expired" in report
    assert "0 dropped (0 duplicate, 0 invalid)" in report


def test_summary_without_performance_has_no_join_line(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_bytes(prediction(1, 0.5, T0) + b"\n")
    config = make_config()
    config = config.model_copy(
        update={
            "models": {
                "fraud": config.models["fraud"].model_copy(
                    update={"performance": None, "task": None}
                )
            }
        }
    )
    summary = replay(config, {"fraud": make_profile()}, source, None)
    assert summary.join is None
    assert len(summary.report()) == 1 and "1 accepted" in summary.report()[0]
