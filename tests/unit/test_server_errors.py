"""The HTTP server says nothing above debug when a client hangs up early, and still
reports real errors, through the logger (its format and redaction), never raw stderr."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from monitor.publish.health import Health
from monitor.publish.results import ResultsStore
from monitor.publish.server import Server


@pytest.mark.parametrize(
    ("error", "reported"),
    [
        (BrokenPipeError(32, "Broken pipe"), False),
        (ConnectionResetError(), False),
        (KeyError("x"), True),
    ],
)
def test_a_client_gone_before_its_answer_is_no_traceback(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    reported: bool,
) -> None:
    caplog.set_level(logging.DEBUG, logger="monitor.publish.server")
    with Server(CollectorRegistry(), ResultsStore(), Health(), host="127.0.0.1", port=0) as server:
        http = server._httpd
        assert http is not None
        try:
            raise error
        except Exception:
            http.handle_error(None, ("127.0.0.1", 1))
    assert "Traceback" not in capsys.readouterr().err
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert bool(errors) is reported
    if reported:
        assert errors[0].exc_info is not None and errors[0].exc_info[0] is KeyError
