"""Scale-out: one webhook per episode across owners, and gauges from the owner only.

Two replica processes share both groups; checkpoints are due only once an hour, so every
episode fires long before any checkpoint covers it. The owner of the first model is
SIGKILLed right after its deliveries (the window between the trigger and the checkpoint);
the survivor takes its internal partitions, restores nothing newer than the start, reads
the rows again and re-derives the same episodes (same ids: they are deterministic). The
receiver must still see exactly one delivery per episode of ``driftmon replay`` of the
events sorted by event time, and the survivor must end with the replay's evaluations.

Throughout, ``driftmon_last_event_timestamp_seconds{model}`` is exported by the model's
owner only: a replica that does not own a model (never did, or lost it) exports none.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.integration.daemon_harness import SECRET, SECRET_ENV
from tests.integration.scaleout_harness import (
    MODELS,
    all_events,
    produce_spread,
    replayed,
    scaled_out,
)
from tests.integration.test_scaleout_faults import Replicas
from tests.support.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LAST_EVENT = "driftmon_last_event_timestamp_seconds"


def exporters(replicas: Replicas, model: str) -> list[str]:
    """The live replicas exporting ``model``'s last event time."""
    return sorted(
        name
        for name, proc in replicas.running.items()
        if proc.alive() and proc.metric(LAST_EVENT, model=model) is not None
    )


def owners(replicas: Replicas, model: str) -> list[str]:
    return sorted(
        name
        for name, proc in replicas.running.items()
        if proc.alive() and model in ((replicas.status(name) or {}).get("models") or {})
    )


def status_of(replicas: Replicas, name: str) -> str:
    doc = replicas.status(name) or {}
    models = doc.get("models") or {}
    evaluations = {m: v.get("evaluations") for m, v in models.items()}  # type: ignore[union-attr]
    return f"evaluations {evaluations}; scale_out {doc.get('scale_out')}"


def story(replicas: Replicas) -> str:
    """Each replica's ownership moves, episodes and deliveries: what a failure needs."""
    keys = ("owned", "handed over", "confirmed", "delivered", "recorded", "assigned")
    return "\n".join(
        f"--- {name}\n{status_of(replicas, name)}\n"
        + "\n".join(
            line[:220] for line in proc.log_text().splitlines() if any(k in line for k in keys)
        )
        for name, proc in replicas.running.items()
    )


def test_an_owner_killed_before_its_checkpoint_sends_no_episode_twice(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic, webhook_receiver, env
) -> None:
    env.set(SECRET_ENV, SECRET)
    topic, group, _, config = scaled_out(
        tmp_path, kafka_bootstrap, kafka_topic, webhook_receiver.url
    )
    doc = yaml.safe_load(config.read_text())
    doc["kafka"]["scale_out"]["checkpoint_interval_seconds"] = 3600  # none after the start
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    messages = all_events()
    expected = replayed(config, messages)
    triggered = sorted(r["event_id"] for m in MODELS for r in expected[m] if r["triggered"])
    assert triggered
    # Produced before the replicas start, so no source partition is reported idle while
    # others are still being produced (see test_scaleout_replicas.py).
    produce_spread(kafka_bootstrap, topic, messages)
    replicas = Replicas(tmp_path, config)
    try:
        for name in ("a", "b"):
            replicas.start(name)
        for proc in replicas.running.values():
            proc.wait_serving()
        wait_until(replicas.stable, 60, "stable groups")

        def delivered() -> bool:
            return len(webhook_receiver.requests) >= len(triggered)

        wait_until(delivered, 90, "every episode's webhook")
        for model in MODELS:
            wait_until(lambda m=model: len(owners(replicas, m)) == 1, 30, "one owner")
            assert exporters(replicas, model) == owners(replicas, model), model
        [victim] = owners(replicas, MODELS[0])
        [survivor] = [n for n in replicas.running if n != victim]

        def recorded() -> bool:
            log = replicas.running[victim].log_text()
            return log.count("webhook delivery recorded for the other replicas") >= sum(
                r["triggered"] for r in expected[MODELS[0]]
            )

        wait_until(recorded, 30, "the owner's deliveries recorded")
        replicas.running[victim].kill()  # after the trigger, before any checkpoint
        wait_until(replicas.stable, 60, f"{survivor} alone after {victim}'s SIGKILL")

        def caught_up() -> bool:
            doc = replicas.status(survivor) or {}
            models = doc.get("models") or {}
            return all(m in models and models[m]["evaluations"] == len(expected[m]) for m in MODELS)

        wait_until(caught_up, 90, f"{survivor} re-derived every evaluation")
        skipped = replicas.running[survivor].log_text().count("delivered by another replica")
        assert skipped >= sum(r["triggered"] for r in expected[MODELS[0]])
        received = sorted(req.json()["id"] for req in webhook_receiver.requests)
        assert received == triggered  # exactly one delivery per episode
        for model in MODELS:
            assert exporters(replicas, model) == [survivor], model
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{story(replicas)}") from None
    finally:
        replicas.stop_all()
