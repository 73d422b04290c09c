"""The cloudevents SDK's from_http: in cloudevents.v1.http (2.x) or cloudevents.http (1.x)."""

from __future__ import annotations

try:
    from cloudevents.v1.http import from_http
except ImportError:  # cloudevents 1.x
    from cloudevents.http import from_http  # type: ignore[no-redef]

__all__ = ["from_http"]
