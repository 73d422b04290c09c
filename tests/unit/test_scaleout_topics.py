"""The scale-out start-up check of the internal topics, as a user reads it."""

from __future__ import annotations

import socket

import pytest

from monitor.app.scaleout.topics import missing_topics_message, require_topics
from monitor.errors import DriftmonError


def test_one_missing_topic_is_named_with_the_fix() -> None:
    said = missing_topics_message(["g.rows"])
    assert said.startswith("kafka.scale_out: topic 'g.rows' does not exist on the broker;")
    assert "create it" in said and "kafka.scale_out.enabled: false" in said


def test_every_missing_topic_is_named_in_one_line() -> None:
    said = missing_topics_message(["g.rows", "g.checkpoints"])
    assert "topics 'g.rows', 'g.checkpoints' do not exist" in said
    assert "create them" in said and "\n" not in said


def test_an_unreachable_broker_names_bootstrap_servers_not_a_traceback() -> None:
    with socket.socket() as held:  # a port nothing listens on: bound, never listening
        held.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{held.getsockname()[1]}"
        with pytest.raises(DriftmonError) as caught:
            require_topics(address, ["g.rows", "g.checkpoints"], timeout=1.0)
    said = str(caught.value)
    assert said.startswith(f"kafka.bootstrap_servers: cannot reach the Kafka broker at {address}")
    assert "kafka.scale_out" in said and "\n" not in said
