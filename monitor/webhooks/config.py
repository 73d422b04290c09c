"""Configuration models of the ``webhooks:`` section (the documented contract).

Secrets never appear in the file itself. Each one is named by a pair of keys: ``*_env``
(an environment variable) or ``*_file`` (a file holding the value, such as a mounted
Kubernetes Secret). Exactly one of a pair is set; both or neither is a config error that
names the keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator
from pydantic_core import PydanticCustomError

WebhookFormat = Literal[
    "generic", "cloudevents", "airflow", "prefect", "dagster", "kubeflow", "argo", "github", "slack"
]

_FILE_HINT = "name an environment variable (*_env) or a file holding the value (*_file)"
REDACTED = "***"
# Formats whose URL is itself a credential: anyone holding a Slack incoming-webhook URL
# can post to the channel.
SECRET_URL_FORMATS = frozenset({"slack"})


def mask_url(url: str, *, secret: bool) -> str:
    """A printable form of ``url``: ``scheme://host/***`` when the URL is a secret.

    A password in the user-info part (``https://user:pass@host``) is always masked.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    if parts.username is not None:
        user = parts.username + (f":{REDACTED}" if parts.password is not None else "")
        host = f"{user}@{host}"
    if secret:
        return f"{parts.scheme}://{host}/{REDACTED}"
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{parts.scheme}://{host}{rest}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _pair(
    model: BaseModel, base: str, *, required: bool, hint: str = _FILE_HINT
) -> PydanticCustomError | None:
    """The error for a secret whose ``<base>_env`` / ``<base>_file`` pair is not one value."""
    env, file = f"{base}_env", f"{base}_file"
    both = getattr(model, env) is not None and getattr(model, file) is not None
    neither = getattr(model, env) is None and getattr(model, file) is None
    if both:
        message = f"set only one of {env} and {file}"
    elif neither and required:
        message = f"one of {env} or {file} is required"
    else:
        return None
    # The "driftmon" error type is rendered by monitor.config with ``field`` as the key.
    return PydanticCustomError("driftmon", message, {"hint": hint, "field": env})


def _check_pairs(model: BaseModel, *pairs: tuple[str, bool]) -> None:
    for base, required in pairs:
        error = _pair(model, base, required=required)
        if error is not None:
            raise error


class BasicAuth(_Strict):
    """HTTP Basic credentials (or, for Airflow 3, the login exchanged for a token)."""

    username_env: str | None = Field(default=None, min_length=1)
    username_file: str | None = Field(default=None, min_length=1)
    password_env: str | None = Field(default=None, min_length=1)
    password_file: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_each(self) -> BasicAuth:
        _check_pairs(self, ("username", True), ("password", True))
        return self


class HeaderAuth(_Strict):
    """A custom header carrying a credential (``Dagster-Cloud-Api-Token``, ``X-Api-Key``)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
    value_env: str | None = Field(default=None, min_length=1)
    value_file: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_value(self) -> HeaderAuth:
        _check_pairs(self, ("value", True))
        return self


class AuthConfig(_Strict):
    """Credentials come only from environment variables or files, never from the config."""

    bearer_token_env: str | None = Field(default=None, min_length=1)
    bearer_token_file: str | None = Field(default=None, min_length=1)
    basic: BasicAuth | None = None
    header: HeaderAuth | None = None

    @model_validator(mode="after")
    def _one_token(self) -> AuthConfig:
        _check_pairs(self, ("bearer_token", False))
        return self


class RetryConfig(_Strict):
    max_attempts: int = Field(default=8, ge=1, le=100)
    initial_backoff_seconds: float = Field(default=1.0, gt=0)
    max_backoff_seconds: float = Field(default=300.0, gt=0)


class WebhookConfig(_Strict):
    """One webhook. ``url`` may itself be a secret (Slack): it is masked in reprs."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    format: WebhookFormat = "generic"
    url: HttpUrl
    models: list[str] | None = None
    auth: AuthConfig | None = None
    secret_env: str | None = Field(default=None, min_length=1)
    secret_file: str | None = Field(default=None, min_length=1)
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    retry: RetryConfig = RetryConfig()
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, url: HttpUrl) -> HttpUrl:
        # httpx would send user:pass@ as Basic auth, over any configured token, and the
        # base64 could come back in a receiver's echo: credentials live in *_env/*_file.
        if url.username is not None or url.password is not None:
            raise PydanticCustomError(
                "driftmon",
                "credentials in the URL (user:password@) are not allowed",
                {
                    "hint": "remove them from the URL and set auth.basic.username_env / "
                    "password_env (or *_file), or auth.bearer_token_env",
                    "field": "",
                },
            )
        return url

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookConfig:
        _check_pairs(self, ("secret", False))
        return self

    @property
    def url_is_secret(self) -> bool:
        """Whether the whole URL is a credential (a Slack incoming webhook)."""
        return self.format in SECRET_URL_FORMATS

    @property
    def display_url(self) -> str:
        """The URL as it may appear in logs, errors and reprs."""
        return mask_url(str(self.url), secret=self.url_is_secret)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, (self.display_url if name == "url" else value)
