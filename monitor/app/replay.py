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
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from monitor.app.message_files import InputFormat, iter_messages, pairing_report
from monitor.app.rejections import RejectionLog, RejectionSummary
from monitor.config import Config
from monitor.ingest.decode import DecodedBatch, DecodeSchema, Rejection
from monitor.ingest.decode.block import MessageBlock, split_lines
from monitor.model.performance import PerformanceEvaluation
from monitor.model.reference_file import ModelReference
from monitor.performance import performance_payload
from monitor.pipeline import BatchOutcome, Evaluation, Pipeline
from monitor.stats import ReferenceProfile

logger = logging.getLogger(__name__)

CHUNK_LINES = 20_000
#: Bytes read from the file at a time (a chunk of 20,000 lines of 20 features is ~6 MB).
READ_BYTES = 1 << 23


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
class JoinTotals:
    """The performance join at the end of a replay, summed over the models that have one.

    ``expired`` and ``capacity`` count predictions and labels evicted unjoined;
    ``duplicates`` and ``invalid`` are labels dropped (a repeat of a joined or waiting id,
    a value the task cannot use).
    """

    labels: int = 0
    joined: int = 0
    expired: int = 0
    capacity: int = 0
    duplicates: int = 0
    invalid: int = 0
    pending_predictions: int = 0
    pending_labels: int = 0

    def describe(self) -> str:
        return (
            f"labels: {self.labels} received, {self.joined} joined, "
            f"{self.expired} expired and {self.capacity} evicted for capacity (predictions "
            f"and labels), {self.duplicates + self.invalid} dropped ({self.duplicates} "
            f"duplicate, {self.invalid} invalid), {self.pending_predictions} prediction(s) "
            f"and {self.pending_labels} label(s) still waiting"
        )


def join_totals(pipeline: Pipeline) -> JoinTotals | None:
    """The join counters of every model with a ``performance`` section, or ``None``."""
    reports = [pipeline.status(m).performance for m in pipeline.model_names]
    found = [r for r in reports if r is not None]
    if not found:
        return None
    return JoinTotals(
        labels=sum(r.labels_total for r in found),
        joined=sum(r.labels_joined_total for r in found),
        expired=sum(r.evicted.get("expired", 0) for r in found),
        capacity=sum(r.evicted.get("capacity", 0) for r in found),
        duplicates=sum(r.duplicate_labels for r in found),
        invalid=sum(r.invalid_labels for r in found),
        pending_predictions=sum(r.pending_predictions for r in found),
        pending_labels=sum(r.pending_labels for r in found),
    )


@dataclass(frozen=True)
class ReplaySummary:
    lines: int
    accepted: int
    rejected: int
    evaluations: int
    triggers: int
    seconds: float
    #: Performance records written, realised and estimated together.
    performance_evaluations: int = 0
    realised_evaluations: int = 0
    estimated_evaluations: int = 0
    #: ``None`` when no model has a ``performance`` section.
    join: JoinTotals | None = None
    #: Counts per reason and the first examples, with their line numbers.
    rejections: RejectionSummary = field(default_factory=lambda: RejectionSummary(""))
    #: Request/response pairing of paired formats (``message_files.pairing_report``).
    pairing: list[str] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0

    def report(self) -> list[str]:
        """The lines ``driftmon replay`` prints on stderr."""
        lines = [
            f"replayed {self.lines} line(s) in {self.seconds:.2f} s "
            f"({self.events_per_second:,.0f}/s): {self.accepted} accepted, "
            f"{self.rejected} rejected, {self.evaluations} drift evaluation(s), "
            f"{self.triggers} trigger(s)"
        ]
        if self.join is not None:
            lines.append(
                f"performance: {self.realised_evaluations} realised and "
                f"{self.estimated_evaluations} estimated record(s); {self.join.describe()}"
            )
        return lines + self.pairing + self.rejections.report()


def iter_chunks(path: Path, lines: int = CHUNK_LINES) -> Iterator[list[bytes]]:
    """The file's non-blank lines in chunks (bytes, line ends stripped)."""
    for chunk, _ in iter_numbered_chunks(path, lines):
        yield chunk.tolist()


