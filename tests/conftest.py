"""Fixtures shared by every test; the machinery lives in :mod:`tests.support`.

Real servers only, on 127.0.0.1 and free ports, stopped at teardown. A missing tool
(Tansu, prometheus, promtool) is a failure, never a skip: CI must not go green by
testing nothing.

Fixtures:

* ``env``: ``env.set(NAME, value)`` / ``env.unset(NAME)``, restored after the test.
* ``kafka_bootstrap`` (session): ``"127.0.0.1:PORT"`` of a Tansu broker.
* ``kafka_topic``: ``kafka_topic(partitions=3) -> name``; unique per call, deleted after.
* ``kafka_consumer``: ``kafka_consumer(group_id=None, **librdkafka) -> Consumer`` with
  the fast-join settings of :func:`~tests.support.kafka.consumer_config`; closed after.
* ``prometheus_server``: ``prometheus_server(targets, rule_files=()) -> PrometheusServer``.
* ``promtool``: path of the promtool binary.
* ``webhook_receiver``: a started :class:`~tests.support.webhook.WebhookReceiver`.

Helpers to import, one of each: ``free_port`` (``tests.support.net``), ``produce``,
``consumer_config``, ``tansu_broker`` (``tests.support.kafka``), ``WebhookReceiver``
(``tests.support.webhook``), ``DaemonProcess`` and ``RunningDaemon``
(``tests.support.daemon``), ``parse_samples`` and ``sample_value``
(``tests.support.metrics``), ``wait_until`` (``tests.support.wait``) and ``edit_yaml_file``
(``tests.support.yaml_edit``).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer

from monitor.demo.broker import EmbeddedBroker
from tests.support.kafka import consumer_config, create_topic, delete_topics, tansu_broker
from tests.support.net import free_port
from tests.support.prometheus import PrometheusServer, binary
from tests.support.schedule import DEFAULT_PER_TEST, DEFAULT_SLOW, load_durations, schedule
from tests.support.webhook import WebhookReceiver

__all__ = ["free_port"]


class Env:
    """Sets and unsets environment variables, restoring the originals on :meth:`restore`."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def _save(self, name: str) -> None:
        if name not in self._saved:
            self._saved[name] = os.environ.get(name)

    def set(self, name: str, value: str) -> None:
        """Set ``name`` for the rest of the test."""
        self._save(name)
        os.environ[name] = value

    def unset(self, name: str) -> None:
        """Remove ``name`` for the rest of the test (no error if it is not set)."""
        self._save(name)
        os.environ.pop(name, None)

    def restore(self) -> None:
        """Put every touched variable back as it was."""
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved.clear()


@pytest.fixture(autouse=True)
def monitor_logger_restored() -> Iterator[None]:
    """Every test leaves the ``monitor`` logger as it found it.

    Commands run in-process (``cli.main``) install a handler on the ``monitor`` logger, on the
    test's captured stderr, and turn propagation off; without this the next test in the same
    worker logs into a closed stream and its ``caplog`` sees nothing.
    """
    logger = logging.getLogger("monitor")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


@pytest.fixture
def env() -> Iterator[Env]:
    """Environment variables set or unset by the test, restored afterwards."""
    e = Env()
    try:
        yield e
    finally:
        e.restore()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """The session's Tansu broker (memory storage); its log is ``tansu.log`` in a tmp dir."""
    broker = tansu_broker(tmp_path_factory.mktemp("tansu") / "tansu.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: EmbeddedBroker) -> str:
    """``bootstrap.servers`` of the session's broker."""
    return kafka_broker.bootstrap


@pytest.fixture
def kafka_topic(
    kafka_bootstrap: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., str]]:
    """Factory: ``kafka_topic(partitions=3, prefix=None) -> name`` of a new, empty topic.

    Names are unique per call (test name plus a random suffix); every topic created is
    deleted at teardown, since the memory engine never frees data by itself.
    """
    created: list[str] = []
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]

    def make(partitions: int = 3, prefix: str | None = None) -> str:
        name = f"{prefix or base}-{uuid.uuid4().hex[:8]}"
        create_topic(kafka_bootstrap, name, partitions)
        created.append(name)
        return name

    yield make
    delete_topics(kafka_bootstrap, created)


@pytest.fixture
def kafka_consumer(kafka_bootstrap: str) -> Iterator[Callable[..., Consumer]]:
    """Factory: ``kafka_consumer(group_id=None, **overrides) -> Consumer``, closed after.

    A fresh group per call unless ``group_id`` is given; ``session.timeout.ms=6000`` keeps
    each join at about 3 s. Dotted keys go through ``**{"statistics.interval.ms": 500}``.
    """
    consumers: list[Consumer] = []

    def make(group_id: str | None = None, **overrides: object) -> Consumer:
        consumer = Consumer(consumer_config(kafka_bootstrap, group_id, **overrides))
        consumers.append(consumer)
        return consumer

    try:
        yield make
    finally:
        for consumer in consumers:
            try:
                consumer.close()
            except RuntimeError:
                pass  # already closed by the test


@pytest.fixture
def prometheus_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., PrometheusServer]]:
    """Factory: ``prometheus_server(targets, rule_files=(), alertmanagers=(), scrape=None)``.

    Each call starts a Prometheus on its own port and data dir, scraping the given
    ``host:port`` targets every second, and waits for ``/-/ready``. Stopped at teardown.
    """
    servers: list[PrometheusServer] = []

    def start(
        targets: Sequence[str],
        rule_files: Sequence[Path] = (),
        alertmanagers: Sequence[str] = (),
        scrape: Mapping[str, Any] | None = None,
    ) -> PrometheusServer:
        server = PrometheusServer(
            tmp_path_factory.mktemp("prometheus"),
            targets,
            rule_files,
            alertmanagers,
            scrape=scrape,
        )
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def promtool() -> Path:
    """Path of ``promtool``; fails (not skips) when it is missing."""
    try:
        return binary("promtool")
    except FileNotFoundError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A started receiver answering 204 by default; script replies with ``.script(...)``."""
    receiver = WebhookReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest files first, spread over the xdist workers' first blocks
    (:mod:`tests.support.schedule`): a minute-long test started last, or several started
    one after another on one worker, leaves the others idle at the end (CI time)."""
    durations = load_durations()
    counts: dict[str, int] = {}
    slow: set[str] = set()
    for item in items:
        name = item.nodeid.split("::")[0]
        counts[name] = counts.get(name, 0) + 1
        if item.get_closest_marker("slow"):
            slow.add(name)
    seconds = {
        name: durations.get(name, DEFAULT_SLOW if name in slow else DEFAULT_PER_TEST * count)
        for name, count in counts.items()
    }
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    items[:] = schedule(items, lambda item: item.nodeid.split("::")[0], seconds, workers)
