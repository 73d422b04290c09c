"""Format adapters: one pure render function and one success check per target.

Each module documents the exact request it sends. :data:`FORMATS` maps the config's
``format`` value to its :class:`Format`.
"""

from __future__ import annotations

from monitor.errors import ConfigError, ConfigProblem
from monitor.webhooks.config import WebhookConfig
from monitor.webhooks.formats import (
    airflow,
    argo,
    cloudevents,
    dagster,
    generic,
    github,
    kubeflow,
    prefect,
    slack,
)
from monitor.webhooks.formats._base import (
    Format,
    RenderContext,
    WebhookRequest,
    WebhookResponse,
    drift_payload,
)

FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        generic.FORMAT,
        cloudevents.FORMAT,
        airflow.FORMAT,
        prefect.FORMAT,
        dagster.FORMAT,
        kubeflow.FORMAT,
        argo.FORMAT,
        github.FORMAT,
        slack.FORMAT,
    )
}


def get_format(webhook: WebhookConfig) -> Format:
    """The adapter for ``webhook.format``."""
    return FORMATS[webhook.format]


def validate_webhook(webhook: WebhookConfig, *, index: int | None = None) -> None:
    """Check the format-specific ``params``; raise :class:`ConfigError` listing problems."""
    prefix = f"webhooks[{index}]" if index is not None else f"webhooks.{webhook.name}"
    problems = [
        ConfigProblem(f"{prefix}.params.{key}", message)
        for key, message in get_format(webhook).validate(webhook)
    ]
    if problems:
        raise ConfigError(problems)


__all__ = [
    "FORMATS",
    "Format",
    "RenderContext",
    "WebhookRequest",
    "WebhookResponse",
    "drift_payload",
    "get_format",
    "validate_webhook",
]
