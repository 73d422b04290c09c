"""Captured reference profiles shared through ``<group_id>.profiles``, without Kafka.

A model that captures its reference from the stream has no grid until its stage-2 owner
has captured, so stage 1 sends its rows raw. Once the owner has captured it writes the
profile to ``<group_id>.profiles`` (key: the model): the document ``driftmon baseline``
writes, plus a top-level ``fingerprint`` (profile readers ignore extra keys) which is
:func:`captured_fingerprint`, the digest binned rows then carry. Every stage 1 follows the
topic with a :class:`ProfileTable` and bins the model against that profile from then on.

The table takes the last value per key (a broker may keep every record). A value is used
only when it is a readable profile of a configured model that :func:`switches` and its
fingerprint is the one this replica's configuration gives that profile: a profile written
under another configuration (a rolling config change) would bin rows its owner rejects.
Anything else is counted by outcome and logged, never raised; the model then goes on (or
back) to raw rows, which an owner always accepts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from monitor.config import CaptureReference
from monitor.errors import ProfileError
from monitor.log import RateLimitedLogger
from monitor.model.model import Model
from monitor.model.monitor import ModelMonitor, model_fingerprint
from monitor.model.versioned import VersionedModel
from monitor.scaleout.codec import RowCodec
from monitor.scaleout.versions import split_profile_key
from monitor.stats.profile import ReferenceProfile, profile_from_json, profile_to_json

__all__ = [
    "FINGERPRINT_KEY",
    "OUTCOMES",
    "ProfileTable",
    "SharedProfile",
    "captured_codec",
    "captured_monitor",
    "captured_fingerprint",
    "encode_profile",
    "shares_profiles",
    "switches",
]

logger = logging.getLogger(__name__)
_limited = RateLimitedLogger(logger)

#: Top-level key of a profile record that holds the fingerprint of rows binned against it.
FINGERPRINT_KEY = "fingerprint"
#: How a record on the profiles topic was taken (``ProfileTable.counts``).
OUTCOMES = ("used", "garbled", "unknown_model", "other_config", "deleted")


def switches(model: Model) -> bool:
    """Whether the model's rows go raw only until its captured reference is shared: a
    captured reference and no versions (they route per row, each version on its own
    grid). A performance join's rows are then binned and carry what the join reads."""
    config = model.default.config
    return isinstance(config.reference, CaptureReference) and config.versions is None


def captured_monitor(model: Model, key: str) -> ModelMonitor | None:
    """The monitor whose reference a profiles-topic record of ``key`` (``""``: the
    model's default reference, else a version) is: one captured from the stream, ``None``
    for a reference that is not (a file, a configured version, a version not captured)."""
    if not isinstance(model, VersionedModel):
        return model.default if key == "" and switches(model) else None
    if key == "":
        reference = model.default.config.reference
        return model.default if isinstance(reference, CaptureReference) else None
    settings = model.settings
    if key in settings.references or settings.on_new_version != "capture":
        return None
    return model.new_monitor(key)


def shares_profiles(model: Model) -> bool:
    """Whether a model captures a reference whose profile goes to the profiles topic."""
    if switches(model):
        return True
    if not isinstance(model, VersionedModel):
        return False
    return captured_monitor(model, "") is not None or model.settings.on_new_version == "capture"


def captured_fingerprint(monitor: ModelMonitor, profile: ReferenceProfile) -> str:
    """The fingerprint of rows binned against a captured ``profile``: the model's
    configuration and that profile, as for a model configured with it as its file."""
    return model_fingerprint(monitor.config, monitor.performance, profile)


def captured_codec(name: str, monitor: ModelMonitor, profile: ReferenceProfile) -> RowCodec:
    """The row codec of a captured profile (stage 1 and stage 2 alike)."""
    return RowCodec(
        name,
        profile,
        monitor.numeric_columns,
        monitor.categorical_columns,
        captured_fingerprint(monitor, profile),
    )


def encode_profile(profile: ReferenceProfile, fingerprint: str) -> bytes:
    """The record value: the profile document with its fingerprint."""
    document = profile_to_json(profile)
    document[FINGERPRINT_KEY] = fingerprint
    return json.dumps(document, allow_nan=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SharedProfile:
    """A usable profile from the topic and the codec stage 1 bins with."""

    profile: ReferenceProfile
    fingerprint: str
    codec: RowCodec


@dataclass
class ProfileTable:
    """The last usable value per model of the profiles topic (see the module docstring)."""

    models: Mapping[str, Model]
    current: dict[str, SharedProfile] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))

    def offer(self, key: bytes | None, value: bytes | None, where: str = "") -> str | None:
        """Take one record; the key (``profile_key``) whose profile changed (set or
        dropped), if any."""
        name = _text(key)
        found = None if name is None else split_profile_key(name, list(self.models))
        monitor = None if found is None else captured_monitor(self.models[found[0]], found[1])
        if name is None or found is None or monitor is None:
            self._count("unknown_model", where, model=name)
            return None
        if value is None:  # a tombstone: the model goes back to raw rows
            self._count("deleted", where, model=name)
            return name if self.current.pop(name, None) is not None else None
        shared = self._read(name, found[0], monitor, value, where)
        if shared is None:
            return name if self.current.pop(name, None) is not None else None
        known = self.current.get(name)
        self._count("used", where, model=name)
        if known is not None and known.fingerprint == shared.fingerprint:
            return None
        self.current[name] = shared
        logger.info(
            "captured reference read from the profiles topic",
            extra={"model": name, "source": shared.profile.source},
        )
        return name

    def _read(
        self, name: str, model: str, monitor: ModelMonitor, value: bytes, where: str
    ) -> SharedProfile | None:
        try:
            document = json.loads(value)
            if not isinstance(document, dict):
                raise ValueError("not a JSON object")
            fingerprint = document.pop(FINGERPRINT_KEY)
            profile = profile_from_json(document, f"profile record of {name}")
            if not isinstance(fingerprint, str):
                raise ValueError("fingerprint is not a string")
            codec = captured_codec(model, monitor, profile)
        except (KeyError, ValueError, TypeError, ProfileError) as exc:
            # ValueError covers JSON and UTF-8 errors and a profile without a configured
            # feature (the codec's check).
            self._count("garbled", where, model=name, error=str(exc)[:200])
            return None
        if codec.fingerprint != fingerprint:
            self._count("other_config", where, model=name)
            return None
        return SharedProfile(profile, fingerprint, codec)

    def _count(self, outcome: str, where: str, **extra: object) -> None:
        self.counts[outcome] += 1
        if outcome != "used":  # a topic full of junk writes a bounded number of lines
            _limited.log(
                logging.WARNING,
                outcome,
                "profile record not used",
                extra={"outcome": outcome, "record": where, **extra},
            )

    def codec(self, model: str) -> RowCodec | None:
        shared = self.current.get(model)
        return None if shared is None else shared.codec

    def fingerprint(self, model: str) -> str | None:
        shared = self.current.get(model)
        return None if shared is None else shared.fingerprint


def _text(key: bytes | None) -> str | None:
    if key is None:
        return None
    try:
        return key.decode()
    except UnicodeDecodeError:
        return None
