"""``driftmon replay``: the daemon's pipeline over a JSON-lines file, no broker.

Each evaluation becomes one JSON line, the same record the daemon can log, so thresholds
can be backtested on history and replay output can be compared with a live run on the same
events. Records carry a ``type``: ``drift`` (:func:`evaluation_record`) or ``performance``
(:func:`performance_record`, one per evaluated performance window of a model with a
``performance`` section; label events in the file are joined as the daemon joins them).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from monitor.app.rejections import RejectionLog, RejectionSummary
from monitor.config import Config
from monitor.ingest.decode import Rejection
from monitor.model.performance import PerformanceEvaluation
from monitor.model.reference_file import ModelReference
from monitor.performance import performance_payload
from monitor.pipeline import BatchOutcome, Evaluation, Pipeline
from monitor.stats import ReferenceProfile

logger = logging.getLogger(__name__)

CHUNK_LINES = 20_000


def _finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def evaluation_record(evaluation: Evaluation) -> dict[str, Any]:
    """One evaluation as a plain JSON-ready dict (the replay report line)."""
    result = evaluation.result
    features: dict[str, Any] = {}
    for feature in result.features:
        features[feature.name] = {
            "kind": str(feature.kind),
            "n": feature.n,
            "missing_ratio": _finite_or_none(feature.missing_ratio),
            "scores": {k: _finite_or_none(v) for k, v in feature.scores.items()},
            "p_values": {k: _finite_or_none(v) for k, v in feature.p_values.items()},
            "crossed": list(feature.crossed),
            "drifted": feature.drifted,
            "enough_data": feature.enough_data,
        }
    event = evaluation.drift_event
    record: dict[str, Any] = {
        "type": "drift",
        "model": evaluation.model,
        "slide": evaluation.slide.slide_index,
        "window": {
            "events": result.window_events,
            "first_event": evaluation.first_event,
            "last_event": evaluation.last_event,
            "start": _finite_or_none(evaluation.slide.start),
            "end": _finite_or_none(evaluation.slide.end),
        },
        "features": features,
        "drifted_features": list(result.drifted_features),
        "alert_state": evaluation.alert.status.state.name.lower(),
        "triggered": event is not None,
        "event_id": event.id if event is not None else None,
    }
    if evaluation.version is not None:  # models with a `versions` section
        record["version"] = evaluation.version
    return record


def performance_record(evaluation: PerformanceEvaluation) -> dict[str, Any]:
    """One performance evaluation as a JSON-ready dict (``type: performance``).

    ``kind`` is ``realised`` (joined, labelled predictions) or ``estimated``; ``window``,
    ``crossed``, ``values`` and ``reference`` are the webhook payload's (NaN as ``null``).
    """
    payload = performance_payload(evaluation.result)
    event = evaluation.drift_event
    return {
        "type": "performance",
        "model": evaluation.model,
        "kind": payload["kind"],
        "slide": evaluation.result.slide.slide_index,
        "window": payload["window"],
        "values": payload["values"],
        "reference": payload["reference"],
        "crossed": payload["crossed"],
        "alert_state": evaluation.alert.status.state.name.lower(),
        "triggered": event is not None,
        "event_id": event.id if event is not None else None,
    }


@dataclass(frozen=True)
class ReplaySummary:
    lines: int
    accepted: int
    rejected: int
    evaluations: int
    triggers: int
    seconds: float
    performance_evaluations: int = 0
    #: Counts per reason and the first examples, with their line numbers.
    rejections: RejectionSummary = field(default_factory=lambda: RejectionSummary(""))

    @property
    def events_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0


def iter_chunks(path: Path, lines: int = CHUNK_LINES) -> Iterator[list[bytes]]:
    """The file's non-blank lines in chunks (bytes, line ends stripped)."""
    for chunk, _ in iter_numbered_chunks(path, lines):
        yield chunk


