"""Reference profiles: binning policy, categorical vocabulary, JSON round trip and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitor.errors import ProfileError
from monitor.stats import (
    MAX_OTHER_VALUES,
    PROFILE_SCHEMA_VERSION,
    CategoryCodes,
    FeatureKind,
    ReferenceProfile,
    build_profile,
)

N, C = FeatureKind.NUMERIC, FeatureKind.CATEGORICAL


def naive_counts(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    v = values[~np.isnan(values)]
    return np.array(
        [np.sum(v < edges[0])]
        + [np.sum((v >= a) & (v < b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
        + [np.sum(v >= edges[-1])]
    )


def test_continuous_feature_gets_equal_frequency_bins():
    x = np.random.default_rng(0).normal(size=10_007)
    f = build_profile("m", {"x": x}, {"x": N}).features["x"]
    assert f.edges.size == 99 and np.all(np.diff(f.edges) > 0)
    assert f.counts.tolist() == naive_counts(f.edges, x).tolist()
    assert f.counts.max() <= 10_007 / 100 + 1 and f.counts.min() >= 10_007 / 100 - 1


def test_discrete_feature_collapses_edges_without_empty_bins():
    x = np.repeat([0.0, 1.0, 2.0, 7.0], [700, 200, 99, 1])
    f = build_profile("m", {"x": x}, {"x": N}).features["x"]
    # 7.0 holds 0.1% of the mass, below the 1% resolution: it shares the top bin with 2.0
    assert f.edges.tolist() == [1.0, 2.0]
    assert f.counts.tolist() == [700, 200, 100]
    assert (f.min, f.max) == (0.0, 7.0)


def test_constant_feature_is_a_single_bin_and_missing_is_counted():
    f = build_profile("m", {"x": [3.0, 3.0, None, float("nan"), 3.0, np.inf]}, {"x": N}).features[
        "x"
    ]
    assert f.edges.size == 0 and f.counts.tolist() == [4]
    assert (f.n, f.missing, f.min, f.max, f.std) == (4, 2, 3.0, 3.0, 0.0)


def test_categorical_vocabulary_ties_other_and_unseen():
    values = ["b"] * 3 + ["a"] * 3 + ["c"] * 2 + ["d", None, True, 7, 1.5]
    f = build_profile("m", {"c": values}, {"c": C}, max_categories=2).features["c"]
    assert f.categories == ("a", "b")  # tie at 3 broken by value
    assert f.other_values == frozenset({"c", "d", "true", "7", "1.5"})
    assert f.counts.tolist() == [3, 3, 6, 0]
    assert (f.n, f.missing) == (12, 1)
    assert f.encode(["a", "c", "never", None]).tolist() == [0, 2, 3, -1]


def test_a_code_table_built_from_the_profile_encodes_like_the_profile():
    # Decode turns categories into codes with a table taken from the reference profile;
    # both must give the statistics the very same codes.
    values = ["b"] * 3 + ["a"] * 3 + ["c"] * 2 + ["d", None, "true", "7"]
    f = build_profile("m", {"c": values}, {"c": C}, max_categories=2).features["c"]
    table = CategoryCodes(f.category_codes, f.unseen_code)
    live = ["a", "b", "c", "d", "7", "never", None, "", "A"]
    assert table.encode(live).tolist() == f.encode(live).tolist() == [0, 1, 2, 2, 2, 3, -1, 3, 3]
    assert table.encode([]).dtype == np.int64 and table.encode([]).size == 0


def test_other_values_are_capped():
    values = [f"v{i}" for i in range(MAX_OTHER_VALUES + 60)]
    f = build_profile("m", {"c": values}, {"c": C}, max_categories=50).features["c"]
    assert len(f.other_values) == MAX_OTHER_VALUES
    assert int(f.counts[-2]) == MAX_OTHER_VALUES + 10


def test_round_trip_is_bit_identical(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_t(1.5, 5000) * 1e-7 + 1 / 3
    x[::50] = np.nan
    p = build_profile(
        "m", {"x": x, "e": [], "c": ["x", "y", None]}, {"x": N, "e": N, "c": C}, source="ref.csv"
    )
    path = tmp_path / "p.json"
    p.save(path)
    q = ReferenceProfile.load(path)
    assert q == p
    assert q.features["x"].edges.tobytes() == p.features["x"].edges.tobytes()
    assert q.features["x"].mean.hex() == p.features["x"].mean.hex()
    assert q.numeric_names == ("x", "e") and q.categorical_names == ("c",)
    assert json.loads(path.read_text())["schema_version"] == PROFILE_SCHEMA_VERSION


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "not a driftmon profile"),
        ('{"schema_version": 99}', "schema version 99 is not supported"),
        ('{"schema_version": 1, "psi_buckets": 10}', "missing key 'features'"),
    ],
)
def test_corrupt_or_wrong_version_files_raise_profile_error(tmp_path, text, message):
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(ProfileError, match=message):
        ReferenceProfile.load(path)


def test_tampered_counts_are_rejected(tmp_path):
    p = build_profile("m", {"x": np.arange(100.0)}, {"x": N}, bins=4)
    path = tmp_path / "p.json"
    p.save(path)
    doc = json.loads(path.read_text())
    doc["features"][0]["counts"][0] += 1
    path.write_text(json.dumps(doc))
    with pytest.raises(ProfileError, match="do not add up"):
        ReferenceProfile.load(path)
    with pytest.raises(ProfileError, match="cannot read"):
        ReferenceProfile.load(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("counts", [1, True, 98], r"features\[0\]\.counts: expected a list of non-negative"),
        ("counts", [1, -1, 100], r"features\[0\]\.counts: expected a list of non-negative"),
        ("counts", [1, 2.0, 97], r"features\[0\]\.counts: expected a list of non-negative"),
        ("counts", "100", r"features\[0\]\.counts: expected a list of non-negative"),
        ("counts", [2**64, 0, 0], r"features\[0\]\.counts: .* \(at most 2\*\*63 - 1\)"),
        ("edges", [1.0, False], r"features\[0\]\.edges: expected a number, got False"),
        ("edges", [1.0, "2"], r"features\[0\]\.edges: expected a number, got '2'"),
        ("edges", [1.0, None], r"features\[0\]\.edges: expected a number, got None"),
        ("edges", [1.0, 10**400], r"features\[0\]\.edges: expected a number, got 1000"),
        ("edges", [1.0, "nan"], r"features\[0\]\.edges: must be finite and strictly increasing"),
        ("edges", [2, 1], r"features\[0\]\.edges: must be finite and strictly increasing"),
    ],
)
def test_each_bad_value_in_counts_or_edges_is_named(tmp_path, field, value, message):
    p = build_profile("m", {"x": np.arange(100.0)}, {"x": N}, bins=3)
    doc = _doc(p, tmp_path)
    doc["features"][0][field] = value
    if field == "edges" and isinstance(value, list):
        doc["features"][0]["counts"] = [100] + [0] * len(value)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProfileError, match=message):
        ReferenceProfile.load(path)


def test_integer_edges_and_counts_read_as_their_arrays(tmp_path):
    p = build_profile("m", {"x": np.arange(100.0)}, {"x": N}, bins=3)
    doc = _doc(p, tmp_path)
    doc["features"][0]["edges"] = [10, 20.5]
    doc["features"][0]["counts"] = [10, 11, 79]
    path = tmp_path / "ints.json"
    path.write_text(json.dumps(doc))
    q = ReferenceProfile.load(path).features["x"]
    assert q.edges.dtype == np.float64 and q.edges.tolist() == [10.0, 20.5]
    assert q.counts.dtype == np.int64 and q.counts.tolist() == [10, 11, 79]


def _doc(p, tmp_path):
    path = tmp_path / "good.json"
    p.save(path)
    return json.loads(path.read_text())
