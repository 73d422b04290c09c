"""Server processes started in their own session, and stopped with everything they spawned.

Orchestrators fork freely (Airflow's ``standalone`` runs an api-server, a scheduler with
LocalExecutor workers, a dag-processor and a triggerer). Each :class:`Spawned` process
starts a new session, so every descendant shares its session id and can be found in
``/proc`` even after re-parenting. SIGINT is reset to its default in the child: a test run
started in the background of a non-interactive shell inherits SIGINT as *ignored*, and
``airflow standalone`` only shuts its components down cleanly on SIGINT.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

# Resets SIGINT, then becomes the server (exec keeps the pid, so it stays session leader).
# Done in a tiny exec'd Python rather than ``preexec_fn``, which is unsafe with threads.
_WITH_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


def session_pids(sid: int) -> list[int]:
    """Live (non-zombie) processes whose session id is ``sid``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # Fields after the command name, which may itself contain spaces and parentheses.
        fields = stat.rsplit(")", 1)[1].split()
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            pids.append(int(entry.name))
    return pids


class Spawned:
    """One server process and its descendants; output goes to ``log``."""

    def __init__(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: Path
    ) -> None:
        self.argv = list(argv)
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WITH_DEFAULT_SIGINT, *self.argv],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.sid = self.proc.pid  # a session leader's sid is its pid
        self.stop_seconds: float | None = None
        self.leftovers: list[int] = []  # processes that needed SIGKILL at stop

    def running(self) -> bool:
        return self.proc.poll() is None

    def tail(self, chars: int = 4000) -> str:
        """The end of the process's output, for failure messages."""
        self._out.flush()
        return self.log.read_text(errors="replace")[-chars:]

    def _wait_all(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.proc.poll()  # reap the leader so it does not linger as a zombie
            if not session_pids(self.sid):
                return True
            time.sleep(0.1)
        return False

    def stop(self, sig: signal.Signals = signal.SIGINT, grace_seconds: float = 30.0) -> None:
        """Send ``sig`` to the server process only, and wait for its whole session to exit.

        Only the leader is signalled, as a supervisor would: ``airflow standalone`` stops
        its components itself on SIGINT, whereas SIGINT to the whole group (a terminal's
        Ctrl-C) leaves its idle LocalExecutor workers, and so the scheduler, running.
        Whatever is still alive after ``grace_seconds`` is SIGKILLed and listed in
        :attr:`leftovers`, so a test can assert that the clean shutdown really was clean.
        """
        started = time.monotonic()
        if self.running():
            self.proc.send_signal(sig)
        if not self._wait_all(grace_seconds):
            self.leftovers = session_pids(self.sid)
            for pid in self.leftovers:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self._wait_all(10.0)
        self.stop_seconds = time.monotonic() - started
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._out.close()
