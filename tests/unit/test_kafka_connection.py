"""The broker and topic conditions in driftmon's words, from librdkafka's callbacks.

The source runs over the fake consumer of ``test_kafka_source``; librdkafka's error and
log callbacks are called the way the real client calls them (the wording is the
client's own, copied from a consumer pointed at a closed port, at an HTTP server and at
a server that closes the connection). The real-broker versions are in
``tests/integration/test_kafka_unreachable.py``.
"""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError

from monitor.ingest.client_log import LIBRDKAFKA_LOGGER, last_connection_failure
from monitor.ingest.connection import BrokerWatch, unreachable_reason
from tests.unit.test_kafka_source import FakeMessage, Recorder, _stats

REFUSED = (
    "broker:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused "
    "(after 0ms in state CONNECT)"
)
HTTP_ANSWER = (
    "broker:9092/bootstrap: Receive failed: Invalid response size 1213486160 "
    "(0..100000000): increase receive.message.max.bytes (after 0ms in state APIVERSION_QUERY)"
)
OLD_BROKER = (
    "broker:9092/bootstrap: Disconnected while requesting ApiVersion: might be caused by "
    "incorrect security.protocol configuration (connecting to a SSL listener?) or broker "
    "version is < 0.10 (see api.version.request) (after 1ms in state APIVERSION_QUERY, "
    "4 identical error(s) suppressed) probably due to broker version < 0.10"
)


def _messages(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= level]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (REFUSED, "connection refused"),
        (HTTP_ANSWER, "the server there does not speak the Kafka protocol"),
        (OLD_BROKER, "the server there does not speak the Kafka protocol"),
        (
            "b:1/bootstrap: Failed to resolve 'nohost:9092': Name or service not known",
            "host name not resolved",
        ),
        ("b:1/bootstrap: something new", "something new"),
        (None, "no connection to any broker"),
    ],
)
def test_librdkafka_failures_are_worded_for_a_person(text: str | None, reason: str) -> None:
    assert unreachable_reason(text) == reason


