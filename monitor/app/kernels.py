"""Which Numba kernels a config needs, and when they compile.

A cold start used to compile every kernel (~45 s on a busy 2-core machine) before the
daemon was ready. Now:

* before ready, only what every batch needs: binning (for the configured ``bins``) and the
  drift statistics, the calibration's statistics when a model has a false-alarm budget,
  the sequential detectors when a model runs ``cusum``/``bin_cusum`` (by default with a
  budget), and the performance kernels when a model has a ``performance`` section, and the OIP JSON
  body scanner (:mod:`monitor.ingest.decode.formats.oip_scan`, about 17 s cold on a busy
  2-core machine, well under a second from the cache) when a topic bound to a model reads
  ``format: oip``, the only path that calls it (``kserve`` bodies are read per message);
* the JSON scanner (more than half of the cold compile) in a child process started first,
  so it compiles on another core meanwhile, while decode takes the object paths
  (:mod:`monitor.ingest.decode.scanner_gate`); the daemon loads it from the cache the
  child wrote and switches to it. On a warm cache it is loaded at once. A child, not a
  thread: Numba compiles under one global lock and mostly in Python, so a thread would
  stall the consume loop and any other kernel compiled meanwhile (the budget
  calibration's).

Progress is logged step by step and readable as :attr:`KernelWarmup.progress` (the demo
shows it). Whether a step compiled or loaded comes from Numba's ``numba:compile`` event,
which fires only on a cache miss.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from numba.core import config as numba_config
from numba.core import event

from monitor import _numba_cache
from monitor.config import Config, ModelConfig
from monitor.ingest.decode import scanner_gate
from monitor.ingest.decode.formats.oip_groups import warmup as oip_scan_warmup
from monitor.ingest.decode.scanner import warmup as scanner_warmup
from monitor.performance.warmup import warmup as performance_warmup
from monitor.scaleout.warmup import warmup as scaleout_warmup
from monitor.stats import SEQUENTIAL_TESTS
from monitor.stats.binning import MIN_WIDTH, bins_width
from monitor.stats.warmup import warmup as stats_warmup
from monitor.stats.warmup import warmup_calibration as stats_warmup_calibration
from monitor.stats.warmup import warmup_sequential as stats_warmup_sequential

__all__ = [
    "BackgroundScanner",
    "KernelWarmup",
    "WarmupProgress",
    "compile_notice",
    "scanner_aside",
    "warm_all",
]

logger = logging.getLogger(__name__)

#: The scanner is a speed-up, not a need: its child runs at a lower priority (nice
#: ``SCANNER_NICE``) so that on a busy machine the kernels the daemon waits for get the
#: CPU first.
SCANNER_NICE = 10
_SCANNER_CHILD = (
    f"import os; os.nice({SCANNER_NICE}); "
    "from monitor.ingest.decode.scanner import warmup; warmup()"
)


def warm_all() -> float:
    """Compile (or load) every kernel, as ``make warm`` and images do: the JSON scanner,
    when uncached, in a child process on another core meanwhile (more than half of the
    compile), then loaded here."""
    started = time.perf_counter()
    child = None
    if not cast(Any, numba_config).DISABLE_JIT and not _scanner_cached():
        child = subprocess.Popen([sys.executable, "-c", _SCANNER_CHILD])  # noqa: S603
    try:
        stats_warmup()
        stats_warmup_sequential()
        performance_warmup()
        oip_scan_warmup()
        scaleout_warmup()
    finally:
        if child is not None:
            child.wait()
    scanner_warmup()  # loads what the child cached (compiles here if it could not)
    return time.perf_counter() - started


def _runs_sequential(model: ModelConfig) -> bool:
    """Whether a model runs a sequential test (on by default with a budget, or named)."""
    names = [*model.model_tests, *(t for f in model.features.values() for t in f.tests or ())]
    return any(t in SEQUENTIAL_TESTS for t in names)


@dataclass
class WarmupProgress:
    """Where the warm-up before ready is: ``done`` of ``total`` steps, ``step`` running."""

    step: str = ""
    done: int = 0
    total: int = 0
    compiling: bool = False  # something missed the cache: a first run
    started: float = 0.0  # time.monotonic()
    finished: bool = False


class _CompileWatch(event.Listener):
    """Calls ``on_first`` at the first cache miss (a kernel starting to compile)."""

    def __init__(self, on_first: Callable[[], None]) -> None:
        self._on_first = on_first
        self.compiled = 0

    def on_start(self, ev: event.Event) -> None:
        self.compiled += 1
        if self.compiled == 1:
            self._on_first()

    def on_end(self, ev: event.Event) -> None:
        return


def _scanner_cached() -> bool:
    """True when the cache holds the scanner's kernel for this source (loads in ~0.1 s)."""
    from monitor.ingest.decode import scanner

    try:
        # Numba internals: the index of the kernel's cache file, empty if stale or absent.
        kernel: Any = scanner._scan  # noqa: SLF001
        return bool(kernel._cache._cache_file._load_index())  # noqa: SLF001
    except Exception:  # unknown means "not cached"
        return False


