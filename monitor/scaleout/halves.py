"""Request and response halves with scale-out: paired by the model's owner, in stage 2.

The formats that log a request and its response as separate messages (``oip``,
``kserve``, ``seldon``) spread the two halves of one inference over partitions, and
Seldon Core 2 over two topics: they usually reach different stage-1 replicas. Stage 1 so
never pairs: a model carried by a topic in such a format (:func:`pairs_halves`) travels as
raw rows (:class:`~monitor.scaleout.raw.RawColumns`, with each row's half and pairing key),
and its owner pairs what the watermark releases, in event-time order, with the same
:class:`~monitor.ingest.pairing.Pairing` one process uses (:class:`StagePairing`). The
waiting halves are part of the stage-2 checkpoint (``pairing.`` prefix, as in one process's
model state), and the pairing counts go to the owner's metrics only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monitor.config import Config
from monitor.config.formats import PAIRED_FORMATS
from monitor.ingest.decode import ModelColumns
from monitor.ingest.pairing import Pairing
from monitor.model.state import put_state_dict, take_prefixed
from monitor.pipeline import PAIRING, pairing_for

__all__ = ["PairStep", "StagePairing", "in_message_order", "pairs_halves", "stage_pairing"]


def pairs_halves(config: Config, model: str) -> bool:
    """Whether a topic in a format that logs halves apart may carry ``model``."""
    return any(t.format in PAIRED_FORMATS and t.model in (None, model) for t in config.topics)


def stage_pairing(config: Config, model: str) -> StagePairing | None:
    """The owner's pairing store of ``model``, or None when no topic may carry its halves."""
    if not pairs_halves(config, model):
        return None
    return StagePairing(pairing_for(config, model, None))


def in_message_order(
    columns: ModelColumns, source: np.ndarray, offset: np.ndarray
) -> tuple[ModelColumns, np.ndarray, np.ndarray]:
    """Rows (with their per-row source and offset) back in message order: decode groups a
    batch's requests before its responses, and stage 2 counts a row behind its partition's
    progress late, so rows must travel as their messages came."""
    order = np.argsort(columns.msg_index, kind="stable")
    if bool((order[1:] > order[:-1]).all()):
        return columns, source, offset
    return columns.take(order), np.asarray(source)[order], np.asarray(offset)[order]


@dataclass
class PairStep:
    """What pairing one release did, as :class:`~monitor.pipeline.BatchOutcome` counts it:
    halves left unpaired per (half, reason), pairs completed, halves waiting per half, and
    the rows fed to the model (pairs, whole rows and requests released alone)."""

    unpaired: dict[tuple[str, str], int] = field(default_factory=dict)
    paired: int = 0
    pending: dict[str, int] = field(default_factory=dict)
    fed: int = 0


class StagePairing:
    """One owned model's waiting halves (see the module docstring)."""

    def __init__(self, pairing: Pairing) -> None:
        self.pairing = pairing

    def pair(self, columns: ModelColumns) -> tuple[ModelColumns, PairStep]:
        """Released rows, halves joined with their other half (``Pipeline._paired``)."""
        pairing = self.pairing
        before = dict(pairing.unpaired)
        paired_before = pairing.paired_total
        out = pairing.pair(columns) if columns.halves is not None else columns
        step = PairStep(
            {k: n - before[k] for k, n in pairing.unpaired.items() if n > before[k]},
            pairing.paired_total - paired_before,
            pairing.pending,
            out.rows,
        )
        return out, step

    def put(self, scalars: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """The waiting halves into a model state's scalars and arrays."""
        put_state_dict(scalars, arrays, PAIRING, self.pairing.state_dict())

    def take(
        self, scalars: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Restore the waiting halves of a state (``CheckpointError`` if they do not fit);
        the state's other scalars and arrays."""
        saved = take_prefixed(dict(scalars), dict(arrays), PAIRING)
        if saved:
            self.pairing.restore(saved)
        return (
            {k: v for k, v in scalars.items() if not k.startswith(PAIRING)},
            {k: v for k, v in arrays.items() if not k.startswith(PAIRING)},
        )
