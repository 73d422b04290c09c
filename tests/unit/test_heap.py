"""The collector settings of the consume loop (monitor/app/heap.py)."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from collections.abc import Iterator

import pytest

from monitor.app.heap import YOUNG_THRESHOLD, settle_after_start


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.mark.usefixtures("restore_gc")
def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    older = gc.get_threshold()[1:]
    settle_after_start()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    assert gc.get_threshold()[1:] == older


@pytest.mark.usefixtures("restore_gc")
def test_cycles_made_after_start_up_are_still_collected() -> None:
    settle_after_start()
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    gc.collect()
    assert gone() is None


@pytest.mark.usefixtures("restore_gc")
def test_a_higher_threshold_set_before_is_kept() -> None:
    gc.set_threshold(YOUNG_THRESHOLD * 2, 10, 10)
    settle_after_start()
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD * 2


def test_importing_the_package_freezes_its_import_heap_and_leaves_collection_on() -> None:
    """The package's import runs without collections (numba's and scipy's objects would
    be walked by each), freezes what it built, and restores the collector as it was."""
    probe = (
        "import gc, sys\n"
        "on = sys.argv[1] == 'on'\n"
        "gc.enable() if on else gc.disable()\n"
        "frozen = gc.get_freeze_count()\n"
        "import monitor\n"
        "print(gc.isenabled(), gc.get_freeze_count() - frozen)\n"
    )
    for state, expected in (("on", "True"), ("off", "False")):
        done = subprocess.run(
            [sys.executable, "-c", probe, state], capture_output=True, text=True, check=True
        )
        enabled, frozen = done.stdout.split()
        assert enabled == expected
        assert int(frozen) > 10_000  # numba and numpy alone make far more
