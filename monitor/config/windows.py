"""Where a model's comparison comes from and what it covers: ``reference`` and ``window``.

Both are tagged unions told apart by their keys (a profile path or ``{capture_events}``;
``{events, slide}`` or ``{seconds, slide_seconds}``). :data:`UNION_TAGS` and
:data:`TAGGED_FIELDS` name the tags pydantic inserts into error locations, which
``monitor.config.problems`` drops again so paths read as the user wrote them.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Union

from pydantic import Discriminator, Field, Tag, model_validator

from monitor.config.base import Strict, problem


class CaptureReference(Strict):
    """Capture the reference from the first ``capture_events`` events of the stream."""

    capture_events: int = Field(ge=100, le=100_000_000)


def _reference_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "profile"
    if isinstance(value, dict):
        return "capture"
    return None


Reference = Annotated[
    Union[Annotated[str, Tag("profile")], Annotated[CaptureReference, Tag("capture")]],  # noqa: UP007 - tagged union members need Annotated
    Discriminator(
        _reference_kind,
        custom_error_type="reference_kind",
        custom_error_message="reference must be a profile file path or {capture_events: N}",
    ),
]

_MAX_SLOTS = 1000


def check_slide_divides(events: int, slide: int) -> None:
    """A count window's slide fits in it and divides it (drift and performance windows)."""
    if slide > events:
        raise problem(
            f"slide ({slide}) is larger than the window ({events} events)",
            "use a slide of at most `events`, e.g. events/10",
            "slide",
        )
    if events % slide:
        raise problem(
            f"slide {slide} does not divide events {events}",
            f"pick a slide that divides the window exactly, e.g. {divisor_below(events, slide)}",
            "slide",
        )


class CountWindowConfig(Strict):
    """A window of the last ``events`` events, evaluated every ``slide`` events."""

    events: int = Field(ge=1, le=100_000_000)
    slide: int = Field(ge=1)

    @model_validator(mode="after")
    def _slots(self) -> CountWindowConfig:
        check_slide_divides(self.events, self.slide)
        if self.events // self.slide > _MAX_SLOTS:
            raise problem(
                f"window has {self.events // self.slide} slides (events/slide); "
                f"at most {_MAX_SLOTS} are allowed",
                f"use a slide of at least {math.ceil(self.events / _MAX_SLOTS)}",
                "slide",
            )
        return self

    @property
    def slots(self) -> int:
        """Number of slot histograms in the ring."""
        return self.events // self.slide


def divisor_below(n: int, d: int) -> int:
    """The largest divisor of ``n`` not above ``d`` (for a concrete hint)."""
    for cand in range(min(d, n), 0, -1):
        if n % cand == 0:
            return cand
    return 1


class TimeWindowConfig(Strict):
    """A window of the last ``seconds`` of event time, evaluated every ``slide_seconds``."""

    seconds: float = Field(gt=0, le=366 * 86400)
    slide_seconds: float = Field(gt=0)
    min_events: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _slots(self) -> TimeWindowConfig:
        ratio = self.seconds / self.slide_seconds
        if self.slide_seconds > self.seconds:
            raise problem(
                f"slide_seconds ({self.slide_seconds:g}) is longer than the window "
                f"({self.seconds:g} s)",
                "use slide_seconds of at most `seconds`, e.g. seconds/12",
                "slide_seconds",
            )
        if abs(ratio - round(ratio)) > 1e-9 * ratio:
            raise problem(
                f"slide_seconds {self.slide_seconds:g} does not divide seconds {self.seconds:g}",
                "pick slide_seconds so that seconds/slide_seconds is a whole number",
                "slide_seconds",
            )
        if round(ratio) > _MAX_SLOTS:
            raise problem(
                f"window has {round(ratio)} slides; at most {_MAX_SLOTS} are allowed",
                f"use slide_seconds of at least {self.seconds / _MAX_SLOTS:g}",
                "slide_seconds",
            )
        return self

    @property
    def slots(self) -> int:
        """Number of slot histograms in the ring."""
        return round(self.seconds / self.slide_seconds)


def _window_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        if "events" in value or "slide" in value:
            return "count"
        if "seconds" in value or "slide_seconds" in value:
            return "time"
    return None


Window = Annotated[
    Union[Annotated[CountWindowConfig, Tag("count")], Annotated[TimeWindowConfig, Tag("time")]],  # noqa: UP007 - tagged union members need Annotated
    Discriminator(
        _window_kind,
        custom_error_type="window_kind",
        custom_error_message="window needs {events, slide} or {seconds, slide_seconds}",
    ),
]
#: Tags of the union members above, and the fields whose values are such unions.
UNION_TAGS = frozenset({"profile", "capture", "count", "time"})
TAGGED_FIELDS = frozenset({"reference", "window"})
