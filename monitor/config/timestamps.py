"""The ``timestamps`` section: how event times written as text are read.

RFC 3339 requires a UTC offset; producers that write local ISO times without one
(``2026-11-26T10:00:00``) are ambiguous unless the config names the zone they mean.
Without ``timezone`` such events are rejected (``bad_timestamp``), as RFC 3339 says.
"""

from __future__ import annotations

import difflib
from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import field_validator

from monitor.config.base import Strict, problem


def check_zone(value: str | None) -> str | None:
    """An IANA zone name, or a problem with a did-you-mean."""
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        near = difflib.get_close_matches(value, sorted(available_timezones()), n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise problem(
            f"unknown time zone {value!r}",
            hint + "use an IANA zone name such as UTC, Europe/Berlin or America/New_York",
        ) from None
    return value


class TimestampsConfig(Strict):
    """``timestamps: {timezone: Europe/Berlin}``: the zone of ISO times without an offset."""

    timezone: str | None = None

    _known_zone = field_validator("timezone")(check_zone)

    @property
    def zone(self) -> tzinfo | None:
        """The zone as a ``tzinfo`` (``None``: times without an offset are rejected)."""
        return None if self.timezone is None else ZoneInfo(self.timezone)