def iter_numbered_chunks(
    path: Path, lines: int = CHUNK_LINES
) -> Iterator[tuple[list[bytes], np.ndarray]]:
    """The file's non-blank lines in chunks, each with the 1-based line numbers of its
    lines (int64), so a rejection can name its ``file:line``.

    Reads 4 MB blocks and splits them with C-level passes only (split, filter, map): a
    Python step per line would cost as much as decoding the line. A line cut by a block
    boundary is carried into the next block. Line numbers are one ``arange`` per block
    unless the block had blank lines.
    """
    chunk: list[bytes] = []
    numbers = np.empty(0, dtype=np.int64)
    tail = b""
    first = 1  # line number of the next part
    with path.open("rb") as handle:
        while True:
            block = handle.read(1 << 22)
            if not block:
                break
            parts = (tail + block).split(b"\n")
            tail = parts.pop()
            kept, where = _non_blank(parts)
            chunk.extend(kept)
            numbers = np.concatenate([numbers, first + where])
            first += len(parts)
            while len(chunk) >= lines:
                yield chunk[:lines], numbers[:lines]
                chunk, numbers = chunk[lines:], numbers[lines:]
    kept, where = _non_blank([tail])
    chunk.extend(kept)
    numbers = np.concatenate([numbers, first + where])
    while chunk:
        yield chunk[:lines], numbers[:lines]
        chunk, numbers = chunk[lines:], numbers[lines:]


def _non_blank(parts: list[bytes]) -> tuple[list[bytes], np.ndarray]:
    """Lines without a trailing CR, blank and whitespace-only lines dropped; with the
    indices in ``parts`` of the lines kept."""
    if any(map(bytes.endswith, parts, repeat(b"\r"))):
        parts = [p.rstrip(b"\r") for p in parts]
    kept = list(filter(None, parts))
    if len(kept) == len(parts) and not any(map(bytes.isspace, kept)):
        return kept, np.arange(len(parts), dtype=np.int64)
    where = [i for i, p in enumerate(parts) if p and not p.isspace()]
    return [parts[i] for i in where], np.array(where, dtype=np.int64)


def replay(
    config: Config,
    references: Mapping[str, ModelReference | ReferenceProfile],
    input_path: Path,
    output: IO[bytes] | None,
) -> ReplaySummary:
    """Run the pipeline over ``input_path`` and write one JSON line per evaluation.

    Within a chunk, drift records come first, then performance records. ``references``:
    what each model's reference files hold (:func:`~monitor.model.reference_file.
    load_references`); a stored calibration is reused when it fits, computed otherwise.
    """
    pipeline = Pipeline(config, references)
    started = time.perf_counter()
    # Events without a ``ts`` get the replay's start time (there is no Kafka timestamp).
    default_ts = time.time()
    totals = BatchOutcome()
    rejections = RejectionSummary(str(input_path))
    log = RejectionLog()
    lines = rejected = evaluations = triggers = perf_evaluations = 0
    for chunk, numbers in iter_numbered_chunks(input_path):
        lines += len(chunk)
        outcome = pipeline.process(chunk, np.full(len(chunk), default_ts), topic=None)
        if outcome.rejected:
            rejected += len(outcome.rejected)
            note_rejections(outcome.rejected, numbers, rejections, log)
        for evaluation in outcome.evaluations:
            evaluations += 1
            triggers += evaluation.drift_event is not None
            if output is not None:
                output.write(orjson.dumps(evaluation_record(evaluation)) + b"\n")
        for perf in outcome.performance:
            perf_evaluations += 1
            triggers += perf.drift_event is not None
            if output is not None:
                output.write(orjson.dumps(performance_record(perf)) + b"\n")
        for model, n in outcome.accepted.items():
            totals.accepted[model] = totals.accepted.get(model, 0) + n
    return ReplaySummary(
        lines=lines,
        accepted=sum(totals.accepted.values()),
        rejected=rejected,
        evaluations=evaluations,
        triggers=triggers,
        seconds=time.perf_counter() - started,
        performance_evaluations=perf_evaluations,
        rejections=rejections,
    )


def note_rejections(
    rejected: Sequence[Rejection],
    numbers: np.ndarray,
    summary: RejectionSummary,
    log: RejectionLog,
) -> None:
    """A chunk's rejections into the run's summary and the rate-limited log, each named
    by ``file:line`` (``numbers``: the chunk's line numbers)."""
    for r in rejected:
        summary.add(str(r.reason), int(numbers[r.index]), r.detail)
    log.log(rejected, lambda r: f"{summary.path}:{numbers[r.index]}")
