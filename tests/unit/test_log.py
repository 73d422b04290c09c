"""Logging setup, rate limiting and secret redaction."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from monitor import log as mlog
from monitor.log import RateLimitedLogger, configure_logging, register_secret


@pytest.fixture
def clean_monitor_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("monitor")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers.clear()
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def test_text_format_renders_extra_fields(clean_monitor_logger: logging.Logger) -> None:
    out = io.StringIO()
    assert configure_logging("debug", "text", stream=out) is not None
    logging.getLogger("monitor.pipeline").info(
        "drift confirmed", extra={"model": "fraud", "features": 3, "note": "two words"}
    )
    line = out.getvalue().strip()
    assert " INFO monitor.pipeline drift confirmed " in line
    assert line.endswith('model=fraud features=3 note="two words"')


def test_json_format(clean_monitor_logger: logging.Logger) -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    logger = logging.getLogger("monitor.x")
    logger.debug("hidden")
    logger.warning("bad %s", "input", extra={"reason": "not_json", "offset": 17})
    (line,) = out.getvalue().splitlines()
    doc = json.loads(line)
    assert doc["level"] == "warning" and doc["msg"] == "bad input"
    assert doc["logger"] == "monitor.x" and doc["reason"] == "not_json" and doc["offset"] == 17


def test_configure_is_noop_when_already_configured(clean_monitor_logger: logging.Logger) -> None:
    mine = logging.NullHandler()
    clean_monitor_logger.addHandler(mine)
    assert configure_logging("info", "json") is None
    assert clean_monitor_logger.handlers == [mine]


def test_redaction_everywhere(clean_monitor_logger: logging.Logger) -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    register_secret("s3cr3t-token")
    register_secret("ab")  # too short to mask safely: ignored
    logger = logging.getLogger("monitor.webhooks")
    logger.info("token is s3cr3t-token", extra={"header": "Bearer s3cr3t-token"})
    logger.info("arg %s", "s3cr3t-token")
    try:
        raise RuntimeError("failed with s3cr3t-token")
    except RuntimeError:
        logger.exception("delivery failed")
    text = out.getvalue()
    assert "s3cr3t-token" not in text
    assert text.count(mlog.MASK) >= 4
    assert "ab" in mlog._REDACTION.scrub("ab")


def test_rate_limiter_counts_suppressed(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    logger = logging.getLogger("monitor.test_rate")
    limited = RateLimitedLogger(logger, limit=2, interval_seconds=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="monitor.test_rate"):
        results = [limited.warning("not_json", "invalid message") for _ in range(5)]
        assert results == [True, True, False, False, False]
        assert limited.warning("oversized", "too big")  # other keys have their own budget
        now[0] = 10.0
        assert limited.warning("not_json", "invalid message", extra={"offset": 3})
    records = [r for r in caplog.records if r.name == "monitor.test_rate"]
    assert len(records) == 4
    last = records[-1]
    assert last.suppressed == 3 and last.reason == "not_json" and last.offset == 3  # type: ignore[attr-defined]
    assert not hasattr(records[0], "suppressed")


def test_rate_limiter_validates_arguments() -> None:
    with pytest.raises(ValueError, match="limit"):
        RateLimitedLogger(logging.getLogger("monitor"), limit=0)
