"""The service sections of the config: ``kafka``, ``http``, ``log``, ``state`` and ``limits``.

Owns how driftmon reaches its broker (topics, event field names, librdkafka pass-through
options and which of them driftmon manages itself), where it serves HTTP, how it logs,
where it checkpoints, and the budget on exported series.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from monitor.config.base import TOPIC_PATTERN, Strict, problem
from monitor.config.formats import FormatSettings
from monitor.config.scaleout import ScaleOutConfig


class FieldNames(Strict):
    """Names of the event fields, configurable per topic for producers with another shape."""

    model: str = Field(default="model", min_length=1)
    ts: str = Field(default="ts", min_length=1)
    id: str = Field(default="id", min_length=1)
    features: str = Field(default="features", min_length=1)
    prediction: str = Field(default="prediction", min_length=1)
    version: str = Field(default="version", min_length=1)
    label: str = Field(default="label", min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> FieldNames:
        names = list(self.model_dump().values())
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise problem(
                f"field names must be distinct; {', '.join(map(repr, dupes))} is used twice",
                "give every event field its own name",
            )
        return self


class TopicConfig(FormatSettings):
    """One consumed topic; ``model`` binds every event on it to one model; ``format`` says
    how its payloads are written (:mod:`monitor.config.formats`)."""

    #: A topic name, or a pattern starting with ``^`` (a regular expression over topic
    #: names, as librdkafka subscribes; Seldon Core 2 writes one topic per model).
    name: str = Field(min_length=1)
    model: str | None = None
    fields: FieldNames = FieldNames()

    @field_validator("name")
    @classmethod
    def _topic_or_pattern(cls, value: str) -> str:
        if value.startswith("^"):
            try:
                re.compile(value)
            except re.error as exc:
                raise problem(
                    f"topic pattern {value!r} is not a regular expression: {exc}",
                    "write e.g. ^seldon\\.prod\\.model\\..* (a leading ^ marks a pattern)",
                ) from None
        elif not re.match(TOPIC_PATTERN, value):
            raise problem(
                f"{value!r} is not allowed as a Kafka topic name",
                "use letters, digits, '.', '_' and '-' (up to 249), or a pattern starting with ^",
            )
        return value

    @property
    def is_pattern(self) -> bool:
        """The name is a pattern over topic names."""
        return self.name.startswith("^")

    def matches(self, topic: str) -> bool:
        """Whether messages of ``topic`` are read with this entry."""
        return topic == self.name or (self.is_pattern and re.match(self.name, topic) is not None)


LibrdkafkaValue = str | int | float | bool

# librdkafka keys that driftmon sets itself: passing them through would break its guarantees.
_MANAGED_KAFKA_KEYS = {
    "bootstrap.servers": "set kafka.bootstrap_servers instead",
    "group.id": "set kafka.group_id instead",
    "enable.auto.commit": "driftmon commits offsets itself, after the batch is accounted for",
    "enable.auto.offset.store": "driftmon stores offsets itself, after the batch is accounted for",
}
# librdkafka keys that load code or run commands inside the daemon: whoever can set an
# environment variable must not be able to run code with the daemon's credentials.
_REFUSED_KAFKA_KEYS = {
    "plugin.library.paths": "driftmon loads no librdkafka plugins; remove the option",
    "ssl.engine.location": "OpenSSL engines load shared objects; driftmon does not allow "
    "them: use ssl.key.location / ssl.certificate.location",
    "ssl_engine_location": "OpenSSL engines load shared objects; driftmon does not allow "
    "them: use ssl.key.location / ssl.certificate.location",
    "ssl.providers": "OpenSSL providers load shared objects; driftmon does not allow them",
    "sasl.kerberos.kinit.cmd": "driftmon runs no commands from config: keep the Kerberos "
    "ticket cache fresh with a kinit sidecar (KRB5CCNAME) instead",
}
_SECRET_KEY_RE = re.compile(r"password|secret|token|(^|\.)key$|credentials", re.IGNORECASE)


def _check_librdkafka(value: Any) -> Any:
    """One clear problem per bad option instead of one per member of the value union."""
    if not isinstance(value, dict):
        return value
    for key, option in value.items():
        if key in _MANAGED_KAFKA_KEYS:
            raise problem(f"'{key}' cannot be passed through", _MANAGED_KAFKA_KEYS[key])
        if str(key).lower() in _REFUSED_KAFKA_KEYS:
            raise problem(
                f"'{key}' is refused: it makes librdkafka load code or run a command",
                _REFUSED_KAFKA_KEYS[str(key).lower()],
                str(key),
            )
        if not isinstance(option, str | int | float | bool):
            raise problem(
                f"librdkafka option {key!r} must be a string, number or boolean",
                "librdkafka options are flat: write `session.timeout.ms: 6000`, not nested keys",
                str(key),
            )
    return value


def _masked(options: Mapping[str, LibrdkafkaValue]) -> dict[str, LibrdkafkaValue]:
    return {k: ("**********" if _SECRET_KEY_RE.search(k) else v) for k, v in options.items()}


class KafkaConfig(Strict):
    """The consumer side: brokers, topics and librdkafka pass-through options."""

    bootstrap_servers: str = Field(min_length=1)
    group_id: str = Field(default="driftmon", min_length=1)
    topics: list[TopicConfig] = Field(min_length=1)
    consumer: dict[str, LibrdkafkaValue] = Field(default_factory=dict)
    producer: dict[str, LibrdkafkaValue] = Field(default_factory=dict)
    dead_letter_topic: str | None = Field(default=None, pattern=TOPIC_PATTERN)
    # A batch's fixed costs (a Python step per model and per window, the scan's hand-off,
    # the commit bookkeeping) are paid once per batch: 20,000 ran end to end ~15 % faster
    # than 5,000 (benchmarks/RESULTS.md). It is a ceiling: a batch takes what is fetched.
    batch_max_messages: int = Field(default=20_000, ge=1, le=1_000_000)
    poll_timeout_seconds: float = Field(default=0.5, gt=0, le=60)
    max_message_bytes: int = Field(default=1_048_576, ge=64, le=1 << 30)
    scale_out: ScaleOutConfig = ScaleOutConfig()

    @field_validator("topics", mode="before")
    @classmethod
    def _plain_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]  # `topics: ml.inference` is a common shorthand
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("topics")
    @classmethod
    def _unique_topics(cls, value: list[TopicConfig]) -> list[TopicConfig]:
        names = [t.name for t in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise problem(
                f"topic {dupes[0]!r} is listed twice", "list each topic once; bind it to one model"
            )
        return value

    _consumer_keys = field_validator("consumer", "producer", mode="before")(_check_librdkafka)

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        # librdkafka security options (sasl.password, ...) may arrive through env overrides.
        for name, value in super().__repr_args__():
            if name in ("consumer", "producer"):
                value = _masked(value)
            yield name, value

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Values of secret-looking librdkafka options, for log redaction."""
        found = []
        for options in (self.consumer, self.producer):
            found += [str(v) for k, v in options.items() if _SECRET_KEY_RE.search(k) and v]
        return tuple(found)


