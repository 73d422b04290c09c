"""The HTTP endpoints over real sockets on 127.0.0.1."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from monitor.publish.health import CORE_CONDITIONS, Health
from monitor.publish.metrics import Metrics
from monitor.publish.results import ResultsStore
from monitor.publish.server import Server
from monitor.publish.status import status_document
from tests.support.prometheus import PrometheusServer
from tests.support.results import INVALID_REASONS, fake_status

pytestmark = pytest.mark.integration


@pytest.fixture
def parts() -> tuple[CollectorRegistry, ResultsStore, Health]:
    registry = CollectorRegistry()
    store = ResultsStore()
    health = Health()
    metrics = Metrics(
        registry,
        store,
        health,
        invalid_reasons=INVALID_REASONS,
        models=["fraud"],
        webhooks=["retrain"],
    )
    metrics.set_lag("ml.inference", 0, 7)
    store.publish(fake_status("fraud"), fake_status("idle", with_result=False))
    return registry, store, health


@pytest.fixture
def server(parts: tuple[CollectorRegistry, ResultsStore, Health]) -> Iterator[Server]:
    with Server(*parts, port=0) as srv:
        yield srv


def test_healthz_and_port_zero_picks_a_port(server: Server) -> None:
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"
    resp = httpx.get(f"{server.url}/healthz")
    assert resp.status_code == 200
    assert resp.text == "ok\n"
    head = httpx.head(f"{server.url}/healthz")
    assert head.status_code == 200
    assert head.content == b""


def test_readyz_reports_reasons_until_ready(
    server: Server, parts: tuple[CollectorRegistry, ResultsStore, Health]
) -> None:
    health = parts[2]
    health.set("consumer_assigned", False, "waiting for partitions")
    resp = httpx.get(f"{server.url}/readyz")
    assert resp.status_code == 503
    body = resp.json()
    assert body["ready"] is False
    assert "consumer_assigned: waiting for partitions" in body["reasons"]
    for name in CORE_CONDITIONS:
        health.set(name, True)
    resp = httpx.get(f"{server.url}/readyz")
    assert resp.status_code == 200
    assert resp.json() == {
        "ready": True,
        "reasons": [],
        "conditions": dict.fromkeys(CORE_CONDITIONS, True),
    }


def test_status_serves_the_status_document(
    server: Server, parts: tuple[CollectorRegistry, ResultsStore, Health]
) -> None:
    resp = httpx.get(f"{server.url}/status")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    doc = resp.json()
    # The wire form equals the in-process document, NaN rendered as null.
    assert doc == status_document(parts[1], parts[2])
    assert doc["models"]["fraud"]["last_evaluation"]["drifted_features"] == ["amount"]


def test_metrics_text_and_openmetrics(server: Server) -> None:
    resp = httpx.get(f"{server.url}/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = resp.text
    assert 'driftmon_drift_score{feature="amount",model="fraud",test="psi"} 0.41' in text
    assert 'driftmon_invalid_events_total{reason="bad_timestamp"} 0.0' in text
    om = httpx.get(
        f"{server.url}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n")


def test_promtool_check_metrics_reports_nothing(server: Server, promtool: Path) -> None:
    scrape = httpx.get(f"{server.url}/metrics").content
    out = subprocess.run(
        [str(promtool), "check", "metrics"], input=scrape, capture_output=True, timeout=30
    )
    assert (out.returncode, out.stdout, out.stderr) == (0, b"", b"")


def test_unknown_path_is_404(server: Server) -> None:
    resp = httpx.get(f"{server.url}/nope")
    assert resp.status_code == 404
    assert resp.json() == {"error": "not found"}


def test_access_log_goes_to_the_monitor_logger_at_debug(
    server: Server, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.DEBUG, logger="monitor.publish.server"):
        httpx.get(f"{server.url}/healthz")
    records = [r for r in caplog.records if r.name == "monitor.publish.server"]
    assert any("GET /healthz" in r.getMessage() for r in records)
    assert all(r.levelno == logging.DEBUG for r in records)
    assert capfd.readouterr().err == ""


class _Broken:
    def collect(self) -> Iterable[Metric]:
        raise RuntimeError("collector failed")


def test_a_failing_collector_gives_500_and_keeps_serving(
    parts: tuple[CollectorRegistry, ResultsStore, Health], caplog: pytest.LogCaptureFixture
) -> None:
    registry, store, health = parts
    registry.register(_Broken())
    with Server(registry, store, health) as srv:
        with caplog.at_level(logging.ERROR, logger="monitor.publish.server"):
            assert httpx.get(f"{srv.url}/metrics").status_code == 500
        assert httpx.get(f"{srv.url}/healthz").status_code == 200
    assert "error serving /metrics" in caplog.text


def test_lifecycle(parts: tuple[CollectorRegistry, ResultsStore, Health]) -> None:
    srv = Server(*parts)
    with pytest.raises(RuntimeError):
        _ = srv.port
    srv.start()
    port = srv.port
    with pytest.raises(RuntimeError):
        srv.start()
    srv.stop()
    srv.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz")
    # A keep-alive connection opened before stop is closed by stop, not served on.
    keep = Server(*parts)
    keep.start()
    url = keep.url
    with httpx.Client() as client:
        assert client.get(f"{url}/healthz").status_code == 200
        keep.stop()
        with pytest.raises(httpx.TransportError):
            client.get(f"{url}/healthz")
    taken = Server(*parts)
    taken.start()
    try:
        with pytest.raises(OSError):
            Server(*parts, port=taken.port).start()
    finally:
        taken.stop()


def test_prometheus_scrapes_the_drift_gauges(
    server: Server, prometheus_server: Callable[..., PrometheusServer]
) -> None:
    prom = prometheus_server([f"127.0.0.1:{server.port}"])
    result = prom.wait_for('driftmon_drift_score{model="fraud",feature="amount",test="psi"}')
    assert result[0]["value"][1] == "0.41"
    assert prom.query('driftmon_alert_state{model="fraud"}')[0]["value"][1] == "2"


def test_clients_that_reset_mid_scrape_leave_no_trace_above_debug(
    server: Server, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """100 scrapers that send a request and reset the connection at once: no traceback
    on stderr (it would bypass the log format and redaction), nothing above DEBUG, and the
    next scrape is served."""
    import socket
    import struct

    caplog.set_level(logging.DEBUG, logger="monitor.publish.server")
    request = f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
    for i in range(100):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            if i % 2:
                sock.sendall(request)
            else:
                sock.sendall(request[:10])  # reset while the server is still reading
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert httpx.get(f"{server.url}/metrics").status_code == 200
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "Error" not in captured.err
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []


def test_server_header_names_the_product_only(server: Server) -> None:
    header = httpx.get(f"{server.url}/healthz").headers["server"]
    assert header == "driftmon"
