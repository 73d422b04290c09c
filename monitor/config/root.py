"""The root of the config document: :class:`Config`, its sections, and the checks that
span sections (topic bindings, the dead-letter topic, webhook names and models, the
series budget), which are all collected into one :class:`~monitor.errors.ConfigError`.

The ``kafka`` section is optional here: ``baseline`` and ``replay`` read files and need
none, so only ``driftmon run`` requires it (``monitor.app.preflight``). Without it, events
read from files use the default field names (:data:`OFFLINE_TOPIC`).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from monitor.config.base import LabelName, Strict, nearest
from monitor.config.model import ModelConfig
from monitor.config.service import (
    HttpConfig,
    KafkaConfig,
    LimitsConfig,
    LogConfig,
    StateConfig,
    TopicConfig,
)
from monitor.config.timestamps import TimestampsConfig
from monitor.errors import ConfigError, ConfigProblem
from monitor.webhooks.config import WebhookConfig

_DEFAULT_MAX_MESSAGE_BYTES: int = KafkaConfig.model_fields["max_message_bytes"].default

#: The topic settings of events read from a file when the config has no ``kafka`` section.
OFFLINE_TOPIC = TopicConfig(name="driftmon.offline")


def _tensor_problems(
    key: str, topic: TopicConfig, models: dict[str, ModelConfig]
) -> list[ConfigProblem]:
    """Columns of ``[N,F]`` tensors must name monitored features of the topic's model(s)
    (models whose features come from a profile file are checked when it is loaded)."""
    bound = [models[topic.model]] if topic.model in models else list(models.values())
    if any(not m.features for m in bound):
        return []
    known = {name for m in bound for name in m.features}
    return [
        ConfigProblem(
            f"{key}.{tensor}",
            f"column {name!r} of tensor {tensor!r} is not a monitored feature",
            nearest(name, sorted(known), "monitored features"),
        )
        for tensor, names in topic.tensors.items()
        for name in names
        if name not in known
    ]


class Config(Strict):
    """The whole configuration file."""

    kafka: KafkaConfig | None = None
    http: HttpConfig = HttpConfig()
    log: LogConfig = LogConfig()
    models: dict[LabelName, ModelConfig] = Field(min_length=1)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    state: StateConfig | None = None
    limits: LimitsConfig = LimitsConfig()
    timestamps: TimestampsConfig = TimestampsConfig()

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        # Every cross-section problem is collected; ConfigError passes through pydantic.
        problems: list[ConfigProblem] = []
        names = ", ".join(self.models)
        for i, topic in enumerate(self.kafka.topics if self.kafka is not None else ()):
            if topic.model is not None and topic.model not in self.models:
                problems.append(
                    ConfigProblem(
                        f"kafka.topics.{i}.model",
                        f"topic {topic.name!r} is bound to unknown model {topic.model!r}",
                        nearest(topic.model, self.models, "configured models"),
                    )
                )
            problems += _tensor_problems(f"kafka.topics.{i}.tensors", topic, self.models)
            if topic.is_pattern and self.kafka is not None and self.kafka.scale_out.enabled:
                problems.append(
                    ConfigProblem(
                        f"kafka.topics.{i}.name",
                        f"topic pattern {topic.name!r} cannot be read with kafka.scale_out "
                        "(stage 2 waits for every source partition, so it must know them)",
                        "list the topics by name (Seldon Core 2: the model's .inputs and "
                        ".outputs topics as two entries), or turn kafka.scale_out off",
                    )
                )
        if self.kafka is not None and self.kafka.dead_letter_topic in {
            t.name for t in self.kafka.topics
        }:
            problems.append(
                ConfigProblem(
                    "kafka.dead_letter_topic",
                    "the dead-letter topic is also consumed",
                    "use a topic driftmon does not read, e.g. driftmon.dlq",
                )
            )
        seen: set[str] = set()
        for i, hook in enumerate(self.webhooks):
            if hook.name in seen:
                problems.append(
                    ConfigProblem(
                        f"webhooks.{i}.name",
                        f"webhook name {hook.name!r} is used twice",
                        "give every webhook its own name (it is a metric label)",
                    )
                )
            seen.add(hook.name)
            for model in hook.models or ():
                if model not in self.models:
                    problems.append(
                        ConfigProblem(
                            f"webhooks.{i}.models",
                            f"unknown model {model!r}",
                            nearest(model, self.models, "configured models") or f"use {names}",
                        )
                    )
        series = self.series_count
        if series > self.limits.max_series:
            problems.append(self._series_problem(series))
        if problems:
            raise ConfigError(problems)
        return self

    def _series_problem(self, series: int) -> ConfigProblem:
        """Too many series, in one line however many models: the five largest and the rest."""
        counts = sorted(
            ((c.series_count(), m) for m, c in self.models.items()), key=lambda x: (-x[0], x[1])
        )
        largest = ", ".join(f"{m}={n}" for n, m in counts[:5])
        rest = len(counts) - 5
        more = f" and {rest:,} more model{'s' if rest > 1 else ''}" if rest > 0 else ""
        return ConfigProblem(
            "limits.max_series",
            f"this config creates {series} drift score/p-value series over "
            f"{len(counts):,} model{'s' if len(counts) > 1 else ''} (models x features x tests; "
            f"largest: {largest}{more}), above the limit of {self.limits.max_series}",
            f"raise limits.max_series to at least {series} if your Prometheus can take it, "
            "or drop tests (models.<name>.tests) or features of the largest models",
        )

    @property
    def series_count(self) -> int:
        """Drift score and p-value series over every model (configured features only)."""
        return sum(m.series_count() for m in self.models.values())

    @property
    def topics(self) -> list[TopicConfig]:
        """The consumed topics; without a ``kafka`` section, :data:`OFFLINE_TOPIC` alone."""
        return self.kafka.topics if self.kafka is not None else [OFFLINE_TOPIC]

    @property
    def max_message_bytes(self) -> int:
        """The largest event payload accepted (``kafka.max_message_bytes`` or its default)."""
        kafka = self.kafka
        return kafka.max_message_bytes if kafka is not None else _DEFAULT_MAX_MESSAGE_BYTES

    def topic(self, name: str) -> TopicConfig:
        """The configuration of one consumed topic: the entry of that name, else the first
        pattern entry matching it."""
        for topic in self.topics:
            if topic.name == name:
                return topic
        for topic in self.topics:
            if topic.matches(name):
                return topic
        raise KeyError(name)