class BackgroundScanner:
    """The JSON scanner: loaded at once when cached, else compiled in a child process while
    decode takes the object paths, then loaded and switched to."""

    def __init__(self) -> None:
        self._child: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if cast(Any, numba_config).DISABLE_JIT or _scanner_cached():
            scanner_warmup()
            return
        scanner_gate.close()
        logger.info("json scanner compiling in the background; decoding without it meanwhile")
        self._thread = threading.Thread(
            target=self._background, name="driftmon-scanner-compile", daemon=True
        )
        self._thread.start()

    def _background(self) -> None:
        started = time.perf_counter()
        try:
            self._child = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed script
                [sys.executable, "-c", _SCANNER_CHILD],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self._child.wait()
            if self._stopping.is_set():
                return
            # Loads what the child cached; compiles here if it could not write the cache.
            scanner_warmup()
        except Exception:  # the object paths keep decoding; never take the daemon down
            logger.exception("json scanner failed to compile; decoding without it")
            return
        scanner_gate.open_()
        logger.info(
            "json scanner ready",
            extra={"duration_seconds": round(time.perf_counter() - started, 3)},
        )

    def stop(self) -> None:
        """End a compile still running (its child process); decode is back to the default."""
        self._stopping.set()
        if self._thread is not None:
            while self._thread.is_alive() and self._child is None:
                self._thread.join(0.01)
        child = self._child
        if child is not None and child.poll() is None:
            child.terminate()
            child.wait(5)
        scanner_gate.open_()


def _say_compiling() -> None:
    logger.info(
        "compiling numba kernels (first run only; cached for the next start)",
        extra={"cache_dir": str(_numba_cache.cache_dir())},
    )


@contextmanager
def compile_notice() -> Iterator[None]:
    """For a command that compiles its kernels on first use (``replay``, ``baseline``):
    say so once, at the first kernel that is not in the cache, as the daemon does."""
    with event.install_listener("numba:compile", _CompileWatch(_say_compiling)):
        yield


@contextmanager
def scanner_aside() -> Iterator[None]:
    """For a command that decodes a file: start without waiting for the scanner to compile.

    A short replay never pays for it; a long one switches to it once it is ready. Kernels
    compiled in this process meanwhile are announced (:func:`compile_notice`).
    """
    scanner = BackgroundScanner()
    scanner.start()
    try:
        with compile_notice():
            yield
    finally:
        scanner.stop()


class KernelWarmup:
    """The kernels of one config: :meth:`start_background` (the scanner, aside), then
    :meth:`run` (what is needed before ready)."""

    def __init__(self, config: Config) -> None:
        models = config.models.values()
        # Binning for the edge widths of the configured bins (one for up to 128 bins).
        widths = sorted({bins_width(m.bins) for m in models} or {MIN_WIDTH})
        self.steps: list[tuple[str, Callable[[], object]]] = [
            ("drift statistics", partial(stats_warmup, widths, calibration=False))
        ]
        if any(m.alert.has_budget for m in models):
            self.steps.append(("budget calibration", stats_warmup_calibration))
        if any(_runs_sequential(m) for m in models):
            self.steps.append(("sequential detectors", partial(stats_warmup_sequential, widths)))
        if any(m.performance is not None for m in models):
            self.steps.append(("performance metrics", performance_warmup))
        topics = config.kafka.topics if config.kafka is not None else []
        if config.kafka is not None and config.kafka.scale_out.enabled:
            self.steps.append(("scale-out stage 2", scaleout_warmup))
        if any(t.format == "oip" and t.model is not None for t in topics):
            self.steps.append(("OIP JSON scanner", oip_scan_warmup))
        self.progress = WarmupProgress(total=len(self.steps))
        self.scanner = BackgroundScanner()

    def _first_compile(self) -> None:
        self.progress.compiling = True
        _say_compiling()

    def run(self) -> float:
        """Compile or load the kernels needed before ready; the seconds it took."""
        self.progress.started = time.monotonic()
        watch = _CompileWatch(self._first_compile)
        with event.install_listener("numba:compile", watch):
            for i, (name, warm) in enumerate(self.steps):
                self.progress.step = name
                step_started = time.perf_counter()
                warm()
                self.progress.done = i + 1
                logger.info(
                    f"numba kernels: {name} ready ({i + 1}/{len(self.steps)})",
                    extra={"duration_seconds": round(time.perf_counter() - step_started, 3)},
                )
        self.progress.finished = True
        return time.monotonic() - self.progress.started

    def start_background(self) -> None:
        """The scanner (see :class:`BackgroundScanner`); call it before :meth:`run`."""
        self.scanner.start()

    def stop(self) -> None:
        """End a background compile still running."""
        self.scanner.stop()