def iter_numbered_chunks(
    path: Path, lines: int = CHUNK_LINES, read_bytes: int = READ_BYTES
) -> Iterator[tuple[MessageBlock, np.ndarray]]:
    """The file's non-blank lines in chunks of ``lines``, each with the 1-based line
    numbers of its lines (int64), so a rejection can name its ``file:line``.

    Each chunk is a :class:`MessageBlock`: the block read from the file and the offsets of
    its lines, so the scanner reads the lines where they are and no ``bytes`` object is
    made per line. Lines not yet handed out, and a line cut by the end of a read, are
    carried into the next read with one copy; newlines are searched once.
    """
    data = b""
    starts = ends = numbers = np.empty(0, dtype=np.int64)  # lines of data not handed out
    tail = 0  # where the unfinished line starts in data
    line = 1  # its line number
    with path.open("rb") as handle:
        while True:
            block = handle.read(read_bytes)
            final = not block
            if block:  # keep only the lines not handed out and the unfinished one
                cut = int(starts[0]) if len(starts) else tail
                data = b"".join((memoryview(data)[cut:], block)) if cut < len(data) else block
                starts, ends, tail = starts - cut, ends - cut, tail - cut
            got = split_lines(data, tail, final)
            starts = np.concatenate([starts, got.block.starts])
            ends = np.concatenate([ends, got.block.ends])
            numbers = np.concatenate([numbers, line + got.where])
            line += got.found
            tail = got.complete
            while len(starts) >= lines or (final and len(starts)):
                yield MessageBlock(data, starts[:lines], ends[:lines]), numbers[:lines]
                starts, ends, numbers = starts[lines:], ends[lines:], numbers[lines:]
            if final:
                return


def replay(
    config: Config,
    references: Mapping[str, ModelReference | ReferenceProfile],
    input_path: Path,
    output: IO[bytes] | None,
    *,
    chunk_lines: int = CHUNK_LINES,
    input_format: InputFormat = "lines",
    topic: str | None = None,
) -> ReplaySummary:
    """Run the pipeline over ``input_path`` and write one JSON line per evaluation.

    ``input_format`` and ``topic``: how the file holds its messages and which topic's
    settings read them (:mod:`monitor.app.message_files`; default: the first topic's).

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
    lines = rejected = evaluations = triggers = 0
    perf_kinds = {"realised": 0, "estimated": 0}
    chunks = iter_messages(input_path, input_format, chunk_lines)
    for chunk, numbers, kafka_ts, decoded in decoded_ahead(pipeline, chunks, default_ts, topic):
        lines += len(chunk)
        outcome = pipeline.process(
            chunk, kafka_ts, topic=topic, topics=_named(topic, len(chunk)), decoded=decoded
        )
        if outcome.rejected:
            rejected += len(outcome.rejected)
            note_rejections(outcome.rejected, numbers, rejections, log)
        for evaluation in outcome.evaluations:
            evaluations += 1
            triggers += evaluation.drift_event is not None
            if output is not None:
                output.write(orjson.dumps(evaluation_record(evaluation)) + b"\n")
        for perf in outcome.performance:
            perf_kinds[perf.kind] += 1
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
        performance_evaluations=sum(perf_kinds.values()),
        realised_evaluations=perf_kinds["realised"],
        estimated_evaluations=perf_kinds["estimated"],
        join=join_totals(pipeline),
        rejections=rejections,
        pairing=pairing_report(pipeline.pairings),
    )


def _named(topic: str | None, n: int) -> Callable[[], list[str | None]] | None:
    """Every message's topic, for the formats that read it."""
    return None if topic is None else (lambda: [topic] * n)


_Job = tuple[Sequence[bytes], np.ndarray, np.ndarray, DecodeSchema, "Future[DecodedBatch]"]


def decoded_ahead(
    pipeline: Pipeline,
    chunks: Iterator[tuple[Sequence[bytes], np.ndarray]],
    default_ts: float,
    topic: str | None = None,
) -> Iterator[tuple[Sequence[bytes], np.ndarray, np.ndarray, DecodedBatch]]:
    """Each chunk with its event times and decoded, the next one on a worker thread while
    the caller feeds this one (the scanner releases the GIL, so a second core scans).

    A chunk is decoded with the schema of the moment it is handed to the worker; when
    feeding the chunk before changed the schema (a reference captured: category codes),
    it is decoded again with the new one, so the result is what decoding in turn gives.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="driftmon-replay-decode") as worker:
        ahead: _Job | None = None
        for chunk, numbers in chunks:
            kafka_ts = np.full(len(chunk), default_ts)
            schema = pipeline.schema(topic)
            topics = _named(topic, len(chunk))
            future = worker.submit(pipeline.decode, chunk, kafka_ts, schema, topics=topics)
            if ahead is not None:
                yield _finished(pipeline, ahead, topic)
            ahead = (chunk, numbers, kafka_ts, schema, future)
        if ahead is not None:
            yield _finished(pipeline, ahead, topic)


def _finished(
    pipeline: Pipeline, job: _Job, topic: str | None
) -> tuple[Sequence[bytes], np.ndarray, np.ndarray, DecodedBatch]:
    chunk, numbers, kafka_ts, schema, future = job
    decoded = future.result()
    now = pipeline.schema(topic)
    if now is not schema:  # decoded before the chunk ahead of it changed the schema
        decoded = pipeline.decode(chunk, kafka_ts, now, topics=_named(topic, len(chunk)))
    return chunk, numbers, kafka_ts, decoded


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
