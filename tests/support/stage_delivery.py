"""Row batches delivered to one model's stage 2 as Kafka may deliver them: each source
partition's batches in order, partitions interleaved at random, a fifth delivered twice,
and the stage reopened from its state half way (a failover)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from monitor.scaleout.codec import source_id
from monitor.scaleout.reorder import Marker
from monitor.scaleout.stage import ModelStage, StageStep


def deliver(
    queues: list[list[Any]],
    rnd: random.Random,
    new_stage: Callable[[], ModelStage],
    reopen: Callable[[ModelStage], ModelStage],
) -> tuple[list[StageStep], ModelStage]:
    """Every step of a stage fed ``queues`` (per source partition ``p`` of topic 0, its
    row batches in order), then every source marked idle and a last step; ``reopen``
    turns the stage half way into a new one restored from it."""
    order = [p for p, queue in enumerate(queues) for _ in queue]
    rnd.shuffle(order)
    pending = [list(queue) for queue in queues]
    stage = new_stage()
    steps = []
    for k, p in enumerate(order):
        batch = pending[p].pop(0)
        assert stage.push(batch)
        if rnd.random() < 0.2:
            assert stage.push(batch)  # delivered twice: dropped as duplicates
        steps.append(stage.step())
        if k == len(order) // 2:
            stage = reopen(stage)
    for p in range(len(queues)):
        stage.mark(Marker(source_id(0, p), 10**6, idle=True))
    steps.append(stage.step())
    return steps, stage
