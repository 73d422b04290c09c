"""How one topic's payloads are written: ``format`` and the settings the formats share.

``driftmon`` is driftmon's own event format (the default). The others read what model
servers already write (README, "Reading model servers' logs"): ``oip`` (Open Inference
Protocol v2 bodies, JSON or protobuf), ``kserve`` (KServe's InferenceLogger CloudEvents),
``seldon`` (Seldon Core 2's model topics) and ``flat`` (one JSON object per row). Requests
and responses logged apart are paired by id before the windows (``pairing``).
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from monitor.config.base import LabelName, Strict, problem
from monitor.config.timestamps import check_zone

FormatName = Literal["driftmon", "oip", "kserve", "seldon", "flat"]

#: Formats whose requests and responses arrive as separate messages.
PAIRED_FORMATS: frozenset[str] = frozenset({"oip", "kserve", "seldon"})


class PairingConfig(Strict):
    """``pairing:``: how long and how many request or response halves wait for the other.

    Event time throughout (a message's Kafka timestamp when the body has none): a half
    waits until the newest event time seen is ``max_delay_seconds`` past it; a request then
    goes on with its features alone, a response is dropped (both counted by reason).
    """

    max_pending: int = Field(default=100_000, ge=1, le=50_000_000)
    max_delay_seconds: float = Field(default=60.0, gt=0, le=7 * 86_400)


def check_tensors(value: dict[str, list[LabelName]]) -> dict[str, list[LabelName]]:
    """Each ``[N,F]`` tensor lists its columns once, and no feature is in two tensors."""
    seen: dict[str, str] = {}
    for tensor, names in value.items():
        if not names:
            raise problem(
                f"tensor {tensor!r} lists no feature names",
                "list the feature of each column in order, e.g. `input-0: [age, income]`",
                tensor,
            )
        for name in names:
            if name in seen:
                raise problem(
                    f"feature {name!r} is mapped twice (tensors {seen[name]!r} and {tensor!r})",
                    "map every feature to one column of one tensor",
                    tensor,
                )
            seen[name] = tensor
    return value


class FormatSettings(Strict):
    """The ``format`` of a topic and the settings the non-native formats read."""

    format: FormatName = "driftmon"
    #: ``[N,F]`` input tensors: tensor name -> the feature of each column, in order. KServe
    #: v1 positional ``instances`` are the tensor named ``instances``.
    tensors: dict[str, list[LabelName]] = Field(default_factory=dict)
    #: The output tensor that is the prediction (default: the response's first output).
    prediction_output: str | None = Field(default=None, min_length=1)
    #: ``flat``: the zone of ISO times without an offset (default: ``timestamps.timezone``).
    timezone: str | None = None
    pairing: PairingConfig = PairingConfig()

    _tensors = field_validator("tensors")(check_tensors)
    _zone = field_validator("timezone")(check_zone)

    @property
    def zone(self) -> tzinfo | None:
        """``timezone`` as a ``tzinfo`` (``None`` when not set here)."""
        return None if self.timezone is None else ZoneInfo(self.timezone)
