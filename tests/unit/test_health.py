"""Readiness conditions."""

from __future__ import annotations

import pytest

from monitor.publish.health import CORE_CONDITIONS, Health


def test_not_ready_until_every_condition_holds() -> None:
    health = Health()
    assert not health.is_ready
    assert health.reasons_not_ready() == list(CORE_CONDITIONS)
    for name in CORE_CONDITIONS:
        health.set(name, True)
    assert health.is_ready
    assert health.reasons_not_ready() == []


def test_detail_is_reported_only_while_failing() -> None:
    health = Health()
    health.set("consumer_assigned", False, "no partitions assigned yet")
    assert "consumer_assigned: no partitions assigned yet" in health.reasons_not_ready()
    health.set("consumer_assigned", True, "ignored when ok")
    assert not any(r.startswith("consumer_assigned") for r in health.reasons_not_ready())


def test_open_conditions_register_and_gate_readiness() -> None:
    health = Health(extra=("webhook_worker_alive",))
    for name in CORE_CONDITIONS:
        health.set(name, True)
    health.set("webhook_worker_alive", True)
    assert health.is_ready
    health.register("state_dir_writable")
    assert health.reasons_not_ready() == ["state_dir_writable"]
    health.register("state_dir_writable", ok=True)  # idempotent: keeps the current state
    assert not health.is_ready
    health.set("state_dir_writable", True)
    assert health.is_ready
    assert list(health.conditions())[-2:] == ["webhook_worker_alive", "state_dir_writable"]


def test_unknown_condition_is_an_error() -> None:
    with pytest.raises(KeyError, match="kafka_conected"):
        Health().set("kafka_conected", True)
