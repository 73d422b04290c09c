"""The reference profile file: one JSON document per model (or model version).

The file is the profile ``driftmon baseline`` builds (:meth:`ReferenceProfile.save`'s
document) plus two optional top-level keys that profile readers ignore, so old and new
files load in both old and new driftmon versions:

* ``performance`` (:data:`PERFORMANCE_KEY`): the reference performance on the baseline's
  labelled predictions, for models with a ``performance`` section;
* ``calibration`` (:data:`CALIBRATION_KEY`): the false-alarm budget calibration of the
  profile, reused at start-up when its digest still matches (see
  :mod:`monitor.model.budget`).

:class:`ReferenceFile` is the only reader and writer of that document. Each part is read
on its own, with its own error message, because a missing or broken part means different
things: no profile is an error, no performance reference is one only when a relative
threshold needs it, no calibration just means computing it. :func:`load_references`
reads every configured file into one :class:`ModelReference` per model.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from monitor.config import CaptureReference, Config, reference_path
from monitor.errors import CheckpointError, ProfileError
from monitor.model.budget import ModelCalibration
from monitor.performance import ReferencePerformance
from monitor.stats import ReferenceProfile
from monitor.stats.profile import profile_to_json

__all__ = [
    "CALIBRATION_KEY",
    "PERFORMANCE_KEY",
    "ModelReference",
    "ReferenceFile",
    "load_references",
]

logger = logging.getLogger(__name__)

#: Top-level key of the profile JSON that holds the reference performance.
PERFORMANCE_KEY = "performance"
#: Top-level key of the profile JSON that holds a stored calibration.
CALIBRATION_KEY = "calibration"


@dataclass(frozen=True)
class ModelReference:
    """Everything a model starts from: its reference files' contents.

    ``profile`` is ``None`` for a model that captures its reference from the stream;
    ``versions`` holds the profiles of the versions listed under ``versions.references``.
    """

    profile: ReferenceProfile | None = None
    performance: ReferencePerformance | None = None
    calibration: ModelCalibration | None = None
    versions: Mapping[str, ReferenceProfile] = field(default_factory=dict)


class ReferenceFile:
    """Reads and writes one reference profile file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def profile(self) -> ReferenceProfile:
        """The profile; ``ProfileError`` when the file is missing or not a profile."""
        return ReferenceProfile.load(self.path)

    def performance(self) -> ReferencePerformance | None:
        """The stored reference performance, ``None`` when the file has none."""
        path = self.path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProfileError(f"cannot read reference performance of {path}: {exc}") from None
        stored = data.get(PERFORMANCE_KEY) if isinstance(data, dict) else None
        if stored is None:
            return None
        try:
            return ReferencePerformance.from_dict(stored)
        except (CheckpointError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProfileError(
                f"{path}: the stored reference performance is invalid ({exc}); rebuild it with "
                "`driftmon baseline`"
            ) from None

    def calibration(self) -> ModelCalibration | None:
        """The stored calibration, ``None`` when the file has none or an unusable one.

        A missing file is left to the profile's reader to report.
        """
        path = self.path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProfileError(f"cannot read the stored calibration of {path}: {exc}") from None
        stored = data.get(CALIBRATION_KEY) if isinstance(data, dict) else None
        if stored is None:
            return None
        try:
            return ModelCalibration.from_json(stored, source="profile")
        except ValueError as exc:
            logger.warning(
                "the calibration stored in the profile is unusable; recalibrating",
                extra={"profile": str(path), "error": str(exc)},
            )
            return None

    def write(
        self,
        profile: ReferenceProfile,
        performance: ReferencePerformance | None = None,
        calibration: ModelCalibration | None = None,
    ) -> None:
        """Write the document atomically (temporary file, then rename)."""
        document: dict[str, Any] = profile_to_json(profile)
        if performance is not None:
            document[PERFORMANCE_KEY] = performance.to_dict()
        if calibration is not None:
            document[CALIBRATION_KEY] = calibration.to_json()
        text = json.dumps(document, indent=1, allow_nan=False)
        tmp = f"{os.fspath(self.path)}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.write("\n")
        os.replace(tmp, self.path)


def _named(profile: ReferenceProfile, model: str) -> ReferenceProfile:
    """The profile under the configured model's name: results, status and webhooks name
    the model the config does, also when several models share one profile file."""
    return profile if profile.model == model else replace(profile, model=model)


def load_references(config: Config, base_dir: Path | None = None) -> dict[str, ModelReference]:
    """Every configured reference file, read into one :class:`ModelReference` per model.

    Paths are relative to the config file's directory (``base_dir``). The parts are read
    in passes (profiles, version profiles, performance, calibrations), so the first
    problem reported is the same whichever models the config lists.
    """
    files = {
        name: ReferenceFile(reference_path(model.reference, base_dir))
        for name, model in config.models.items()
        if not isinstance(model.reference, CaptureReference)
    }
    profiles = {name: _named(file.profile(), name) for name, file in files.items()}
    versions = {
        name: {
            version: _named(ReferenceFile(reference_path(reference, base_dir)).profile(), name)
            for version, reference in model.versions.references.items()
        }
        for name, model in config.models.items()
        if model.versions is not None
    }
    performance: dict[str, ReferencePerformance] = {}
    for name, file in files.items():
        perf = config.models[name].performance
        if perf is None:
            continue
        found = file.performance()
        if found is not None:
            performance[name] = found
        elif perf.relative_thresholds:
            raise ProfileError(
                f"model {name!r}: performance.{perf.relative_thresholds[0]} compares with the "
                f"reference performance, but {file.path} has none; rebuild it with "
                "`driftmon baseline` from events that carry predictions and labels"
            )
    calibrations = {
        name: file.calibration()
        for name, file in files.items()
        if config.models[name].alert.has_budget
    }
    return {
        name: ModelReference(
            profile=profiles.get(name),
            performance=performance.get(name),
            calibration=calibrations.get(name),
            versions=versions.get(name, {}),
        )
        for name in config.models
    }
