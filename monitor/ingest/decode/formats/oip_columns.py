"""The scanned path of ``oip`` JSON: :mod:`.oip_scan`'s buffers of a batch bound to one
model turned into columns, group by group (messages with the same tensors), with numpy
gathers; strings become a Python object once per distinct value (or message, for ids and
versions), and the rows carry indices into those tables (:class:`~monitor.ingest.decode.
coded.Coded`; the pipeline codes categories from the tables after pairing).

A group it does not take (a categorical tensor of numbers, a BYTES tensor for a numeric
feature, widths that do not fit the configured names, an over-long id) goes whole to the
orjson paths with the messages the scanner marked slow; they give the same columns or the
rejection with its reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from monitor.ingest.decode.coded import Coded, Values
from monitor.ingest.decode.columns import REQUEST, RESPONSE, WHOLE, ModelColumns
from monitor.ingest.decode.formats import oip_groups
from monitor.ingest.decode.formats import oip_scan as scan
from monitor.ingest.decode.formats.inference import MAX_KEY_CHARS
from monitor.ingest.decode.schema import DecodeSchema, ModelSchema

__all__ = ["scanned_oip_json"]

_BYTES = scan.DATATYPES.index("BYTES")


class _Irregular(Exception):
    """A group this path does not take."""


def scanned_oip_json(
    payloads: Sequence[bytes | None], kafka_ts: np.ndarray, schema: DecodeSchema
) -> tuple[list[ModelColumns], list[int]]:
    """Columns of the messages the scanner reads, and the indices of the others."""
    if schema.bound_model is None:
        raise ValueError("the scanned path reads topics bound to one model")
    ms = schema.models[schema.bound_model]
    present = payloads
    if None in payloads:
        present = [p if p is not None else b"" for p in payloads]
    lengths = np.fromiter(map(len, present), np.int64, len(present))  # type: ignore[arg-type]
    if lengths.max(initial=0) > schema.max_message_bytes:  # too large: read as empty (slow)
        present = [
            p if n <= schema.max_message_bytes else b""
            for p, n in zip(present, lengths.tolist(), strict=True)
        ]
        lengths[lengths > schema.max_message_bytes] = 0
    joined = b"".join(present)  # type: ignore[arg-type]
    ends = np.cumsum(lengths)
    buf = np.frombuffer(joined, np.uint8)
    res = scan.scan_bodies(buf, ends - lengths, ends, reuse=True)  # dropped on return
    group = np.empty(len(present), np.int64)
    first = np.empty(oip_groups.MAX_GROUPS, np.int64)
    count = oip_groups.group_messages(
        buf, res.status, res.is_request, res.n_tensors, res.tensor, group, first
    )
    slow = np.flatnonzero(group < 0).tolist()
    if count == 1:
        members_of = [np.flatnonzero(group == 0)]
    else:
        order = np.argsort(group, kind="stable")
        bounds = np.searchsorted(group[order], np.arange(count + 1))
        members_of = [order[bounds[g] : bounds[g + 1]] for g in range(count)]
    # one numeric array for every group (each fills its rows), so no concatenation copies it
    sizes = [int(res.tensor[m, 0, scan.T_ROWS].sum()) for m in members_of]
    numeric = np.empty((sum(sizes), len(ms.numeric_names)))
    out, used, start = [], [], 0
    for g, members in enumerate(members_of):
        f = int(first[g])
        t = res.tensor[f, : res.n_tensors[f]]
        names = tuple(joined[s:e] for s, e in t[:, :2].tolist())
        rows = slice(start, start + sizes[g])
        start += sizes[g]
        group_cols = _Group(res, joined, buf, members, ms, kafka_ts, numeric[rows])
        cols: ModelColumns | None
        try:
            if res.is_request[f]:
                cols = group_cols.requests(names, schema)
            else:
                cols = group_cols.responses(names, schema)
        except _Irregular:
            slow.extend(members.tolist())
            continue
        if cols is not None:
            out.append(replace(cols, numeric=cols.numeric[:, :0]))
            used.append(rows)
    if not out:
        return [], sorted(slow)
    if len(used) < len(sizes):  # a group went the orjson way: its rows are not ours
        numeric = np.concatenate([numeric[rows] for rows in used])
    return [replace(ModelColumns.concat(out), numeric=numeric)], sorted(slow)


class _Group:
    """The messages of one group and the gathers of their tensors' columns."""

    def __init__(
        self,
        res: scan.BodyScan,
        joined: bytes,
        buf: np.ndarray,
        members: np.ndarray,
        ms: ModelSchema,
        kafka_ts: np.ndarray,
        numeric: np.ndarray,
    ) -> None:
        self.res, self.joined, self.buf, self.members, self.ms = res, joined, buf, members, ms
        self.kafka_ts = kafka_ts
        #: The group's rows of the batch's numeric columns, filled by requests()/responses().
        self.numeric = numeric
        first = res.tensor[members[0]]
        nt = int(res.n_tensors[members[0]])
        self.dtypes = first[:nt, scan.T_DTYPE].tolist()
        self.widths = first[:nt, scan.T_WIDTH].tolist()
        self.counts = res.tensor[members, 0, scan.T_ROWS]
        self.total = int(self.counts.sum())
        #: Per row, its message's position in ``members``, and its row within the message.
        self.message = np.repeat(np.arange(len(members), dtype=np.int64), self.counts)
        run = np.repeat(np.cumsum(self.counts) - self.counts, self.counts)
        self.local = np.arange(self.total, dtype=np.int64) - run
        self._offsets = res.tensor[members, :nt, scan.T_OFFSET]

    def _at(self, j: int, c: int) -> np.ndarray:
        """Value indices of column ``c`` of tensor ``j``, all rows of the group."""
        at = self._offsets[:, j][self.message]
        at += self.local if self.widths[j] == 1 else self.local * self.widths[j] + c
        return at

    def _kinds(self, j: int) -> int:
        return int(np.bitwise_or.reduce(self.res.tensor[self.members, j, scan.T_KINDS]))

    def numbers(self, j: int, c: int) -> np.ndarray:
        if self.dtypes[j] == _BYTES:
            raise _Irregular
        return self.res.values[self._at(j, c)]  # type: ignore[no-any-return]

    def strings(self, j: int, c: int) -> tuple[list[str], np.ndarray]:
        """Distinct categories of column ``c`` of tensor ``j`` and each row's index in them."""
        if self.dtypes[j] != _BYTES:
            if self._kinds(j) != scan.K_BOOL:  # numbers as categories: the orjson paths
                raise _Irregular
            flags = self.numbers(j, c) != 0
            return ["false", "true"], flags.astype(np.int64)
        idx = self._at(j, c)
        res = self.res
        table = np.empty(1 << (2 * len(idx)).bit_length(), np.int64)
        inverse = np.empty(len(idx), np.int64)
        reps = np.empty(len(idx), np.int64)
        count = oip_groups.distinct_strings(
            self.buf, res.str_start, res.str_end, res.str_hash, idx, table, inverse, reps
        )
        joined = self.joined
        starts, ends = res.str_start[reps[:count]].tolist(), res.str_end[reps[:count]].tolist()
        return [joined[s:e].decode("ascii") for s, e in zip(starts, ends, strict=True)], inverse

    def texts(self, col: int) -> list[str | None]:
        """Per message, the id (``col`` 0) or model version (2)."""
        span = self.res.text_span[self.members, col : col + 2]
        if (span[:, 0] < 0).all():  # absent from every message (versions usually are)
            return [None] * len(self.members)
        spans = span.tolist()
        return [self.joined[s:e].decode("ascii") or None if s >= 0 else None for s, e in spans]

    def frame(
        self, categoricals: list[tuple[int, list[str], np.ndarray]], numeric: np.ndarray, half: int
    ) -> ModelColumns:
        """The group's columns: ids, keys, versions and categories as tables of the
        messages' and distinct values (:class:`~monitor.ingest.decode.coded.Coded`)."""
        ids = self.texts(0)
        if max(len(t) if t is not None else 0 for t in ids) > MAX_KEY_CHARS:
            raise _Irregular  # the per-message path rejects it
        message = self.message
        keys = Coded(ids, message, self.local)
        missing = np.full(self.total, -1, np.int64)
        categorical: list[Values] = [Coded([], missing) for _ in self.ms.categorical_names]
        for col, texts, inverse in categoricals:
            categorical[col] = Coded(texts, inverse)
        msgs = self.members[message]
        return ModelColumns(
            numeric, categorical, self.kafka_ts[msgs], keys, msgs, 0,
            Coded(self.texts(2), message), halves=np.full(self.total, half, dtype=np.int8),
            pair_keys=keys,
        )  # fmt: skip

    def requests(self, names: tuple[bytes, ...], schema: DecodeSchema) -> ModelColumns:
        ms = self.ms
        num_at = {n: j for j, n in enumerate(ms.numeric)}
        cat_at = {n: j for j, n in enumerate(ms.categorical)}
        numeric = self.numeric
        filled = np.zeros(numeric.shape[1], dtype=bool)
        column = np.full((len(names), max(self.widths)), -1, np.int64)
        categoricals = []
        unknown = 0
        for j, raw in enumerate(names):
            name = raw.decode("ascii")
            features = schema.tensors.get(name)
            if features is None and name not in num_at and name not in cat_at:
                unknown += self.total * self.widths[j]
                continue
            features = features or (name,)
            if self.widths[j] != len(features):
                raise _Irregular
            for c, feature in enumerate(features):
                if feature in num_at:
                    if self.dtypes[j] == _BYTES:
                        raise _Irregular
                    column[j, c] = num_at[feature]
                    filled[num_at[feature]] = True
                elif feature in cat_at:
                    categoricals.append((cat_at[feature], *self.strings(j, c)))
                else:
                    unknown += self.total
        oip_groups.gather_numbers(
            self.res.values, self._offsets, self.counts, np.array(self.widths, np.int64),
            column, numeric,
        )  # fmt: skip
        numeric[:, ~filled] = np.nan
        half = REQUEST if ms.prediction is not None else WHOLE
        cols = self.frame(categoricals, numeric, half)
        return ModelColumns(
            cols.numeric, cols.categorical, cols.ts, cols.ids, cols.msg_index, unknown,
            cols.versions, halves=cols.halves, pair_keys=cols.pair_keys,
        )  # fmt: skip

    def responses(self, names: tuple[bytes, ...], schema: DecodeSchema) -> ModelColumns | None:
        ms = self.ms
        if ms.prediction is None:
            return None
        texts = [n.decode("ascii") for n in names]
        wanted = schema.prediction_output
        j = 0 if wanted is None else texts.index(wanted) if wanted in texts else -1
        if j < 0:
            raise _Irregular
        numeric = self.numeric
        first = len(ms.numeric)
        numeric[:, :first] = np.nan
        categoricals = []
        if ms.prediction == "probabilities":
            if self.widths[j] != len(ms.classes):
                raise _Irregular
            for c in range(self.widths[j]):
                numeric[:, first + c] = self.numbers(j, c)
        elif self.widths[j] != 1:
            raise _Irregular
        elif ms.prediction == "numeric":
            numeric[:, first] = self.numbers(j, 0)
        else:
            categoricals.append((len(ms.categorical_names) - 1, *self.strings(j, 0)))
        return self.frame(categoricals, numeric, RESPONSE)
