"""References captured from the stream, shared through ``<group_id>.profiles``.

Two replicas run a model with versions whose default reference is its first 500 events
without a version and version v2's its first 250 events of v2. Stage 1 sends its rows raw
until the owner has captured and shared both profiles (keys ``captured`` and
``captured@v2``), then binned against them, each row with its version. The
owner then leaves: the other replica takes the model over, restoring the captured profile
from the checkpoint. The one that left comes back afresh (no state anywhere but the
topics) and bins from its first batch against the topic's profile. The rest of the events
arrive; every evaluation equals ``driftmon replay`` of the events sorted by event time,
and every row of the second part travelled binned.

Sources never go idle here (``idle_seconds`` an hour): an idle source stops holding the
watermark, so rows produced while the replicas run could be applied out of event-time
order (see test_scaleout_replicas). The last rows then stay buffered behind the watermark;
a tail shorter than a slide follows the compared events so every evaluation is released.
The test broker's group coordinator can stall when a member leaves during another
rebalance, so the test waits for stable groups before each change.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
import yaml
from confluent_kafka import Consumer, Message, TopicPartition

from monitor.app.replay import evaluation_record
from monitor.app.scaleout.topics import KIND, ROWS
from monitor.demo.synthetic import MODEL
from monitor.scaleout.codec import decode_rows
from monitor.state.checkpoint import decode_checkpoint
from tests.integration.daemon_harness import SECRET, SECRET_ENV, events
from tests.integration.scaleout_harness import (
    ROWS_PARTITIONS,
    SOURCE_PARTITIONS,
    produce_spread,
    replay_records,
    scaled_out,
)
from tests.support.daemon import RunningDaemon
from tests.support.kafka import produce
from tests.support.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "captured"
CAPTURE = 500
VERSION_CAPTURE = 250
WINDOW = {"events": 500, "slide": 250}
HALF = 1_500  # stationary, then drifted
# After the compared events: longer than the lateness (2 s); no evaluation of either
# reference falls in its last 2 s.
TAIL = 240


def captured_events() -> list[bytes]:
    start = 1_764_150_000.0
    out = events(HALF, seed=11, start_ts=start)
    out += events(HALF + TAIL, seed=21, drift=True, start_ts=start + HALF * 0.01)
    # Every third event is of version v2 (the event's field), the others have none.
    return [
        orjson.dumps(
            {**orjson.loads(m), "model": NAME, **({"version": "v2"} if i % 3 == 2 else {})}
        )
        for i, m in enumerate(out)
    ]


def write_captured_config(config: Path) -> Path:
    doc = yaml.safe_load(config.read_text())
    doc["kafka"]["scale_out"]["idle_seconds"] = 3600
    model = doc["models"][MODEL]
    model["reference"] = {"capture_events": CAPTURE}
    model["window"] = WINDOW
    model["versions"] = {"capture_events": VERSION_CAPTURE}
    doc["models"] = {NAME: model}
    path = config.parent / "driftmon-captured.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def records(bootstrap: str, topic: str) -> list[Message]:
    """Every record of ``topic``, read to its end without a group."""
    reader = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"{topic}-check", "enable.auto.commit": False}
    )
    found = []
    try:
        meta = reader.list_topics(topic, timeout=10).topics[topic]
        ends = {}
        for p in meta.partitions:
            ends[p] = reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        reader.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
        seen = dict.fromkeys(meta.partitions, 0)
        while any(seen[p] < ends[p] for p in seen):
            for msg in reader.consume(500, 1.0):
                if msg.error() is None:
                    seen[msg.partition()] = msg.offset() + 1
                    found.append(msg)
    finally:
        reader.close()
    return found


def row_batches(bootstrap: str, topic: str) -> list[tuple[bool, int, dict[int, list[int]]]]:
    """Every row batch on the internal topic: (raw?, bytes, offsets per source)."""
    found = []
    for msg in records(bootstrap, topic):
        if dict(msg.headers() or []).get(KIND) != ROWS:
            continue
        batch = decode_rows(msg.value())
        offsets: dict[int, list[int]] = {}
        for s, o in zip(batch.source.tolist(), batch.offset.tolist(), strict=True):
            offsets.setdefault(s, []).append(o)
        found.append((batch.raw is not None, len(msg.value()), offsets))
    return found


def first_written(bootstrap: str, group: str) -> tuple[int, int]:
    """Timestamps (ms) of the first checkpoint holding the captured profile and of the
    first profile record: the owner writes the checkpoint first."""
    checkpoint = min(
        msg.timestamp()[1]
        for msg in records(bootstrap, f"{group}.checkpoints")
        if (msg.key() or b"").isdigit()
        and NAME in (ckpt := decode_checkpoint(msg.value(), "checkpoint")).models
        and "profile" in ckpt.models[NAME].scalars
    )
    shared = records(bootstrap, f"{group}.profiles")
    assert {msg.key() for msg in shared} >= {b"captured", b"captured@v2"}
    profile = min(msg.timestamp()[1] for msg in shared if msg.key() == b"captured")
    return checkpoint, profile


def test_a_captured_reference_is_shared_and_rows_after_it_are_binned(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic, webhook_receiver, env
) -> None:
    env.set(SECRET_ENV, SECRET)
    topic, group, _, base = scaled_out(tmp_path, kafka_bootstrap, kafka_topic, webhook_receiver.url)
    config = write_captured_config(base)
    messages = captured_events()
    expected = [r for r in replay_records(config, messages) if r["type"] == "drift"]
    expected.sort(key=lambda r: (str(r.get("version")), r["slide"]))  # type: ignore[arg-type]
    assert len(expected) >= 6 and any(r["triggered"] for r in expected)
    assert {r.get("version") for r in expected} == {None, "v2"}
    first, rest = messages[:HALF], messages[HALF:]
    produce_spread(kafka_bootstrap, topic, first, seed=1)

    def sends(replica: RunningDaemon) -> str | None:
        doc = replica.get("/status").json()
        return doc.get("scale_out", {}).get("models", {}).get(NAME, {}).get("sends")

    def stable(live: list[RunningDaemon]) -> bool:
        """Every live replica reads source partitions; every internal partition is owned."""
        found = [r.daemon.scaleout for r in live]
        if any(so is None for so in found):
            return False
        sources = [len(so.stage1.source.assigned_partitions) for so in found if so]
        return (
            sum(sources) == SOURCE_PARTITIONS
            and all(sources)
            and (sum(len(so.stage2.owned) for so in found if so) == ROWS_PARTITIONS)
        )

    def owner_of(live: list[RunningDaemon]) -> RunningDaemon:
        [owner] = [r for r in live if r.daemon.results.get(NAME)]
        return owner

    replicas = {n: RunningDaemon(config, daemon_kwargs={"replica_id": n}) for n in ("a", "b")}
    try:
        for replica in replicas.values():
            replica.start()
        live = list(replicas.values())
        wait_until(lambda: all(r.daemon.http_port for r in live), 30, "HTTP servers up")
        # The owner captured and shared the profile; each stage 1 read it and bins.
        wait_until(lambda: all(sends(r) == "binned" for r in live), 40, "profile shared")
        docs = [r.get("/status").json()["scale_out"]["models"][NAME] for r in live]
        assert sorted(d["reference"] for d in docs) == ["captured", "topic"], docs
        wait_until(lambda: stable(live), 30, "stable groups")
        # The owner leaves (a failover); the other takes the model over from its checkpoint.
        owner = owner_of(live)
        name = owner.daemon.replica_id
        owner.stop()
        live.remove(owner)
        wait_until(lambda: stable(live), 30, f"the other replica alone after {name} left")
        doc = owner_of(live).get("/status").json()["scale_out"]["models"][NAME]
        assert doc["reference"] == "captured", doc  # restored with its profile
        # It comes back afresh (no state but the topics): it bins from its first batch.
        produce(kafka_bootstrap, f"{group}.profiles", [b"not a profile"], key=b"stray")
        back = RunningDaemon(config, daemon_kwargs={"replica_id": name}).start()
        replicas[f"{name} again"] = back
        live.append(back)
        wait_until(lambda: back.daemon.scaleout is not None, 30, "stages up")
        assert back.daemon.scaleout is not None
        assert set(back.daemon.scaleout.stage1.grids[NAME].codecs) == {"", "v2"}  # at start
        wait_until(lambda: stable(live), 30, f"stable groups after {name} came back")
        # Produced while the replicas run: no source is ever idle here (module docstring),
        # so the watermark waits for every partition and the rows stay in order.
        produce_spread(kafka_bootstrap, topic, rest, seed=2)

        def got() -> list[dict[str, object]]:
            found = [evaluation_record(e) for r in replicas.values() for e in r.evaluations]
            records = orjson.loads(orjson.dumps(found))
            return sorted(records, key=lambda r: (str(r.get("version")), r["slide"]))

        try:
            wait_until(lambda: len(got()) >= len(expected), 40, "every evaluation of the replay")
        except AssertionError as exc:
            docs = [r.get("/status").json().get("scale_out") for r in live]
            raise AssertionError(f"{exc}: {len(got())} of {len(expected)}; {docs}") from None
        assert got() == expected
        doc = owner_of(live).get("/status").json()["scale_out"]
        assert doc["models"][NAME]["reference"] == "captured"
        assert doc["models"][NAME]["rows"]["rejected"] == 0
        assert all(sends(r) == "binned" for r in live)
        records = back.get("/status").json()["scale_out"]["profile_records"]
        assert records["unknown_model"] == 1 and records["used"] == 2, records
        assert records["garbled"] == records["other_config"] == 0, records
        assert back.metric("driftmon_profile_records_total", outcome="unknown_model") == 1
    finally:
        for replica in replicas.values():
            replica.stop()

    # On the internal topic: the second part's rows all binned, at a third of the bytes.
    produced = _first_part_offsets(first)
    batches = row_batches(kafka_bootstrap, f"{group}.rows")
    raw = [b for b in batches if b[0]]
    binned = [b for b in batches if not b[0]]
    assert raw and binned
    for _, _, offsets in raw:
        for source, found in offsets.items():
            assert max(found) < produced[source], "a raw row of the second part"
    raw_bytes = sum(b[1] for b in raw) / sum(len(o) for b in raw for o in b[2].values())
    binned_bytes = sum(b[1] for b in binned) / sum(len(o) for b in binned for o in b[2].values())
    assert binned_bytes < raw_bytes / 2, (binned_bytes, raw_bytes)
    checkpoint, profile = first_written(kafka_bootstrap, group)
    assert checkpoint <= profile


def _first_part_offsets(first: list[bytes]) -> dict[int, int]:
    """Per source partition (its source id: the first topic's), how many of the first
    part's events it holds (the seeded spread of :func:`produce_spread`)."""
    rng = np.random.default_rng(1)
    target = rng.integers(0, SOURCE_PARTITIONS, len(first))
    return {p: int((target == p).sum()) for p in range(SOURCE_PARTITIONS)}
