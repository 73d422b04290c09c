"""Durability: checkpoint files, which state goes with which partitions, and the order in
which offsets are committed.

- :mod:`monitor.state.checkpoint`: the file format and ``CheckpointStore``, the only code
  that reads, writes or deletes checkpoint files (handover copies included).
- :mod:`monitor.state.recovery`: ``RecoveryCoordinator``, restore on assignment, hand over
  on revocation, split-model detection, and whether a checkpoint is due or failing.
- :mod:`monitor.state.commit`: ``CommitSequence``, drain → flush → checkpoint → commit.

``RecoveryCoordinator`` is not re-exported here: it imports the pipeline. ``ModelState``, the
container of one model's state, belongs to the model (:mod:`monitor.model.state`); checkpoints
hold one per model.
"""

from monitor.state.checkpoint import (
    Checkpoint,
    CheckpointStore,
    decode_checkpoint,
    encode_checkpoint,
    partition_key,
)
from monitor.state.commit import Commit, CommitSequence

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "Commit",
    "CommitSequence",
    "decode_checkpoint",
    "encode_checkpoint",
    "partition_key",
]
