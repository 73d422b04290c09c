"""Secrets of one webhook, resolved from environment variables, and their redaction.

The configuration names variables (``*_env``), never values. Resolution happens once, when
the dispatcher starts; a missing or empty variable is a :class:`ConfigError` that names the
variable and the config key, never a value. ``Credentials`` never prints its values, and
:meth:`Credentials.redact` masks them in any text headed for a log or an error message.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field

from monitor.errors import ConfigError, ConfigProblem
from monitor.webhooks.config import WebhookConfig
from monitor.webhooks.signing import SigningKey

REDACTED = "***"


@dataclass(frozen=True)
class Credentials:
    """Resolved secrets of one webhook. Every field is hidden from repr."""

    bearer_token: str | None = field(default=None, repr=False)
    basic: tuple[str, str] | None = field(default=None, repr=False)
    header: tuple[str, str] | None = field(default=None, repr=False)
    signing_key: SigningKey | None = field(default=None, repr=False)

    def secret_values(self) -> tuple[str, ...]:
        """Every secret string, longest first so that redaction masks whole values."""
        values: list[str] = []
        if self.bearer_token:
            values.append(self.bearer_token)
        if self.basic:
            values.append(self.basic[1])
            values.append(basic_token(*self.basic))  # as it appears in an Authorization header
        if self.header:
            values.append(self.header[1])
        if self.signing_key is not None:
            values.extend(self.signing_key.secret_values())
        return tuple(sorted({v for v in values if v}, key=len, reverse=True))

    def redact(self, text: str) -> str:
        """Replace every secret value in ``text`` with ``***``."""
        for value in self.secret_values():
            text = text.replace(value, REDACTED)
        return text

    def __repr__(self) -> str:
        present = [
            name
            for name, value in (
                ("bearer_token", self.bearer_token),
                ("basic", self.basic),
                ("header", self.header),
                ("signing_key", self.signing_key),
            )
            if value is not None
        ]
        return f"Credentials({', '.join(f'{n}=***' for n in present)})"


def basic_token(username: str, password: str) -> str:
    """The base64 part of an HTTP Basic ``Authorization`` header."""
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def resolve_credentials(
    webhook: WebhookConfig, env: Mapping[str, str], *, index: int | None = None
) -> Credentials:
    """Read the variables ``webhook`` names from ``env``.

    Raises :class:`ConfigError` listing every missing or empty variable by name.
    ``index`` (the webhook's position in the config list) only improves the key path.
    """
    prefix = f"webhooks[{index}]" if index is not None else f"webhooks.{webhook.name}"
    problems: list[ConfigProblem] = []

    def get(key: str, var: str) -> str:
        value = env.get(var, "")
        if not value:
            problems.append(
                ConfigProblem(
                    f"{prefix}.{key}",
                    f"environment variable {var} is not set or empty",
                    f"export {var} before starting driftmon",
                )
            )
        return value

    bearer = basic = header = None
    auth = webhook.auth
    if auth is not None:
        if auth.bearer_token_env:
            bearer = get("auth.bearer_token_env", auth.bearer_token_env)
        if auth.basic is not None:
            basic = (
                get("auth.basic.username_env", auth.basic.username_env),
                get("auth.basic.password_env", auth.basic.password_env),
            )
        if auth.header is not None:
            header = (auth.header.name, get("auth.header.value_env", auth.header.value_env))
    key = None
    if webhook.secret_env:
        secret = get("secret_env", webhook.secret_env)
        if secret:
            try:
                key = SigningKey.from_secret(secret)
            except ConfigError as exc:
                problems.append(ConfigProblem(f"{prefix}.secret_env", exc.problems[0].message))
    if problems:
        raise ConfigError(problems)
    return Credentials(bearer_token=bearer, basic=basic, header=header, signing_key=key)
