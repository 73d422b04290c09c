"""One HTTP port for Prometheus, the orchestrator's probes and humans.

* ``/metrics``: the registry in the Prometheus text format (OpenMetrics when the scraper
  asks for it in ``Accept``).
* ``/healthz``: 200 while the process can answer at all (liveness).
* ``/readyz``: 200 when every readiness condition holds, else 503; JSON body
  :func:`monitor.publish.health.readiness_document` either way.
* ``/status``: :func:`monitor.publish.status.status_document` as JSON; ``/status?model=NAME``
  (repeatable) or ``/status/models/NAME``: the same document with only those models, 404
  naming a model it does not report.

The stdlib ``ThreadingHTTPServer`` runs in a daemon thread: the endpoints are read-only
views over snapshots, so no framework is needed, and a slow scrape never blocks the
consumer loop. Access logs go to the ``monitor.publish.server`` logger at DEBUG.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from prometheus_client import CollectorRegistry

from monitor.publish.health import Health, readiness_document
from monitor.publish.metrics.exposition import render_metrics
from monitor.publish.results import ResultsStore
from monitor.publish.status import models_document, unknown_models_document
from monitor.publish.web_config import WebConfig

log = logging.getLogger(__name__)

#: What a socket write or read raises when the client has gone away.
_CLIENT_GONE = (ConnectionError, TimeoutError, ssl.SSLError)
#: ``/status/models/NAME``: one model's status (also ``/status?model=NAME``).
MODEL_STATUS_PATH = "/status/models/"


class _Server(ThreadingHTTPServer):
    """The HTTP server with the objects the handler reads.

    Open connections are tracked so :meth:`close_connections` can end keep-alive
    connections on stop; otherwise a scraper's idle connection would keep being served
    by its handler thread after the listening socket is closed.
    """

    daemon_threads = True
    registry: CollectorRegistry
    results: ResultsStore
    health: Health
    web: WebConfig
    serve_status: bool

    def server_activate(self) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver's default prints a raw traceback to stderr, outside the log format
        # and its redaction. A client that went away is routine; anything else is logged.
        exc = sys.exc_info()[1]
        if isinstance(exc, _CLIENT_GONE):
            log.debug("http client %s went away: %s", client_address[0], exc)
            return
        log.error("http error serving %s", client_address[0], exc_info=True)

    def close_connections(self) -> None:
        """Shut down every open connection (their handler threads then finish)."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the peer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # The Server header names the product, not the Python version it runs on.
    server_version = "driftmon"
    sys_version = ""
    # Keep-alive, so Prometheus reuses its connection; idle connections end after the
    # timeout instead of pinning a thread forever.
    protocol_version = "HTTP/1.1"
    timeout = 60

    def setup(self) -> None:
        super().setup()  # applies the timeout to the connection first
        if isinstance(self.connection, ssl.SSLSocket):
            # The TLS handshake runs here, in the connection's own thread, not in the
            # accept loop where one slow client would hold up every other.
            self.connection.do_handshake()

    def do_GET(self) -> None:
        self._dispatch(send_body=True)

    def do_HEAD(self) -> None:
        self._dispatch(send_body=False)

    def _dispatch(self, send_body: bool) -> None:
        path = urlsplit(self.path).path
        auth = self.server.web.basic_auth
        if auth is not None and not auth.allows(self.headers.get("Authorization")):
            self.close_connection = True
            self._send(
                HTTPStatus.UNAUTHORIZED,
                b"unauthorized\n",
                "text/plain; charset=utf-8",
                send_body,
                {"WWW-Authenticate": 'Basic realm="driftmon"'},
            )
            return
        try:
            if path == "/metrics":
                text, content_type = render_metrics(
                    self.server.registry, self.headers.get("Accept", "")
                )
                self._send(HTTPStatus.OK, text, content_type, send_body)
            elif path == "/healthz":
                self._send(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8", send_body)
            elif path == "/readyz":
                body = readiness_document(self.server.health)
                status = HTTPStatus.OK if body["ready"] else HTTPStatus.SERVICE_UNAVAILABLE
                self._send_json(status, body, send_body)
            elif self.server.serve_status and (
                path == "/status" or path.startswith(MODEL_STATUS_PATH)
            ):
                self._send_status(path, send_body)
            else:
                self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found"}, send_body)
        except _CLIENT_GONE as exc:
            # The scraper reset or timed out mid-answer: nothing to answer, nothing broken.
            log.debug("http client %s went away: %s", self.client_address[0], exc)
            self.close_connection = True
        except Exception:
            # A failing collector must not kill the connection thread silently.
            log.exception("error serving %s", path)
            self._send_json(
                HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"}, send_body
            )

    def _send_status(self, path: str, send_body: bool) -> None:
        """``/status``, all models or those of ``?model=NAME`` (repeatable) or of
        ``/status/models/NAME``; 404 naming a model it does not report."""
        models: list[str] | None = parse_qs(urlsplit(self.path).query).get("model")
        if path.startswith(MODEL_STATUS_PATH):
            models = [unquote(path[len(MODEL_STATUS_PATH) :])]
        results = self.server.results
        try:
            doc = models_document(results, self.server.health, models)
        except KeyError as exc:
            unknown = [str(m) for m in exc.args]
            self._send_json(
                HTTPStatus.NOT_FOUND, unknown_models_document(results, unknown), send_body
            )
            return
        self._send_json(HTTPStatus.OK, doc, send_body)

    def _send_json(self, status: HTTPStatus, body: Any, send_body: bool) -> None:
        data = json.dumps(body, allow_nan=False).encode() + b"\n"
        self._send(status, data, "application/json", send_body)

    def _send(
        self,
        status: HTTPStatus,
        data: bytes,
        content_type: str,
        send_body: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        for name, value in {**self.server.web.headers, **(extra or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s %s", self.address_string(), format % args)


class Server:
    """The daemon's HTTP endpoint; ``port=0`` binds a free port (see :attr:`port`)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        results: ResultsStore,
        health: Health,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        web: WebConfig | None = None,
        serve_status: bool = True,
    ) -> None:
        self._web = web or WebConfig()
        self._serve_status = serve_status
        self._registry = registry
        self._results = results
        self._health = health
        self._host = host
        self._requested_port = port
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve in a daemon thread; raises ``OSError`` when the port is taken."""
        if self._httpd is not None:
            raise RuntimeError("server already started")
        httpd = _Server((self._host, self._requested_port), _Handler)
        httpd.registry = self._registry
        httpd.results = self._results
        httpd.health = self._health
        httpd.web = self._web
        httpd.serve_status = self._serve_status
        if self._web.tls is not None:
            httpd.socket = self._web.tls.wrap_socket(
                httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="driftmon-http",
            daemon=True,
        )
        self._thread.start()
        log.info("http listening on %s:%d", self._host, self.port)

    def stop(self) -> None:
        """Stop serving and close the socket; idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        """The bound port (the picked one when constructed with ``port=0``)."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:9108``."""
        host = self._host if self._host not in ("", "0.0.0.0") else "127.0.0.1"  # noqa: S104
        scheme = "https" if self._web.tls is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
