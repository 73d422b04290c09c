"""Reference profiles: what a model's features looked like at training (or capture) time.

A numeric feature keeps equal-frequency bin edges taken from the reference sample and the
reference count of every bin; a categorical feature keeps its vocabulary and counts. Profiles
are saved as versioned JSON and load back bit-identical (floats are written with Python's
shortest round-tripping ``repr``; non-finite floats as the strings ``"nan"``, ``"inf"``,
``"-inf"``).

Binning policy (numeric)
------------------------
With ``bins = b``, the candidate edges are the reference quantiles ``Q(i / b)``,
``i = 1 .. b-1``, taken with the inverted-CDF definition (Hyndman and Fan, 1996, definition
1), so every edge is an observed value. Duplicate edges are collapsed and edges equal to
the minimum dropped, which gives ``k + 1 <= b`` bins ``(-inf, e0), [e0, e1), ...,
[e_{k-1}, +inf)``, the two outer ones open-ended, and no empty reference bin: each interior
bin contains its own left edge, and the first contains the minimum. A continuous feature
gets ``b`` bins of ``n/b`` (to within one value) reference values each; a discrete one gets
one bin per distinct value at most; a constant one gets a single bin. Edges are taken from
finite values; ``+-inf`` is counted in the outer bins and NaN is missing.

Categorical policy
------------------
The vocabulary is the ``max_categories`` most frequent values, ties broken by value. Other
reference values are pooled as ``__other__``; values never seen in the reference are
counted as ``__unseen__`` (0 in the reference). ``other_values`` remembers at most
``MAX_OTHER_VALUES`` pooled values (the most frequent); on a feature with more distinct
values than that, live occurrences of the forgotten rare values count as ``__unseen__``.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from itertools import repeat
from types import MappingProxyType
from typing import Any

import numpy as np

from monitor.errors import ProfileError
from monitor.stats.profile_values import _float_list, _get, _int_list, _j2f

PROFILE_SCHEMA_VERSION = 1
OTHER = "__other__"
UNSEEN = "__unseen__"
MAX_OTHER_VALUES = 10_000
MAX_BINS = 4096


class FeatureKind(StrEnum):
    """How a feature's values are compared."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


@dataclass(frozen=True, eq=False)
class NumericProfile:
    """Reference distribution of one numeric feature over ``len(edges) + 1`` bins."""

    name: str
    edges: np.ndarray
    counts: np.ndarray
    n: int
    missing: int
    min: float
    max: float
    mean: float
    std: float

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NumericProfile):
            return NotImplemented
        return (
            self.name == other.name
            and _same_array(self.edges, other.edges)
            and _same_array(self.counts, other.counts)
            and (self.n, self.missing) == (other.n, other.missing)
            and all(
                _same_float(a, b)
                for a, b in (
                    (self.min, other.min),
                    (self.max, other.max),
                    (self.mean, other.mean),
                    (self.std, other.std),
                )
            )
        )

    def bin_index(self, values: np.ndarray) -> np.ndarray:
        """Bin of each value (``searchsorted(edges, x, side="right")``), ``-1`` for NaN."""
        x = np.asarray(values, dtype=np.float64)
        idx = np.searchsorted(self.edges, x, side="right").astype(np.int64)
        idx[np.isnan(x)] = -1
        return idx


@dataclass(frozen=True, eq=False)
class CategoryCodes:
    """Category -> code table of one categorical column, and the encoder every caller uses.

    The one home of category encoding: :meth:`CategoricalProfile.encode` and decode's
    category codes both go through :meth:`encode`, so codes agree wherever they are made.
    Compared by identity (decode caches its scanners by schema, this table included).
    """

    codes: Mapping[str, int]
    #: Code of a category not in ``codes``.
    unseen: int

    @cached_property
    def _with_missing(self) -> dict[str | None, int]:
        table: dict[str | None, int] = {None: -1}
        table.update(self.codes)
        return table

    def encode(self, values: Sequence[str | None]) -> np.ndarray:
        """Codes of ``values``: ``codes`` where listed, ``unseen`` otherwise, -1 for missing."""
        # One C-level pass of dict lookups; missing (None) is in the table as -1.
        codes = map(self._with_missing.get, values, repeat(self.unseen))
        return np.fromiter(codes, dtype=np.int64, count=len(values))


