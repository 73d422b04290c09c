"""A scripted HTTP receiver on 127.0.0.1 for the webhook integration tests.

Each request is recorded, then answered by the next scripted action, or by ``handler``
once the script is used up. Actions: ``Reply(status, headers, body)``, ``Drop()`` (close
the connection without answering) and ``Hang(seconds)`` (answer 200 after sleeping).
Assertion errors raised by ``handler`` are kept in ``errors`` and answered with 500, so a
test can check the request shape inside the handler and assert ``errors == []`` at the end.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the request arrived

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | dict[str, Any] | list[Any] = b""


@dataclass(frozen=True)
class Drop:
    pass


@dataclass(frozen=True)
class Hang:
    seconds: float


Action = Reply | Drop | Hang


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """Start with ``with Receiver(...) as r:``; ``r.url`` is its base URL."""

    def __init__(
        self,
        script: list[Action] | None = None,
        handler: Callable[[Received], Action] | None = None,
        port: int = 0,
    ) -> None:
        self.script = list(script or [])
        self.handler = handler or (lambda _: Reply(200, {}, b"ok"))
        self.received: list[Received] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                request = Received(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
                action = receiver._next(request)
                if isinstance(action, Drop):
                    self.close_connection = True
                    return
                if isinstance(action, Hang):
                    time.sleep(action.seconds)
                    action = Reply(200)
                raw = action.body
                data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
                self.send_response(action.status)
                headers = {"content-type": "application/json", **action.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

        class _Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that time out and hang up are expected here

        self.server = _Server(("127.0.0.1", port), _Handler)
        self.server.daemon_threads = True  # a hanging handler must not block shutdown
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _next(self, request: Received) -> Action:
        with self._lock:
            self.received.append(request)
            if self.script:
                return self.script.pop(0)
        try:
            return self.handler(request)
        except AssertionError as exc:
            self.errors.append(f"{request.path}: {exc}")
            return Reply(500, {}, b"request shape check failed")

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
