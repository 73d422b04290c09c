"""One batch step with no I/O: decoded columns → windows → evaluations → alert transitions.

The daemon and ``driftmon replay`` both drive this module, so a replay of a file gives
exactly the evaluations the live daemon computed on the same events. Each model is a
:class:`~monitor.model.model.Model`; what one model does with its rows is in
:mod:`monitor.model`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from monitor.config import Config
from monitor.config.formats import PAIRED_FORMATS
from monitor.errors import CheckpointError
from monitor.ingest.decode import (
    DecodedBatch,
    DecodeSchema,
    KafkaTimes,
    ModelColumns,
    Rejection,
    build_decode_schema,
)
from monitor.ingest.decode.batch import with_codes
from monitor.ingest.decode.formats import Headers, MessageBatch, decode_messages
from monitor.ingest.decode.limits import enforce_limits
from monitor.ingest.pairing import Pairing, PairLimits
from monitor.model.counted import OpenSlotFeed
from monitor.model.evaluation import Evaluation
from monitor.model.model import Model, build_model
from monitor.model.monitor import ModelMonitor
from monitor.model.performance import PerformanceEvaluation
from monitor.model.reference_file import ModelReference
from monitor.model.state import ModelState, put_state_dict, take_prefixed
from monitor.model.status import HotCounts, ModelStatus
from monitor.model.versioned import VersionedModel
from monitor.publish.results import ResultsStore
from monitor.stats import ReferenceProfile
from monitor.stats.slot_batch import EdgeTable

__all__ = ["BatchOutcome", "Evaluation", "Pipeline", "pairing_for", "schema_for"]

#: Checkpoint key prefix of a model's waiting request and response halves.
PAIRING = "pairing."


class ModelMessages(Mapping[str, np.ndarray]):
    """Per model, the indices of the messages its accepted events came from, each message
    once and in order. The rows' message indices are kept as the batch gave them and made
    unique when read: only the daemon's partition bookkeeping reads them (with a state
    section), so a batch pays nothing per model for them otherwise."""

    def __init__(self) -> None:
        self._rows: dict[str, np.ndarray] = {}
        self._unique: dict[str, np.ndarray] = {}

    def add(self, model: str, rows: np.ndarray) -> None:
        self._rows[model] = rows
        self._unique.pop(model, None)

    def __getitem__(self, model: str) -> np.ndarray:
        found = self._unique.get(model)
        if found is None:
            found = self._unique[model] = _unique(self._rows[model])
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


@dataclass
class BatchOutcome:
    """Everything one batch did, for the daemon to count, export and act on."""

    accepted: dict[str, int] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)
    unknown_features: dict[str, int] = field(default_factory=dict)
    # Indices (in the batch) of the messages each model's accepted events came from.
    model_messages: ModelMessages = field(default_factory=ModelMessages)
    evaluations: list[Evaluation] = field(default_factory=list)
    last_event_time: dict[str, float] = field(default_factory=dict)
    # Performance windows evaluated in this batch (models with a `performance` section).
    performance: list[PerformanceEvaluation] = field(default_factory=list)
    # Events of unknown versions dropped per model (`versions.on_new_version: ignore`).
    ignored_versions: dict[str, int] = field(default_factory=dict)
    # Request/response pairing: halves left unpaired in this batch per (model, half,
    # reason), pairs completed per model, and halves waiting per (model, half) after it.
    unpaired: dict[tuple[str, str, str], int] = field(default_factory=dict)
    paired: dict[str, int] = field(default_factory=dict)
    pending_halves: dict[tuple[str, str], int] = field(default_factory=dict)

    def merge(self, other: BatchOutcome) -> None:
        for model, n in other.accepted.items():
            self.accepted[model] = self.accepted.get(model, 0) + n
        for model, n in other.unknown_features.items():
            self.unknown_features[model] = self.unknown_features.get(model, 0) + n
        for model, ts in other.last_event_time.items():
            self.last_event_time[model] = max(ts, self.last_event_time.get(model, ts))
        for model, n in other.ignored_versions.items():
            self.ignored_versions[model] = self.ignored_versions.get(model, 0) + n
        for key, n in other.unpaired.items():
            self.unpaired[key] = self.unpaired.get(key, 0) + n
        for model, n in other.paired.items():
            self.paired[model] = self.paired.get(model, 0) + n
        self.pending_halves.update(other.pending_halves)
        self.rejected.extend(other.rejected)
        self.evaluations.extend(other.evaluations)
        self.performance.extend(other.performance)


def schema_for(config: Config, topic: str | None, bound_model: str | None = None) -> DecodeSchema:
    """The decode schema of ``topic`` (an entry's name, or a topic a pattern entry matches);
    without one (replay, baseline) the first topic's."""
    try:
        name = config.topic(topic).name if topic is not None else config.topics[0].name
    except KeyError:
        name = config.topics[0].name
    schema = build_decode_schema(config, name)
    if bound_model is not None:
        schema = replace(schema, bound_model=bound_model)
    return schema


def _unique(indices: np.ndarray) -> np.ndarray:
    """``np.unique`` of message indices, without its sort when they are already strictly
    increasing (one event per message, in order: the usual batch)."""
    if indices.size < 2 or bool((indices[1:] > indices[:-1]).all()):
        return indices
    return np.unique(indices)


def pairing_for(config: Config, model: str, topic: str | None) -> Pairing:
    """An empty pairing store for ``model`` with the settings of ``topic`` (without one,
    those of the first topic in a paired format that may carry the model)."""
    topics = config.topics
    conf = next(
        (t for t in topics if topic is not None and t.matches(topic)),
        next(
            (t for t in topics if t.format in PAIRED_FORMATS and t.model in (None, model)),
            topics[0],
        ),
    ).pairing
    ms = schema_for(config, topic).models[model]
    return Pairing(
        PairLimits(conf.max_pending, conf.max_delay_seconds),
        len(ms.numeric_names),
        len(ms.numeric),
        ms.prediction == "categorical",
    )


class Pipeline:
    """All monitored models of one configuration; feeds batches of raw payloads.

    ``references``: per model, what its reference files hold (a bare profile stands for
    a reference with nothing else); models without one capture their reference.
    """

    def __init__(
        self,
        config: Config,
        references: Mapping[str, ModelReference | ReferenceProfile],
        results: ResultsStore | None = None,
    ) -> None:
        self.config = config
        self.results = results or ResultsStore()
        # Decode schemas per topic, rebuilt when a model's category codes may have changed
        # (a captured reference, a reset or restore bump the generation) instead of
        # comparing every model's codes on every batch.
        self._schemas: dict[str, tuple[int, DecodeSchema]] = {}
        self._codes_generation = 0
        self._header_versions: dict[str, bool] = {}
        self.models: dict[str, Model] = {}
        # Per model, the request and response halves waiting for each other (formats that
        # log them apart); created when a model first receives a half.
        self.pairings: dict[str, Pairing] = {}
        self._edges = EdgeTable()  # the profiles' edges, stacked for one binning call a batch
        base = schema_for(config, None)
        for name, model_config in config.models.items():
            reference = references.get(name)
            if not isinstance(reference, ModelReference):
                reference = ModelReference(profile=reference)
            columns = base.models[name]
            self.models[name] = build_model(
                name,
                model_config,
                reference,
                numeric_columns=columns.numeric_names,
                categorical_columns=columns.categorical_names,
            )
        self.publish()

    @property
    def monitors(self) -> dict[str, ModelMonitor]:
        """Per model, the monitor of its top-level reference (for inspection)."""
        return {name: model.default for name, model in self.models.items()}

    @property
    def versioned(self) -> dict[str, VersionedModel]:
        """The models with a ``versions`` section (for inspection)."""
        return {n: m for n, m in self.models.items() if isinstance(m, VersionedModel)}

    def reset(self, model: str) -> None:
        """Forget a model's live state (its partitions went to another replica)."""
        before = self.status(model)
        self.models[model] = self.models[model].fresh()
        self.pairings.pop(model, None)
        self._codes_generation += 1
        self.results.rebase(before, self.status(model))

    def schema(self, topic: str | None) -> DecodeSchema:
        """The decode schema of ``topic``, with category codes for every model whose
        reference is known (rebuilt when a reference is captured or a model reset)."""
        key = topic or ""
        cached = self._schemas.get(key)
        if cached is None or cached[0] != self._codes_generation:
            base = schema_for(self.config, topic)
            models = {
                name: replace(ms, codes=self.models[name].category_codes)
                for name, ms in base.models.items()
            }
            self._schemas[key] = (self._codes_generation, replace(base, models=models))
        return self._schemas[key][1]

    def wants_header_versions(self, topic: str | None) -> bool:
        """Whether a model of ``topic`` has versions, so the ``version`` header is read.

        A topic bound to a model asks that model; an unbound topic may carry any model.
        """
        if topic is None:
            return False
        if topic not in self._header_versions:
            known = {t.name: t for t in self.config.topics}
            bound = known[topic].model if topic in known else None
            models = [self.models[bound]] if bound is not None else self.models.values()
            self._header_versions[topic] = any(m.reads_versions for m in models)
        return self._header_versions[topic]

    @property
    def references_ready(self) -> bool:
        return all(m.reference_ready for m in self.models.values())

    def calibrate_pending(self) -> bool:
        """Compute the false-alarm calibrations still pending; True when any was."""
        pending = [m for m in self.models.values() if m.calibration_pending]
        for model in pending:
            model.ensure_calibrated()
        return bool(pending)

    # -- per-model state (checkpoints and recovery) --------------------------------------

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(self.models)

    def status(self, model: str) -> ModelStatus:
        return self.models[model].status()

    def events_seen(self, model: str) -> int:
        """Events of the model fed to its windows and captures, over every version."""
        return self.models[model].events_seen

    def model_state(self, model: str, partitions: Sequence[str]) -> ModelState:
        """Everything needed to resume a model exactly, every version and every request or
        response half waiting for its other half included."""
        state = self.models[model].state(partitions)
        pairing = self.pairings.get(model)
        if pairing is not None:
            put_state_dict(state.scalars, state.arrays, PAIRING, pairing.state_dict())
        return state

    def restore_model(self, model: str, state: ModelState) -> None:
        """Resume a model from :meth:`model_state`; ``CheckpointError`` if it does not fit."""
        before = self.status(model)
        saved = take_prefixed(state.scalars, state.arrays, PAIRING)
        own = replace(
            state,
            scalars={k: v for k, v in state.scalars.items() if not k.startswith(PAIRING)},
            arrays={k: v for k, v in state.arrays.items() if not k.startswith(PAIRING)},
        )
        self._codes_generation += 1  # a restored state may carry a captured reference
        try:
            self.models[model].restore(own)
            self.pairings.pop(model, None)
            if saved:
                self._pairing(model, None).restore(saved)
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
            # A parseable but tampered or truncated state (a missing key, an alert state
            # of 99): the caller starts the model fresh, as for any unusable checkpoint.
            raise CheckpointError(f"checkpoint of model {model!r} is malformed: {exc!r}") from None
        self.results.rebase(before, self.status(model))

    # -- batches -----------------------------------------------------------------------

    def decode(
        self,
        payloads: Sequence[bytes | None],
        kafka_ts: KafkaTimes,
        schema: DecodeSchema,
        *,
        headers: Callable[[], Sequence[Headers]] | None = None,
        topics: Callable[[], Sequence[str | None]] | None = None,
    ) -> DecodedBatch:
        """One batch in its topic's format with ``schema``, string length limits applied
        (no state is touched: ``replay`` runs it on a worker thread)."""
        batch = MessageBatch(payloads, kafka_ts, headers, topics)
        return enforce_limits(decode_messages(batch, schema))

    def process(
        self,
        payloads: Sequence[bytes | None],
        kafka_ts: KafkaTimes,
        topic: str | None = None,
        header_versions: Sequence[str | None] | None = None,
        *,
        headers: Callable[[], Sequence[Headers]] | None = None,
        topics: Callable[[], Sequence[str | None]] | None = None,
        decoded: DecodedBatch | None = None,
    ) -> BatchOutcome:
        """Decode and account for one batch of messages from one topic.

        ``header_versions``: per message, the value of its ``version`` header; an event
        without a version field takes its message's (see :meth:`wants_header_versions`).
        ``headers`` and ``topics`` give each message's headers and topic, read only by the
        formats that need them. Request and response halves are paired first.
        ``decoded``: the batch already decoded by :meth:`decode` with :meth:`schema` of
        ``topic`` as it is now (``replay`` decodes the next chunk while this one is fed).
        """
        schema = self.schema(topic)
        if decoded is None:
            decoded = self.decode(payloads, kafka_ts, schema, headers=headers, topics=topics)
        outcome = BatchOutcome(rejected=list(decoded.rejected))
        changed: list[ModelStatus] = []
        hot: list[tuple[str, HotCounts]] = []
        counting = OpenSlotFeed(self._edges)
        # Only the models with rows in this batch are visited (decode split the batch).
        for name, decoded_columns in decoded.models.items():
            if decoded_columns.rows:
                outcome.model_messages.add(name, decoded_columns.msg_index)
            columns = decoded_columns
            if columns.halves is not None:
                columns = self._paired(name, columns, schema, topic, header_versions, outcome)
            rows = len(columns.ts)
            if rows == 0:
                continue
            outcome.accepted[name] = outcome.accepted.get(name, 0) + rows
            if columns.unknown_features:
                outcome.unknown_features[name] = columns.unknown_features
            model = self.models[name]
            if counting.offer(model, columns):
                continue  # counted below with the other models whose rows only count
            outcome.last_event_time[name] = float(columns.ts.max())
            steady, codes = model.steady, model.category_codes
            step = model.feed(columns, header_versions)
            outcome.performance.extend(step.performance)
            outcome.evaluations.extend(step.evaluations)
            if step.ignored > 0:
                outcome.ignored_versions[name] = step.ignored
            if steady and not step.evaluations and not step.performance:
                hot.append((name, model.hot_counts()))  # nothing else of its status moved
            else:
                changed.append(model.status())
                if model.category_codes is not codes:
                    self._codes_generation += 1
        latest = outcome.last_event_time
        for monitor, last in counting.flush():
            latest[monitor.name] = last
            hot.append((monitor.name, monitor.hot_counts()))
        self.results.update(changed, hot)
        return outcome

    def _pairing(self, model: str, topic: str | None) -> Pairing:
        pairing = self.pairings.get(model)
        if pairing is None:
            pairing = self.pairings[model] = pairing_for(self.config, model, topic)
        return pairing

    def _paired(
        self,
        model: str,
        columns: ModelColumns,
        schema: DecodeSchema,
        topic: str | None,
        header_versions: Sequence[str | None] | None,
        outcome: BatchOutcome,
    ) -> ModelColumns:
        """Halves joined with their other half (strings until now), then category codes."""
        if header_versions is not None:
            # A half that waits loses its message: take the header's version now.
            picked = [header_versions[i] for i in columns.msg_index.tolist()]
            versions = [v or h for v, h in zip(columns.versions, picked, strict=True)]
            columns = replace(columns, versions=versions)
        pairing = self._pairing(model, topic)
        before = dict(pairing.unpaired)
        paired_before = pairing.paired_total
        columns = pairing.pair(columns)
        for (half, reason), n in pairing.unpaired.items():
            if n > before[(half, reason)]:
                outcome.unpaired[(model, half, reason)] = n - before[(half, reason)]
        outcome.paired[model] = pairing.paired_total - paired_before
        for half, n in pairing.pending.items():
            outcome.pending_halves[(model, half)] = n
        return with_codes(DecodedBatch({model: columns}, []), schema).models[model]

    def publish(self) -> None:
        """Every model's status, rebuilt and published at once."""
        self.results.publish(*(model.status() for model in self.models.values()))
