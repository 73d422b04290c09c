"""The HTTP server says nothing when a client hangs up early, and still reports real errors."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from monitor.publish.health import Health
from monitor.publish.results import ResultsStore
from monitor.publish.server import Server


@pytest.mark.parametrize(
    ("error", "traceback"),
    [
        (BrokenPipeError(32, "Broken pipe"), False),
        (ConnectionResetError(), False),
        (KeyError("x"), True),
    ],
)
def test_a_client_gone_before_its_answer_is_no_traceback(
    capsys: pytest.CaptureFixture[str], error: Exception, traceback: bool
) -> None:
    with Server(CollectorRegistry(), ResultsStore(), Health(), host="127.0.0.1", port=0) as server:
        http = server._httpd
        assert http is not None
        try:
            raise error
        except Exception:
            http.handle_error(None, ("127.0.0.1", 1))
    assert ("Traceback" in capsys.readouterr().err) is traceback
