"""Stage 2 shares what its models captured: ``<group_id>.profiles``, after the checkpoint.

When an owned model completes its reference capture, the checkpoint of its internal
partition (which holds the profile) is written first, then the profile goes to the
profiles topic, acknowledged. Stage 1 bins rows against a profile only after reading it
there, so binned rows of a captured profile exist only once a checkpoint that restores it
exists: an owner taking the model over (a failover, a restart on an empty state dir)
always finds the profile in the checkpoint it restores, and accepts those rows. An owner
restoring a captured model shares it again when the topic lacks it (the previous owner
died between its checkpoint and the profile). Anything not done is retried after the next
periodic checkpoint; meanwhile stage 1 sends raw rows, which every owner accepts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from monitor.app.scaleout.topics import DeliveryFailed, ProfileTopic
from monitor.config import CaptureReference
from monitor.errors import CheckpointError
from monitor.model.model import Model
from monitor.scaleout.profiles import encode_profile
from monitor.scaleout.stage import ModelStage

logger = logging.getLogger(__name__)


class ProfileSharing:
    """The owned models' captured profiles not on the topic yet (see the module docstring)."""

    def __init__(self, topic: ProfileTopic | None, checkpoint: Callable[[list[int]], None]) -> None:
        self.topic = topic
        self._checkpoint = checkpoint
        # model -> (internal partition, its stage, whether a checkpoint holds the profile)
        self._pending: dict[str, tuple[int, ModelStage, bool]] = {}

    def captured(self, model: str, partition: int, stage: ModelStage, *, saved: bool) -> None:
        """``model`` has a captured profile to share (just captured, or restored)."""
        if self.topic is not None:
            self._pending[model] = (partition, stage, saved)

    def saved(self, partitions: list[int] | None = None) -> None:
        """The checkpoints of ``partitions`` (or of all owned ones) were just written."""
        self._pending = {
            m: (i, s, saved or partitions is None or i in partitions)
            for m, (i, s, saved) in self._pending.items()
        }

    def share(self, partitions: list[int] | None = None) -> None:
        """Checkpoint, then publish, the pending profiles (of ``partitions``, or all)."""
        topic = self.topic
        pending = {
            m: entry
            for m, entry in self._pending.items()
            if partitions is None or entry[0] in partitions
        }
        if topic is None or not pending:
            return
        unsaved = sorted({i for i, _, saved in pending.values() if not saved})
        if unsaved:
            try:
                self._checkpoint(unsaved)
            except CheckpointError as exc:
                logger.warning("captured profile not shared yet", extra={"error": str(exc)})
                return
        for model, (i, stage, _) in pending.items():
            del self._pending[model]
            # The model's captured reference, or with versions each captured version's.
            for key, (profile, fingerprint) in stage.shared_profiles().items():
                if topic.table.fingerprint(key) == fingerprint:
                    continue  # on the topic already
                try:
                    topic.publish(key, encode_profile(profile, fingerprint))
                except DeliveryFailed as exc:
                    self._pending[model] = (i, stage, True)
                    logger.warning("captured profile not shared yet", extra={"error": str(exc)})
                    break
                logger.info(
                    "captured reference shared",
                    extra={"model": model, "key": key, "topic": topic.topic,
                           "fingerprint": fingerprint[:12]},
                )  # fmt: skip

    def forget(self, partitions: list[int]) -> None:
        """Partitions handed over: their new owner shares what is left."""
        self._pending = {m: e for m, e in self._pending.items() if e[0] not in partitions}

    def reference(self, model: Model, stage: ModelStage | None) -> str:
        """Where this replica's reference of the model came from: ``file``, ``captured``
        (the owner's capture, or its checkpoint), ``topic`` (stage 1 bins against the
        profile shared on the profiles topic) or ``capturing`` (none yet: raw rows)."""
        monitor = model.default
        if not isinstance(monitor.config.reference, CaptureReference):
            return "file"
        if stage is not None and monitor.profile is not None:
            return "captured"
        if self.topic is not None and self.topic.table.fingerprint(model.name) is not None:
            return "topic"
        return "capturing"

    def counts(self) -> dict[str, int]:
        """Records read from the profiles topic by outcome (none without the topic)."""
        return {} if self.topic is None else dict(self.topic.table.counts)
