"""``kafka.scale_out``: one model over many replicas, in two stages through Kafka.

Off by default: a replica then runs every model on the events of its own partitions, and
events must be keyed by model (README, "Replicas"). Enabled, every replica decodes and bins
its share of the source partitions (stage 1) and produces the rows, keyed by model, to
``<group_id>.rows``; one replica per model (the ``<group_id>.eval`` group's assignment)
orders them by event time and runs the model (stage 2). A reference captured from the
stream is shared with every stage 1 through ``<group_id>.profiles``. See
docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from pydantic import Field

from monitor.config.base import Strict


class ScaleOutConfig(Strict):
    """Two-stage scale-out over the internal topics ``<group_id>.rows``,
    ``<group_id>.checkpoints`` and ``<group_id>.profiles`` (see the module docstring)."""

    enabled: bool = False
    #: How far behind its own partition's newest event an event may be and still count;
    #: the watermark trails the slowest partition by this much (the ordering delay).
    allowed_lateness_seconds: float = Field(default=5.0, ge=0, le=86_400)
    #: Rows a model may hold waiting for the watermark before it is forced forward.
    max_buffered_rows: int = Field(default=1_000_000, ge=1_000, le=100_000_000)
    #: A source partition caught up and quiet this long stops holding watermarks.
    idle_seconds: float = Field(default=5.0, gt=0, le=3_600)
    #: How often stage 2 writes its checkpoints and commits the internal offsets.
    checkpoint_interval_seconds: float = Field(default=5.0, gt=0, le=3_600)

    def rows_topic(self, group_id: str) -> str:
        return f"{group_id}.rows"

    def checkpoints_topic(self, group_id: str) -> str:
        return f"{group_id}.checkpoints"

    def profiles_topic(self, group_id: str) -> str:
        return f"{group_id}.profiles"

    def eval_group(self, group_id: str) -> str:
        return f"{group_id}.eval"
