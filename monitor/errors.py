"""Exceptions raised by driftmon.

The hierarchy::

    DriftmonError
    ├── ConfigError          invalid configuration; carries every problem with its key path
    ├── ProfileError         a reference profile file is missing, corrupt or of another version
    ├── DecodeError          one message could not be decoded; ``reason`` feeds the metric
    ├── CheckpointError      a checkpoint cannot be written, read or is incompatible
    ├── UsageError           a setting or argument that cannot work as given (a port in use)
    └── DeliveryError        a webhook delivery attempt failed
        ├── DeliveryRejected     final failure (a 4xx other than 408/409/429)
        └── DeliveryRetryable    timeouts, connection errors, 408, 429 and 5xx

Fatal errors (config, profile, checkpoint format, usage) make the CLI exit
with code 2 and print their message without a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class DriftmonError(Exception):
    """Base class of every error driftmon raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a configuration: where, what, and how to fix it."""

    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class ConfigError(DriftmonError):
    """The configuration is invalid. ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[ConfigProblem] | str, source: str = "") -> None:
        if isinstance(problems, str):
            problems = [ConfigProblem("(config)", problems)]
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = [f"invalid configuration{where}:"] + [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class UsageError(DriftmonError):
    """A setting or argument cannot work as given: a port in use, an unwritable output.

    ``problem.path`` names the config key or command-line option; one line, no traceback.
    """

    def __init__(self, problem: ConfigProblem) -> None:
        self.problem = problem
        super().__init__(str(problem))


class ProfileError(DriftmonError):
    """A reference profile could not be loaded or built."""


class DecodeError(DriftmonError):
    """A message could not be decoded. ``reason`` is a closed-enum label value."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class CheckpointError(DriftmonError):
    """A checkpoint could not be written or read."""


class DeliveryError(DriftmonError):
    """A webhook delivery attempt failed."""


class DeliveryRejected(DeliveryError):
    """The receiver rejected the request for good; retrying cannot help."""


class DeliveryRetryable(DeliveryError):
    """The attempt failed in a way that may succeed later.

    ``retry_after_seconds`` carries the receiver's ``Retry-After`` when it sent one.
    """

    def __init__(self, message: str, retry_after_seconds: float | None = None) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(message)
