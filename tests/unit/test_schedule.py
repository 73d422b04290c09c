"""The order tests reach xdist's workers in (tests/support/schedule.py)."""

from __future__ import annotations

from tests.support.schedule import block_sizes, load_durations, schedule


def _file(test: str) -> str:
    return test.split("::")[0]


def _blocks(order: list[str], workers: int) -> list[list[str]]:
    out, start = [], 0
    for size in block_sizes(len(order), workers):
        out.append(order[start : start + size])
        start += size
    return out


def test_block_sizes_follow_worksteals_first_split() -> None:
    # worksteal sends len(pending) // workers_left to each idle worker in turn
    assert block_sizes(10, 3) == [3, 3, 4]
    assert block_sizes(1203, 3) == [401, 401, 401]
    assert block_sizes(2, 4) == [0, 0, 1, 1]


def test_the_longest_files_start_the_blocks_of_different_workers() -> None:
    tests = [f"slow{i}.py::t" for i in range(3)] + [f"fast.py::t{i}" for i in range(30)]
    seconds = {"slow0.py": 100.0, "slow1.py": 90.0, "slow2.py": 80.0, "fast.py": 3.0}
    order = schedule(tests, _file, seconds, 3)
    assert sorted(order) == sorted(tests)
    firsts = [block[0] for block in _blocks(order, 3)]
    assert sorted(firsts) == ["slow0.py::t", "slow1.py::t", "slow2.py::t"]


def test_a_file_stays_together_and_in_order_when_a_block_has_room() -> None:
    tests = [f"a.py::t{i}" for i in range(4)] + [f"b.py::t{i}" for i in range(4)]
    order = schedule(tests, _file, {"a.py": 1.0, "b.py": 5.0}, 2)
    assert _blocks(order, 2) == [tests[4:], tests[:4]]


def test_a_file_larger_than_any_block_is_split_in_order() -> None:
    tests = [f"big.py::t{i}" for i in range(9)] + ["x.py::t"]
    order = schedule(tests, _file, {"big.py": 9.0, "x.py": 50.0}, 2)
    assert sorted(order) == sorted(tests)
    blocks = _blocks(order, 2)
    assert blocks[0][0] == "x.py::t"
    parts = [[t for t in block if t.startswith("big")] for block in blocks]
    assert all(part == sorted(part, key=tests.index) for part in parts)  # the file's order
    assert sorted(len(part) for part in parts) == [4, 5]


def test_one_worker_runs_the_longest_files_first() -> None:
    tests = ["a.py::t", "b.py::t", "c.py::t"]
    order = schedule(tests, _file, {"a.py": 1.0, "b.py": 3.0, "c.py": 2.0}, 1)
    assert order == ["b.py::t", "c.py::t", "a.py::t"]


def test_the_committed_durations_are_read(tmp_path) -> None:
    assert load_durations()["tests/integration/test_cold_start.py"] > 0
    bad = tmp_path / "d.json"
    bad.write_text("[1, 2]")
    assert load_durations(bad) == {}
    assert load_durations(tmp_path / "missing.json") == {}
