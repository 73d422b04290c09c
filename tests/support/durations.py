"""Write ``tests/durations.json`` (seconds per test file, for :mod:`tests.support.schedule`)
from a pytest JUnit XML report: ``python -m tests.support.durations REPORT.xml``.

``make durations`` runs the suite with a report and calls this."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from tests.support.schedule import DURATIONS


def file_seconds(report: Path) -> dict[str, float]:
    """Seconds per test file (setup, call and teardown) in a JUnit report."""
    seconds: Counter[str] = Counter()
    for case in ET.parse(report).iter("testcase"):  # noqa: S314 - our own pytest report
        module = case.get("classname", "")
        parts = module.split(".")
        # classname is the module path, plus the class name for tests in a class
        while parts and not Path(*parts).with_suffix(".py").exists():
            parts.pop()
        if parts:
            seconds[str(Path(*parts).with_suffix(".py"))] += float(case.get("time") or 0)
    return {name: round(value, 1) for name, value in sorted(seconds.items())}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.support.durations REPORT.xml", file=sys.stderr)
        return 2
    DURATIONS.write_text(json.dumps(file_seconds(Path(argv[0])), indent=1) + "\n")
    print(f"wrote {DURATIONS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