@dataclass(frozen=True, eq=False)
class CategoricalProfile:
    """Reference distribution of one categorical feature.

    ``counts`` has ``K + 2`` entries: the vocabulary, ``__other__``, ``__unseen__`` (0).
    """

    name: str
    categories: tuple[str, ...]
    other_values: frozenset[str]
    counts: np.ndarray
    n: int
    missing: int

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CategoricalProfile):
            return NotImplemented
        return (
            (self.name, self.categories, self.other_values, self.n, self.missing)
            == (other.name, other.categories, other.other_values, other.n, other.missing)
        ) and _same_array(self.counts, other.counts)

    @cached_property
    def _lookup(self) -> dict[str, int]:
        k = len(self.categories)
        table = dict.fromkeys(self.other_values, k)
        table.update((c, i) for i, c in enumerate(self.categories))
        return table

    @property
    def category_codes(self) -> Mapping[str, int]:
        """Category -> code as :meth:`encode` gives it (vocabulary and ``__other__`` values)."""
        return MappingProxyType(self._lookup)

    @property
    def unseen_code(self) -> int:
        """The code :meth:`encode` gives a category the reference never saw."""
        return len(self.categories) + 1

    @cached_property
    def _encoder(self) -> CategoryCodes:
        return CategoryCodes(self._lookup, self.unseen_code)

    def encode(self, values: Sequence[str | None]) -> np.ndarray:
        """Codes ``0..K-1`` vocabulary, ``K`` other, ``K+1`` unseen, ``-1`` missing."""
        return self._encoder.encode(values)


AnyFeatureProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class ReferenceProfile:
    """All monitored features of one model, in their configured order."""

    model: str
    features: Mapping[str, AnyFeatureProfile]
    created_at: str
    source: str
    psi_buckets: int
    schema_version: int = PROFILE_SCHEMA_VERSION
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def numeric_names(self) -> tuple[str, ...]:
        return tuple(n for n, f in self.features.items() if isinstance(f, NumericProfile))

    @property
    def categorical_names(self) -> tuple[str, ...]:
        return tuple(n for n, f in self.features.items() if isinstance(f, CategoricalProfile))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the profile as JSON (atomically: temporary file, then rename)."""
        text = json.dumps(profile_to_json(self), indent=1, allow_nan=False)
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.write("\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReferenceProfile:
        """Read a profile written by :meth:`save`; raise ``ProfileError`` if it is unusable."""
        where = os.fspath(path)
        try:
            with open(where, encoding="utf-8") as fh:
                data = json.load(fh)
        except OSError as exc:
            raise ProfileError(f"cannot read profile {where}: {exc.strerror}") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProfileError(
                f"profile {where} is not valid JSON ({exc}); rebuild it with `driftmon baseline`"
            ) from exc
        return profile_from_json(data, where)


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


# ---------------------------------------------------------------------------- building


def build_profile(
    model: str,
    columns: Mapping[str, np.ndarray | Sequence[object]],
    kinds: Mapping[str, FeatureKind],
    *,
    bins: int = 100,
    max_categories: int = 50,
    psi_buckets: int = 10,
    source: str = "arrays",
) -> ReferenceProfile:
    """Build a reference profile from one column of reference values per feature.

    Features are kept in the order of ``kinds``. Numeric columns may hold NaN or ``None``
    (missing); categorical columns hold ``str`` or ``None`` (other values are normalised as
    the decoder does: booleans to ``"true"``/``"false"``, integers with ``str``, floats
    with ``repr``, NaN as missing).

    Examples
    --------
    >>> import numpy as np
    >>> p = build_profile("m", {"x": np.arange(1000.0), "c": ["a", "b"] * 500},
    ...                   {"x": FeatureKind.NUMERIC, "c": FeatureKind.CATEGORICAL}, bins=10)
    >>> p.features["x"].edges[:3].tolist()  # Q(0.1) = 99: the 100th smallest value
    [99.0, 199.0, 299.0]
    >>> p.features["x"].counts.tolist()  # n/b to within one value
    [99, 100, 100, 100, 100, 100, 100, 100, 100, 101]
    >>> p.features["c"].categories
    ('a', 'b')
    """
    if not 1 <= bins <= MAX_BINS:
        raise ValueError(f"bins must be in 1..{MAX_BINS}, got {bins}")
    if max_categories < 1 or psi_buckets < 1:
        raise ValueError("max_categories and psi_buckets must be >= 1")
    features: dict[str, AnyFeatureProfile] = {}
    for name, kind in kinds.items():
        if name not in columns:
            raise ValueError(f"no reference column for feature {name!r}")
        if FeatureKind(kind) is FeatureKind.NUMERIC:
            features[name] = _numeric_profile(name, columns[name], bins)
        else:
            features[name] = _categorical_profile(name, columns[name], max_categories)
    return ReferenceProfile(
        model=model,
        features=features,
        created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        source=source,
        psi_buckets=psi_buckets,
    )


def _as_float_array(values: np.ndarray | Sequence[object]) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == object:
        arr = np.array([np.nan if v is None else v for v in arr.ravel()], dtype=np.float64)
    return np.ascontiguousarray(arr, dtype=np.float64).ravel()


def equal_frequency_edges(finite: np.ndarray, bins: int) -> np.ndarray:
    """Collapsed equal-frequency edges of sorted or unsorted finite values (see module doc)."""
    if finite.size == 0 or bins == 1:
        return np.empty(0, dtype=np.float64)
    q = np.arange(1, bins, dtype=np.float64) / bins
    cand = np.unique(np.quantile(finite, q, method="inverted_cdf"))
    return np.ascontiguousarray(cand[cand > finite.min()], dtype=np.float64)


def _numeric_profile(name: str, values: np.ndarray | Sequence[object], bins: int) -> NumericProfile:
    x = _as_float_array(values)
    present = x[~np.isnan(x)]
    finite = present[np.isfinite(present)]
    edges = equal_frequency_edges(finite, bins)
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=edges.size + 1)
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        mean, std = float(finite.mean()), float(finite.std())
    else:
        lo = hi = mean = std = math.nan
    return NumericProfile(
        name=name,
        edges=edges,
        counts=counts.astype(np.int64),
        n=int(present.size),
        missing=int(x.size - present.size),
        min=lo,
        max=hi,
        mean=mean,
        std=std,
    )


def normalise_category(value: object) -> str | None:
    """The decoder's string form of a categorical value; ``None`` for missing."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else repr(float(value))
    return str(value)


def _categorical_profile(
    name: str, values: np.ndarray | Sequence[object], max_categories: int
) -> CategoricalProfile:
    normalised = [normalise_category(v) for v in values]
    freq = Counter(v for v in normalised if v is not None)
    ranked = sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))
    vocab = ranked[:max_categories]
    others = ranked[max_categories:]
    counts = np.zeros(len(vocab) + 2, dtype=np.int64)
    counts[: len(vocab)] = [c for _, c in vocab]
    counts[len(vocab)] = sum(c for _, c in others)
    n = sum(freq.values())
    return CategoricalProfile(
        name=name,
        categories=tuple(v for v, _ in vocab),
        other_values=frozenset(v for v, _ in others[:MAX_OTHER_VALUES]),
        counts=counts,
        n=n,
        missing=len(normalised) - n,
    )


# ---------------------------------------------------------------------------- JSON


def _f2j(x: float) -> float | str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x  # json writes repr(x), the shortest string that reads back to the same double