# ------------------------------------------------------------------------- http, log, state


class HttpConfig(Strict):
    """The one HTTP port serving /metrics, /healthz, /readyz and /status."""

    host: str = Field(default="0.0.0.0", min_length=1)  # noqa: S104 - a daemon serves its pod IP
    port: int = Field(default=9108, ge=0, le=65535)
    #: The exporter-toolkit web configuration file (TLS, basic auth), as node_exporter's
    #: ``--web.config.file``; relative to the config file's directory.
    web_config_file: str | None = Field(default=None, min_length=1)
    #: Serve ``/status`` (per-model JSON); ``false`` leaves /metrics and the probes only.
    status: bool = True


class LogConfig(Strict):
    """Log level and line format."""

    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    format: Literal["text", "json"] = "text"

    @field_validator("level", "format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class StateConfig(Strict):
    """Checkpointed state; without this section the daemon runs stateless."""

    dir: str = Field(min_length=1)
    checkpoint_interval_seconds: float = Field(default=10.0, gt=0, le=86400)
    on_corrupt: Literal["fresh", "refuse"] = "fresh"


class LimitsConfig(Strict):
    """Budgets that keep the exported metrics bounded."""

    #: Drift score and p-value series over all models, features and tests.
    max_series: int = Field(default=10_000, ge=1)
