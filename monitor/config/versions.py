"""A model's ``versions`` section: per-model-version references and what happens when an
unlisted version appears."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from monitor.config.base import Strict, problem

VersionName = Annotated[str, Field(min_length=1, max_length=128)]


class VersionsConfig(Strict):
    """Per-model-version references (see "Model versions" in the README).

    Rows carry their model version in the event's ``version`` field (or a Kafka header
    ``version``). The model's ``reference`` stays the default: rows without a version use
    it, and so do new versions with ``on_new_version: fallback``. A version listed under
    ``references`` uses its own profile. A new unlisted version is captured from its first
    ``capture_events`` rows (``capture``), compared with the default reference
    (``fallback``), or dropped and counted (``ignore``).
    """

    references: dict[VersionName, str] = Field(default_factory=dict)
    on_new_version: Literal["capture", "fallback", "ignore"] = "capture"
    capture_events: int = Field(default=10_000, ge=100, le=100_000_000)
    max_versions: int = Field(default=16, ge=2, le=1000)

    @model_validator(mode="after")
    def _fits(self) -> VersionsConfig:
        if len(self.references) + 1 > self.max_versions:
            raise problem(
                f"{len(self.references)} listed versions and the default reference do not "
                f"fit in max_versions {self.max_versions}",
                f"raise max_versions to at least {len(self.references) + 1}",
                "max_versions",
            )
        return self