def test_a_closed_port_is_said_once_naming_the_key_and_its_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = Recorder()
    error_cb = rec.consumer.conf["error_cb"]
    with caplog.at_level(logging.INFO, logger="monitor"):
        for _ in range(50):  # librdkafka repeats the failure about every 50 ms
            error_cb(KafkaError(KafkaError._TRANSPORT, REFUSED))
            error_cb(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
            rec.consumer.stats(_stats({}, state="DOWN"))
    (line,) = _messages(caplog)
    assert "kafka.bootstrap_servers broker:9092" in line
    assert "connection refused" in line and "cannot reach the Kafka broker" in line
    assert caplog.records[0].levelno == logging.ERROR
    assert rec.conditions == [
        ("kafka_connected", False, "broker at broker:9092 unreachable: connection refused")
    ]
    assert rec.source.connected is False


def test_a_non_kafka_port_is_named_as_such_not_as_an_old_broker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = Recorder()
    with caplog.at_level(logging.WARNING, logger="monitor"):
        rec.consumer.conf["error_cb"](KafkaError(KafkaError._BAD_MSG, HTTP_ANSWER))
        rec.consumer.conf["error_cb"](KafkaError(KafkaError._TRANSPORT, OLD_BROKER))
    (line,) = _messages(caplog)
    assert "is not a Kafka broker" in line and "kafka.bootstrap_servers broker:9092" in line
    assert "0.10" not in line
    assert rec.conditions[-1] == (
        "kafka_connected",
        False,
        "broker at broker:9092 unreachable: the server there does not speak the Kafka protocol",
    )


def test_a_reason_only_librdkafka_logs_is_read_from_its_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A server that closes the connection: the error callback only says "all brokers
    # are down"; the why is in librdkafka's FAIL line, which the log filter keeps.
    rec = Recorder()
    closed = (
        "[thrd:broker:9092/bootstrap]: broker:9092/bootstrap: Disconnected: connection "
        "closed by peer: receive 0 after POLLIN (after 0ms in state APIVERSION_QUERY)"
    )
    with caplog.at_level(logging.INFO, logger="monitor"):
        for _ in range(20):
            LIBRDKAFKA_LOGGER.error("%s [%s] %s", "FAIL", "rdkafka#consumer-1", closed)
        rec.consumer.conf["error_cb"](KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 down"))
    assert [r.name for r in caplog.records] == ["monitor.ingest.source"]  # raw lines kept back
    assert "is not a Kafka broker" in caplog.records[0].getMessage()
    assert last_connection_failure("other:1,broker:9092") == closed
    # Once a broker answers, the remembered failure no longer explains anything.
    rec.consumer.stats(_stats({}))
    assert last_connection_failure("broker:9092") is None


def test_raw_connection_failures_stay_available_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="monitor.librdkafka"):
        LIBRDKAFKA_LOGGER.error("%s [%s] %s", "FAIL", "rdkafka#consumer-1", "[thrd:x:1/b]: x")
    assert [r.name for r in caplog.records] == ["monitor.librdkafka"]


def test_recovery_is_logged_and_a_new_outage_is_said_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = Recorder()
    error_cb = rec.consumer.conf["error_cb"]
    with caplog.at_level(logging.INFO, logger="monitor.ingest.source"):
        error_cb(KafkaError(KafkaError._TRANSPORT, REFUSED))
        rec.source.consume(10, 0.1)  # nothing: still down
        rec.consumer.batches = [[FakeMessage("t", 0, 1)]]
        rec.source.consume(10, 0.1)  # a batch arrived: reachable
        error_cb(KafkaError(KafkaError._TRANSPORT, REFUSED))
    assert _messages(caplog, logging.INFO) == [
        _messages(caplog, logging.INFO)[0],
        "kafka broker reachable again",
        _messages(caplog, logging.INFO)[0],
    ]
    assert [c[1] for c in rec.conditions] == [False, True, False]


def test_a_missing_topic_is_named_once_with_the_key_and_clears_when_it_appears(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = Recorder(("orders", "labels"))
    unknown = KafkaError(
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        "Subscribed topic not available: labels: Broker: Unknown topic or partition",
    )
    with caplog.at_level(logging.INFO, logger="monitor.ingest.source"):
        rec.consumer.batches = [[FakeMessage("labels", -1, -1001, None, error=unknown)]] * 3
        for _ in range(3):
            assert rec.source.consume(10, 0.1) == []
        rec.consumer.rebalance("assign", [("orders", 0)])
        rec.consumer.stats(_stats({}) | {"topics": {"labels": {"partitions": {"-1": {}}}}})
    topics = [c for c in rec.conditions if c[0] == "kafka_topics"]
    assert topics == [("kafka_topics", False, "topic missing: labels")]  # said on change only
    (line,) = [m for m in _messages(caplog) if "labels" in m]
    assert "'labels' does not exist" in line and "kafka.topics" in line
    assert caplog.records[0].levelno == logging.ERROR
    # Created later: metadata lists its partitions, so the subscription is complete.
    rec.consumer.stats(_stats({}) | {"topics": {"labels": {"partitions": {"0": {}}}}})
    assert rec.conditions[-1] == ("kafka_topics", True, "")
    assert rec.source.watch.missing == set()


def test_an_assignment_without_missing_topics_makes_the_subscription_ready() -> None:
    rec = Recorder()
    rec.consumer.rebalance("assign", [])  # another replica may own every partition
    assert rec.conditions == [("kafka_topics", True, "")]


def test_the_watch_reports_nothing_without_a_receiver() -> None:
    watch = BrokerWatch("b:1", ["t"], None)
    watch.unreachable(REFUSED)
    watch.topic_missing("t")
    assert (watch.connected, watch.missing) == (False, {"t"})


def test_a_group_of_another_assignment_protocol_is_named_with_the_fix(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # What JoinGroup answers when a scale-out replica (cooperative-sticky) joins a group
    # whose members run without scale-out (eager), or the other way round.
    rec = Recorder()
    with caplog.at_level(logging.WARNING, logger="monitor"):
        for _ in range(3):  # librdkafka repeats it at every join attempt
            rec.consumer.conf["error_cb"](
                KafkaError(
                    KafkaError.INCONSISTENT_GROUP_PROTOCOL,
                    "JoinGroup failed: Broker: Inconsistent group protocol",
                )
            )
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.levelno == logging.ERROR
    line = record.getMessage()
    assert line.startswith("consumer group 'group' (kafka.group_id) refuses this replica")
    assert "kafka.scale_out" in line and "set another kafka.group_id" in line
