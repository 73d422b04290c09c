"""Replay's file reader: every non-empty line once, in order, whatever the block boundaries
and read sizes."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.app.replay import iter_chunks, iter_numbered_chunks


@settings(max_examples=50, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=60),
    crlf=st.booleans(),
    size=st.integers(min_value=1, max_value=7),
    read_bytes=st.integers(min_value=1, max_value=64),
)
def test_lines_survive_chunking(
    tmp_path_factory, lines: list[bytes], crlf: bool, size: int, read_bytes: int
) -> None:
    path: Path = tmp_path_factory.mktemp("replay") / "events.jsonl"
    end = b"\r\n" if crlf else b"\n"
    path.write_bytes(end.join(lines))
    chunks = list(iter_chunks(path, size))
    assert all(0 < len(c) <= size for c in chunks)
    expected = [line.rstrip(b"\r") for line in lines if line.strip()]
    assert [line for c in chunks for line in c] == expected
    # Reads as small as a byte cut lines (and CRLFs) anywhere.
    numbered = list(iter_numbered_chunks(path, size, read_bytes))
    assert [c.tolist() for c, _ in numbered] == chunks
    kept = [i + 1 for i, line in enumerate(lines) if line.strip()]
    assert [int(n) for _, numbers in numbered for n in numbers] == kept
