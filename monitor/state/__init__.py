"""Durability: checkpoint files, which state goes with which partitions, and the order in
which offsets are committed.

- :mod:`monitor.state.checkpoint`: the file format and ``CheckpointStore``, the only code
  that reads, writes or deletes checkpoint files (handover copies included).
- :mod:`monitor.state.recovery`: ``RecoveryCoordinator``, restore on assignment, hand over
  on revocation, split-model detection, and whether a checkpoint is due or failing.
- :mod:`monitor.state.commit`: ``CommitSequence``, drain → flush → checkpoint → commit.

``RecoveryCoordinator`` is not re-exported here: it imports the pipeline, and the model
code imports this package's checkpoint types.
"""

from monitor.state.checkpoint import (
    Checkpoint,
    CheckpointStore,
    ModelState,
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
    "ModelState",
    "decode_checkpoint",
    "encode_checkpoint",
    "partition_key",
]
