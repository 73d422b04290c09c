"""The `versions` section of a model: defaults, every error with its key path and hint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import VersionsConfig, load_config, validate_config
from tests.unit.test_config import cfg, one_problem


def test_defaults() -> None:
    versions = validate_config(cfg(**{"models.fraud.versions": {}})).models["fraud"].versions
    assert versions == VersionsConfig(
        references={}, on_new_version="capture", capture_events=10_000, max_versions=16
    )
    assert validate_config(cfg()).models["fraud"].versions is None


def test_listed_versions_and_numbers_as_names() -> None:
    data = cfg(**{"models.fraud.versions": {"references": {"v1": "a.json", 2: "b.json"}}})
    assert validate_config(data).models["fraud"].versions.references == {  # type: ignore[union-attr]
        "v1": "a.json",
        "2": "b.json",
    }


@pytest.mark.parametrize(
    ("versions", "path", "message", "hint"),
    [
        ({"on_new_version": "alarm"}, "on_new_version", "'capture', 'fallback' or 'ignore'", ""),
        ({"capture_events": 5}, "capture_events", "greater than or equal to 100", ""),
        ({"max_versions": 1}, "max_versions", "greater than or equal to 2", ""),
        ({"refs": {}}, "refs", "unknown key 'refs'", "valid keys here: references"),
        ({"references": {"": "a.json"}}, "references.", "version '' is not allowed", "1 to 128"),
        ({"references": {"v1": None}}, "references.v1", "valid string", ""),
        (
            {"max_versions": 2, "references": {"a": "a.json", "b": "b.json"}},
            "max_versions",
            "do not fit in max_versions 2",
            "raise max_versions to at least 3",
        ),
    ],
)
def test_errors_name_the_key_path(
    versions: dict[str, Any], path: str, message: str, hint: str
) -> None:
    got_path, got_message, got_hint = one_problem(cfg(**{"models.fraud.versions": versions}))
    assert got_path == f"models.fraud.versions.{path}"
    assert message in got_message
    assert hint in got_hint


def test_capture_needs_the_features_listed() -> None:
    data = cfg(**{"models.fraud.versions": {}, "models.fraud.reference": "fraud.json"})
    del data["models"]["fraud"]["features"]
    path, message, hint = one_problem(data)
    assert path == "models.fraud.versions.on_new_version"
    assert "features listed" in message and "fallback" in hint
    data["models"]["fraud"]["versions"] = {"on_new_version": "fallback"}
    assert validate_config(data).models["fraud"].versions is not None


def write(tmp_path: Path, versions: dict[str, Any]) -> Path:
    path = tmp_path / "driftmon.yaml"
    path.write_text(yaml.safe_dump(cfg(**{"models.fraud.versions": versions})))
    return path


def test_listed_profiles_are_resolved_against_the_config(tmp_path: Path) -> None:
    # Whether they exist is checked by the commands that read them (test_preflight.py).
    config = load_config(write(tmp_path, {"references": {"v1": "v1.json", "v2": "no.json"}}))
    assert config.models["fraud"].versions.references == {  # type: ignore[union-attr]
        "v1": str(tmp_path / "v1.json"),
        "v2": str(tmp_path / "no.json"),
    }
