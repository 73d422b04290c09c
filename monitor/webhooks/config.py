"""Configuration models of the ``webhooks:`` section (the documented contract)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

WebhookFormat = Literal[
    "generic", "cloudevents", "airflow", "prefect", "dagster", "kubeflow", "argo", "github", "slack"
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BasicAuth(_Strict):
    username_env: str
    password_env: str


class HeaderAuth(_Strict):
    name: str
    value_env: str


class AuthConfig(_Strict):
    """Credentials come only from environment variables, never from the file itself."""

    bearer_token_env: str | None = None
    basic: BasicAuth | None = None
    header: HeaderAuth | None = None


class RetryConfig(_Strict):
    max_attempts: int = Field(default=8, ge=1, le=100)
    initial_backoff_seconds: float = Field(default=1.0, gt=0)
    max_backoff_seconds: float = Field(default=300.0, gt=0)


class WebhookConfig(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    format: WebhookFormat = "generic"
    url: HttpUrl
    models: list[str] | None = None
    auth: AuthConfig | None = None
    secret_env: str | None = None
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    retry: RetryConfig = RetryConfig()
    params: dict[str, Any] = Field(default_factory=dict)
