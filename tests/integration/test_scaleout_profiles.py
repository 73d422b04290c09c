"""A reference captured from the stream, shared through ``<group_id>.profiles``.

Two replicas run a model whose reference is its first 1,000 events. Stage 1 sends its
rows raw until the owner has captured and shared the profile, then binned against it. Both
replicas then stop, the rest of the events arrive, and two replicas start afresh (no state
on disk: one of them never ran before): both bin from their first batch against the
topic's profile, the new owner restores the captured model from its checkpoint, and every
evaluation equals ``driftmon replay`` of the events sorted by event time.

Sources never go idle here (``idle_seconds`` an hour): an idle source stops holding the
watermark, so rows produced while the replicas run could be applied out of event-time
order (see test_scaleout_replicas). The last rows then stay buffered behind the watermark;
a tail shorter than a slide follows the compared events so every evaluation is released.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition

from monitor.app.replay import evaluation_record
from monitor.app.scaleout.topics import KIND, ROWS
from monitor.demo.synthetic import MODEL
from monitor.scaleout.codec import decode_rows
from tests.integration.daemon_harness import SECRET, SECRET_ENV, events
from tests.integration.scaleout_harness import (
    SOURCE_PARTITIONS,
    model_events,
    produce_spread,
    replay_records,
    scaled_out,
)
from tests.support.daemon import RunningDaemon
from tests.support.kafka import produce
from tests.support.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "captured"
CAPTURE = 1_000
TAIL = 400  # after the 6,000 compared events: less than a slide, longer than the lateness


def captured_events() -> list[bytes]:
    out = model_events(NAME, 0)
    last = orjson.loads(out[-1])["ts"]
    tail = events(TAIL, seed=41, drift=True, start_ts=last + 0.01)
    return out + [orjson.dumps({**orjson.loads(m), "model": NAME}) for m in tail]


def write_captured_config(config: Path) -> Path:
    doc = yaml.safe_load(config.read_text())
    doc["kafka"]["scale_out"]["idle_seconds"] = 3600
    model = doc["models"][MODEL]
    model["reference"] = {"capture_events": CAPTURE}
    doc["models"] = {NAME: model}
    path = config.parent / "driftmon-captured.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def row_batches(bootstrap: str, topic: str) -> list[tuple[bool, int, dict[int, list[int]]]]:
    """Every row batch on the internal topic: (raw?, bytes, offsets per source)."""
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
                if msg.error() is not None:
                    continue
                seen[msg.partition()] = msg.offset() + 1
                if dict(msg.headers() or []).get(KIND) != ROWS:
                    continue
                batch = decode_rows(msg.value())
                offsets: dict[int, list[int]] = {}
                for s, o in zip(batch.source.tolist(), batch.offset.tolist(), strict=True):
                    offsets.setdefault(s, []).append(o)
                found.append((batch.raw is not None, len(msg.value()), offsets))
    finally:
        reader.close()
    return found


def test_a_captured_reference_is_shared_and_rows_after_it_are_binned(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic, webhook_receiver, env
) -> None:
    env.set(SECRET_ENV, SECRET)
    topic, group, _, base = scaled_out(tmp_path, kafka_bootstrap, kafka_topic, webhook_receiver.url)
    config = write_captured_config(base)
    messages = captured_events()
    expected = [r for r in replay_records(config, messages) if r["type"] == "drift"]
    assert len(expected) >= 6 and any(r["triggered"] for r in expected)
    first, rest = messages[:3000], messages[3000:]
    produce_spread(kafka_bootstrap, topic, first, seed=1)

    def sends(replica: RunningDaemon) -> str | None:
        doc = replica.get("/status").json()
        return doc.get("scale_out", {}).get("models", {}).get(NAME, {}).get("sends")

    collected: list[object] = []
    replicas = [RunningDaemon(config, daemon_kwargs={"replica_id": n}) for n in ("a", "b")]
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            wait_until(lambda r=replica: r.daemon.http_port != 0, 30, "HTTP server up")
        # The owner captured and shared the profile; each stage 1 read it and bins.
        wait_until(lambda: all(sends(r) == "binned" for r in replicas), 40, "profile shared")
        docs = [r.get("/status").json()["scale_out"]["models"][NAME] for r in replicas]
        assert sorted(d["reference"] for d in docs) == ["captured", "topic"], docs
    finally:
        for replica in replicas:
            replica.stop()
            collected += replica.evaluations
    # Fresh replicas: "a" again and "c", which never ran. No state but the topics, where
    # a stray record of no configured model is counted and passed over.
    produce(kafka_bootstrap, f"{group}.profiles", [b"not a profile"], key=b"stray")
    produce_spread(kafka_bootstrap, topic, rest, seed=2)
    replicas = [RunningDaemon(config, daemon_kwargs={"replica_id": n}) for n in ("a", "c")]
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            wait_until(lambda r=replica: r.daemon.scaleout is not None, 30, "stages up")
            scaleout = replica.daemon.scaleout
            assert scaleout is not None
            # The profiles topic was read at start: binned from the first batch on.
            assert scaleout.stage1.codecs[NAME] is not None

        def got() -> list[dict[str, object]]:
            found = [evaluation_record(e) for e in collected]
            found += [evaluation_record(e) for r in replicas for e in r.evaluations]
            records = orjson.loads(orjson.dumps(found))
            return sorted(records, key=lambda r: r["slide"])

        wait_until(lambda: len(got()) >= len(expected), 40, "every evaluation of the replay")
        assert got() == expected
        [owner] = [r for r in replicas if r.daemon.results.get(NAME)]
        doc = owner.get("/status").json()["scale_out"]
        assert doc["models"][NAME]["reference"] == "captured"  # from its checkpoint
        assert doc["models"][NAME]["rows"]["rejected"] == 0
        records = doc["profile_records"]
        assert records["unknown_model"] == 1 and records["used"] >= 1, records
        assert records["garbled"] == records["other_config"] == 0, records
    finally:
        for replica in replicas:
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


def _first_part_offsets(first: list[bytes]) -> dict[int, int]:
    """Per source partition (its source id: the first topic's), how many of the first
    part's events it holds (the seeded spread of :func:`produce_spread`)."""
    rng = np.random.default_rng(1)
    target = rng.integers(0, SOURCE_PARTITIONS, len(first))
    return {p: int((target == p).sum()) for p in range(SOURCE_PARTITIONS)}