def profile_to_json(profile: ReferenceProfile) -> dict[str, Any]:
    """The profile as the JSON document :meth:`ReferenceProfile.save` writes.

    :func:`profile_from_json` reads it back bit-identically (used by checkpoints).
    """
    feats: list[dict[str, Any]] = []
    for f in profile.features.values():
        if isinstance(f, NumericProfile):
            feats.append(
                {
                    "name": f.name,
                    "kind": FeatureKind.NUMERIC.value,
                    "edges": [_f2j(float(e)) for e in f.edges],
                    "counts": [int(c) for c in f.counts],
                    "n": f.n,
                    "missing": f.missing,
                    "min": _f2j(f.min),
                    "max": _f2j(f.max),
                    "mean": _f2j(f.mean),
                    "std": _f2j(f.std),
                }
            )
        else:
            feats.append(
                {
                    "name": f.name,
                    "kind": FeatureKind.CATEGORICAL.value,
                    "categories": list(f.categories),
                    "other_values": sorted(f.other_values),
                    "counts": [int(c) for c in f.counts],
                    "n": f.n,
                    "missing": f.missing,
                }
            )
    return {
        "schema_version": profile.schema_version,
        "model": profile.model,
        "created_at": profile.created_at,
        "source": profile.source,
        "psi_buckets": profile.psi_buckets,
        "features": feats,
    }


def profile_from_json(data: Any, where: str = "profile") -> ReferenceProfile:
    """Validate and convert the JSON document of a profile."""
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: not a driftmon profile (expected a JSON object)")
    version = data.get("schema_version")
    if version != PROFILE_SCHEMA_VERSION:
        raise ProfileError(
            f"{where}: profile schema version {version!r} is not supported (this driftmon "
            f"reads version {PROFILE_SCHEMA_VERSION}); rebuild it with `driftmon baseline`"
        )
    buckets = _get(data, "psi_buckets", int, where)
    features: dict[str, AnyFeatureProfile] = {}
    for i, fd in enumerate(_get(data, "features", list, where)):
        fw = f"{where}: features[{i}]"
        if not isinstance(fd, dict):
            raise ProfileError(f"{fw}: expected an object")
        name = _get(fd, "name", str, fw)
        kind = _get(fd, "kind", str, fw)
        counts = _int_list(fd.get("counts"), f"{fw}.counts")
        n = _get(fd, "n", int, fw)
        missing = _get(fd, "missing", int, fw)
        if int(counts.sum()) != n or missing < 0:
            raise ProfileError(f"{fw}: counts do not add up to n={n}")
        if kind == FeatureKind.NUMERIC:
            raw = _get(fd, "edges", list, fw)
            edges = _float_list(raw, f"{fw}.edges")
            if edges.size and not (np.all(np.isfinite(edges)) and np.all(np.diff(edges) > 0)):
                raise ProfileError(f"{fw}.edges: must be finite and strictly increasing")
            if counts.size != edges.size + 1 or edges.size > MAX_BINS:
                raise ProfileError(f"{fw}: expected len(edges) + 1 counts")
            features[name] = NumericProfile(
                name, edges, counts, n, missing,
                *(_j2f(_get(fd, k, (int, float, str), fw), f"{fw}.{k}")
                  for k in ("min", "max", "mean", "std")),
            )  # fmt: skip
        elif kind == FeatureKind.CATEGORICAL:
            cats = _get(fd, "categories", list, fw)
            others = _get(fd, "other_values", list, fw)
            if not all(isinstance(c, str) for c in cats + others) or len(set(cats)) != len(cats):
                raise ProfileError(f"{fw}: categories must be distinct strings")
            if counts.size != len(cats) + 2:
                raise ProfileError(f"{fw}: expected len(categories) + 2 counts")
            features[name] = CategoricalProfile(
                name, tuple(cats), frozenset(others), counts, n, missing
            )
        else:
            raise ProfileError(f"{fw}: unknown feature kind {kind!r}")
        if name in features and len(features) != i + 1:
            raise ProfileError(f"{fw}: duplicate feature name {name!r}")
    return ReferenceProfile(
        model=_get(data, "model", str, where),
        features=features,
        created_at=_get(data, "created_at", str, where),
        source=_get(data, "source", str, where),
        psi_buckets=buckets,
        schema_version=version,
    )
