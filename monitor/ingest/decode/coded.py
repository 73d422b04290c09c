"""A column of strings held as indices into a small table: what the model-server formats
hand over instead of one Python string per row.

A request of N rows gives N rows that share its id, version and a handful of category
values; :class:`Coded` keeps each of those once (``table``) and, per row, an index into
it, plus for ids the row number that makes ``<request id>:<row>``. Row operations are
numpy operations on the indices; strings are built only when something reads them (the
label join's ids, a capture's categories), and category codes come from the table alone
(:meth:`Coded.encode_with`).

The helpers (:func:`take`, :func:`cut`, :func:`keep`, :func:`concat`) take either a list
or a :class:`Coded`, so :class:`~monitor.ingest.decode.columns.ModelColumns` treats both
alike; a list stays a list (driftmon's own format never builds a :class:`Coded`).

    >>> ids = Coded(["r1", None, "r2"], np.array([0, 0, 1, 2]), np.array([0, 1, 0, 0]))
    >>> list(ids), ids[3], len(ids)
    (['r1:0', 'r1:1', None, 'r2:0'], 'r2:0', 4)
    >>> list(concat([take(ids, np.array([3, 0])), ["x"]]))
    ['r2:0', 'r1:0', 'x']
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import chain, compress
from typing import Any, overload

import numpy as np

__all__ = ["Coded", "Values", "concat", "cut", "keep", "take"]

#: ``:0``, ``:1``, ...: row suffixes made once (requests repeat them).
_SUFFIXES = np.array([f":{r}" for r in range(1024)], dtype=object)


class Coded(Sequence[str | None]):
    """Per row ``table[at[row]]`` (``None`` where the index is -1 or the entry is
    ``None``), followed by ``:<suffix[row]>`` when ``suffix`` is given, the value is not
    ``None`` and the suffix not -1."""

    __slots__ = ("at", "suffix", "table")
    __hash__ = None  # type: ignore[assignment]

    def __init__(
        self, table: Sequence[str | None], index: np.ndarray, suffix: np.ndarray | None = None
    ) -> None:
        self.table = table if type(table) is list else list(table)
        self.at = np.asarray(index, dtype=np.int64)
        self.suffix = None if suffix is None else np.asarray(suffix, dtype=np.int64)

    @classmethod
    def of(cls, values: Sequence[str | None]) -> Coded:
        """``values`` as a table of their own (one entry per row)."""
        if isinstance(values, Coded):
            return values
        return cls(values, np.arange(len(values), dtype=np.int64))

    def __len__(self) -> int:
        return int(self.at.shape[0])

    @overload
    def __getitem__(self, i: int) -> str | None: ...
    @overload
    def __getitem__(self, i: slice) -> Coded: ...
    def __getitem__(self, i: int | slice) -> str | None | Coded:
        if isinstance(i, slice):
            return Coded(self.table, self.at[i], None if self.suffix is None else self.suffix[i])
        k = int(self.at[i])
        value = self.table[k] if k >= 0 else None
        if value is None or self.suffix is None or self.suffix[i] < 0:
            return value
        return f"{value}:{int(self.suffix[i])}"

    def __iter__(self) -> Iterator[str | None]:
        return iter(self.tolist())

    def __contains__(self, value: object) -> bool:
        if value is None:
            return bool((self.at < 0).any()) or any(
                self.table[k] is None for k in np.unique(self.at[self.at >= 0]).tolist()
            )
        return value in self.tolist()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return self.tolist() == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Coded({self.tolist()!r})"

    def values(self) -> np.ndarray:
        """Per row the table's entry (an object array, ``None`` where missing)."""
        table = np.empty(len(self.table) + 1, dtype=object)
        table[: len(self.table)] = self.table  # the last entry, index -1, stays None
        return table[self.at]

    def tolist(self) -> list[str | None]:
        """The strings, one per row (built here: one vectorised pass)."""
        values = self.values()
        if self.suffix is None:
            out: list[str | None] = values.tolist()
            return out
        present = np.flatnonzero((values != None) & (self.suffix >= 0))  # noqa: E711
        suffix = self.suffix[present]
        if int(suffix.max(initial=0)) < len(_SUFFIXES):
            values[present] = values[present] + _SUFFIXES[suffix]
        else:
            values[present] = [
                f"{v}:{s}" for v, s in zip(values[present].tolist(), suffix.tolist(), strict=True)
            ]
        done: list[str | None] = values.tolist()
        return done

    def longest(self) -> int:
        """Length of the longest string (from the table, without building the rows)."""
        used = np.unique(self.at[self.at >= 0])
        lengths = [len(self.table[k] or "") for k in used.tolist() if self.table[k] is not None]
        if not lengths:
            return 0
        extra = 0 if self.suffix is None else 1 + len(str(int(self.suffix.max(initial=0))))
        return max(lengths) + extra

    def encode_with(self, encode: Callable[[Sequence[str | None]], np.ndarray]) -> np.ndarray:
        """Codes per row from ``encode`` (a table's encoder: -1 for ``None``), applied to
        the table only."""
        if self.suffix is not None:
            return encode(self.tolist())
        table = np.empty(len(self.table) + 1, dtype=np.int64)
        table[: len(self.table)] = encode(self.table)
        table[-1] = -1
        return table[self.at]

    def mapped(self, fn: Callable[[str], str]) -> Coded:
        """The same rows with ``fn`` applied to every table entry."""
        return Coded([None if v is None else fn(v) for v in self.table], self.at, self.suffix)


#: A column of strings as the columns hold it: a list, or :class:`Coded`.
Values = list[str | None] | Coded


def take(values: Sequence[Any], rows: np.ndarray) -> Any:
    """The rows at ``rows`` (int64 indices, in that order)."""
    if isinstance(values, Coded):
        suffix = None if values.suffix is None else values.suffix[rows]
        return Coded(values.table, values.at[rows], suffix)
    return [values[i] for i in rows.tolist()]


def cut(values: Sequence[Any], start: int, stop: int) -> Any:
    """Rows ``start:stop``."""
    return values[start:stop]


def keep(values: Sequence[Any], mask: np.ndarray) -> Any:
    """The rows where the boolean ``mask`` is true."""
    if isinstance(values, Coded):
        suffix = None if values.suffix is None else values.suffix[mask]
        return Coded(values.table, values.at[mask], suffix)
    return list(compress(values, mask.tolist()))


def concat(parts: Sequence[Sequence[Any]]) -> Any:
    """The parts one after the other: a list when every part is one, else :class:`Coded`."""
    if not any(isinstance(p, Coded) for p in parts):
        return list(chain.from_iterable(parts))
    coded = [p if isinstance(p, Coded) else Coded.of(p) for p in parts]
    suffixed = any(p.suffix is not None for p in coded)
    table: list[str | None] = []
    index = []
    for p in coded:
        offset = len(table)  # an empty table's rows are all -1: nothing to shift
        index.append(np.where(p.at >= 0, p.at + offset, -1) if offset and p.table else p.at)
        table += p.table
    suffix = None
    if suffixed:  # -1: a part without row numbers
        suffix = np.concatenate([_suffix(p) for p in coded])
    return Coded(table, np.concatenate(index) if index else np.empty(0, np.int64), suffix)


def _suffix(part: Coded) -> np.ndarray:
    if part.suffix is not None:
        return part.suffix
    return np.full(len(part), -1, np.int64)
