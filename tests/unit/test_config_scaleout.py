"""`kafka.scale_out` and `kafka.group_id` mistakes: the key, and what to write instead."""

from __future__ import annotations

import pytest

from tests.unit.test_config import cfg, one_problem


def test_scale_out_written_as_a_boolean_shows_the_mapping_to_write() -> None:
    where, message, hint = one_problem(cfg(**{"kafka.scale_out": True}))
    assert (where, message) == ("kafka.scale_out", "must be a mapping (key: value), got a boolean")
    assert "`scale_out: {enabled: true}`" in hint
    assert "scaleoutconfig" not in message.lower()


@pytest.mark.parametrize(
    ("key", "value", "hint_part"),
    [
        ("enabled", "sometimes", "`true` or `false`"),
        ("allowed_lateness_seconds", -1, "0 to 86400 (default 5)"),
        ("max_buffered_rows", 10, "1000 to 100000000"),
        ("idle_seconds", 0, "above 0 and at most 3600"),
        ("checkpoint_interval_seconds", 0, "above 0 and at most 3600"),
    ],
)
def test_bad_scale_out_values_name_the_key_and_its_range(
    key: str, value: object, hint_part: str
) -> None:
    where, _, hint = one_problem(cfg(**{"kafka.scale_out": {"enabled": True, key: value}}))
    assert where == f"kafka.scale_out.{key}"
    assert hint_part in hint


def test_an_empty_group_id_says_what_to_write() -> None:
    where, _, hint = one_problem(cfg(**{"kafka.group_id": ""}))
    assert where == "kafka.group_id"
    assert "`group_id: driftmon`" in hint and "<group_id>.rows" in hint
