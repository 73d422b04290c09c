"""The one HTTP receiver of the tests: on 127.0.0.1, it records requests and answers from a script.

Each request is recorded (before answering, so even dropped ones are kept) and answered
with the next scripted :class:`Reply`; once the script is used up, ``handler`` answers if
given, else ``default``. A reply can delay (a hanging receiver), or drop the connection
without any response (the client then sees ``httpx.RemoteProtocolError``), which is what
retry and timeout tests need. A ``handler`` may check a request's shape with ``assert``:
its ``AssertionError`` is kept in :attr:`WebhookReceiver.errors` and answered with 500, so
the test asserts ``errors == []`` at the end. Given a ``port``, the receiver binds it at
every :meth:`~WebhookReceiver.start`, so it can go down and come back on the same address.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``drop=True`` closes the connection without responding.

    A ``body`` that is not bytes is sent as JSON, with ``content-type: application/json``
    unless ``headers`` name another.
    """

    status: int = 204
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | dict[str, Any] | list[Any] = b""
    delay_seconds: float = 0.0
    drop: bool = False

    def encoded(self) -> tuple[Mapping[str, str], bytes]:
        """The headers and body bytes to send."""
        if isinstance(self.body, bytes):
            return self.headers, self.body
        headers = {"content-type": "application/json", **self.headers}
        return headers, json.dumps(self.body).encode()


DROP = Reply(drop=True)
"""Close the connection after reading the request, without sending a response."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received. Header names are lower-cased (HTTP is case-insensitive)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    time: float  # wall clock, epoch seconds
    monotonic: float  # time.monotonic(), for measuring intervals between attempts

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hanging reply must not block shutdown
    receiver: WebhookReceiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: clients that time out and hang up are what some tests provoke."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, like real receivers
    timeout = 30

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Trailer section ends with an empty line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers=headers,
            body=self._read_body(),
            time=time.time(),
            monotonic=time.monotonic(),
        )
        reply = self.server.receiver._record(request)
        if reply.delay_seconds:
            time.sleep(reply.delay_seconds)
        if reply.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        reply_headers, body = reply.encoded()
        self.send_response(reply.status)
        for name, value in reply_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging on stderr."""


Handler = Callable[[RecordedRequest], Reply]
"""Answers a request once the script is used up; may ``assert`` on the request."""


class WebhookReceiver:
    """The receiver; use as a context manager or call :meth:`start` / :meth:`stop`."""

    def __init__(
        self,
        replies: Sequence[Reply] = (),
        default: Reply | None = None,
        *,
        handler: Handler | None = None,
        port: int = 0,
    ) -> None:
        self.default = default or Reply(204)
        self.handler = handler
        self.errors: list[str] = []
        self._requested_port = port
        self._script: deque[Reply] = deque(replies)
        self._requests: list[RecordedRequest] = []
        self._cond = threading.Condition()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> WebhookReceiver:
        """Bind 127.0.0.1 (the given port, else a free one) and serve in a daemon thread."""
        httpd = _Server(("127.0.0.1", self._requested_port), _Handler)
        httpd.receiver = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port, or the fixed one while stopped."""
        if self._httpd is None:
            assert self._requested_port, "receiver not started"
            return self._requested_port
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL; append any path (every path is recorded and answered alike)."""
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: Reply) -> None:
        """Queue more replies after those not yet used."""
        with self._cond:
            self._script.extend(replies)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request recorded so far, in arrival order."""
        with self._cond:
            return list(self._requests)

    def wait_for(self, n: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least ``n`` requests arrived; ``TimeoutError`` otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._requests) >= n, timeout):
                raise TimeoutError(
                    f"expected {n} requests within {timeout} s, got {len(self._requests)}"
                )
            return list(self._requests)

    def _record(self, request: RecordedRequest) -> Reply:
        with self._cond:
            self._requests.append(request)
            scripted = self._script.popleft() if self._script else None
            self._cond.notify_all()
        if scripted is not None:
            return scripted
        if self.handler is None:
            return self.default
        try:
            return self.handler(request)
        except AssertionError as exc:
            self.errors.append(f"{request.path}: {exc}")
            return Reply(500, body=b"request shape check failed")
