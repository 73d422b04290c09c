"""Loopback ports and process lifetimes for tests that start real servers."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    The port is released before returning, so another process could take it first; every
    server started from it binds at once and a clash fails loudly.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes], grace_seconds: float = 3.0) -> None:
    """SIGTERM, wait ``grace_seconds``, then SIGKILL (Tansu can take 7 s with clients)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_http_ready(
    proc: subprocess.Popen[bytes], url: str, timeout: float, name: str, log: Callable[[], str]
) -> None:
    """Poll ``url`` until it answers 200; ``RuntimeError`` (with ``log()``) if ``proc`` exits
    first, ``TimeoutError`` after ``timeout`` seconds. The caller stops ``proc`` then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{log()}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{name} not ready after {timeout} s:\n{log()}")
