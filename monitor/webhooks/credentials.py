"""Secrets of one webhook, resolved from environment variables or files, and their redaction.

The configuration names where a secret lives, never its value: ``*_env`` names an
environment variable, ``*_file`` a file whose content is the value (one trailing newline
is dropped, as ``echo`` and most secret mounts add one). Resolution happens when the
dispatcher starts; a missing or empty variable, or a missing, unreadable or empty file, is
a :class:`ConfigError` that names the config key and the variable or path, never a value.
Relative file paths are resolved from the daemon's working directory. A
:class:`CredentialSource` re-reads the files when they change (rotated tokens).

The URL of a Slack incoming webhook is a secret too (anyone holding it can post), as is a
password written into any URL (``https://user:pass@host``). Both are added to the values
that :meth:`Credentials.redact` masks; ``WebhookConfig.display_url`` is the printable form.

``Credentials`` never prints its values, and :meth:`Credentials.redact` masks them in any
text headed for a log or an error message.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from monitor.errors import ConfigError, ConfigProblem
from monitor.webhooks.config import REDACTED, WebhookConfig
from monitor.webhooks.signing import SigningKey

_MIN_REDACTED_LENGTH = 4  # shorter fragments would mask ordinary words in messages


@dataclass(frozen=True)
class Credentials:
    """Resolved secrets of one webhook. Every field is hidden from repr."""

    bearer_token: str | None = field(default=None, repr=False)
    basic: tuple[str, str] | None = field(default=None, repr=False)
    header: tuple[str, str] | None = field(default=None, repr=False)
    signing_key: SigningKey | None = field(default=None, repr=False)
    url_secrets: tuple[str, ...] = field(default=(), repr=False)

    def secret_values(self) -> tuple[str, ...]:
        """Every secret string, longest first so that redaction masks whole values."""
        values: list[str] = list(self.url_secrets)
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
                ("url", self.url_secrets or None),
            )
            if value is not None
        ]
        return f"Credentials({', '.join(f'{n}=***' for n in present)})"


def basic_token(username: str, password: str) -> str:
    """The base64 part of an HTTP Basic ``Authorization`` header."""
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _url_secrets(webhook: WebhookConfig) -> tuple[str, ...]:
    """The strings of the webhook's URL that must never be printed."""
    values: set[str] = set()
    password = webhook.url.password
    if password:
        values.update({password, unquote(password)})
    if webhook.url_is_secret:
        full = str(webhook.url)
        parts = urlsplit(full)
        path = parts.path.rstrip("/")
        values.update({full, full.rstrip("/"), path + (f"?{parts.query}" if parts.query else "")})
        # The last segment is the token proper; mask it wherever it turns up on its own.
        values.add(path.rsplit("/", 1)[-1])
        if parts.query:
            values.add(parts.query)
    return tuple(v for v in values if len(v) >= _MIN_REDACTED_LENGTH and v != "/")


def read_secret_file(path: str) -> str:
    """The content of a secret file without its trailing newline.

    Raises ``OSError`` or ``UnicodeDecodeError`` like :meth:`Path.read_text`.
    """
    text = Path(path).read_text(encoding="utf-8")
    if text.endswith("\n"):
        text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
    return text


class _Resolver:
    """Reads the secrets one webhook names and collects every problem."""

    def __init__(self, prefix: str, env: Mapping[str, str]) -> None:
        self.prefix = prefix
        self.env = env
        self.problems: list[ConfigProblem] = []

    def get(self, key: str, var: str | None, path: str | None) -> str:
        """The value named by ``<key>_env=var`` or ``<key>_file=path`` (exactly one is set)."""
        if var is not None:
            value = self.env.get(var, "")
            if not value:
                self.problems.append(
                    ConfigProblem(
                        f"{self.prefix}.{key}_env",
                        f"environment variable {var} is not set or empty",
                        f"export {var} before starting driftmon",
                    )
                )
            return value
        if path is None:  # the config models make this unreachable
            self.problems.append(ConfigProblem(f"{self.prefix}.{key}_env", "no secret named"))
            return ""
        config_key = f"{self.prefix}.{key}_file"
        try:
            value = read_secret_file(path)
        except FileNotFoundError:
            self._file_problem(config_key, f"secret file {path} does not exist")
            return ""
        except IsADirectoryError:
            self._file_problem(config_key, f"secret file {path} is a directory")
            return ""
        except PermissionError:
            self._file_problem(config_key, f"secret file {path} is not readable by driftmon")
            return ""
        except OSError as exc:
            self._file_problem(config_key, f"cannot read secret file {path}: {exc.strerror}")
            return ""
        except UnicodeDecodeError:
            self._file_problem(config_key, f"secret file {path} is not UTF-8 text")
            return ""
        if not value:
            self._file_problem(config_key, f"secret file {path} is empty")
        return value

    def _file_problem(self, key: str, message: str) -> None:
        hint = "mount the secret there (absolute paths are safest) or fix the path"
        self.problems.append(ConfigProblem(key, message, hint))


def resolve_credentials(
    webhook: WebhookConfig, env: Mapping[str, str], *, index: int | None = None
) -> Credentials:
    """Read the variables and files ``webhook`` names.

    Raises :class:`ConfigError` listing every missing or empty variable or file by name.
    ``index`` (the webhook's position in the config list) only improves the key path.
    """
    prefix = f"webhooks[{index}]" if index is not None else f"webhooks.{webhook.name}"
    resolver = _Resolver(prefix, env)
    bearer = basic = header = None
    auth = webhook.auth
    if auth is not None:
        if auth.bearer_token_env is not None or auth.bearer_token_file is not None:
            bearer = resolver.get(
                "auth.bearer_token", auth.bearer_token_env, auth.bearer_token_file
            )
        if auth.basic is not None:
            b = auth.basic
            basic = (
                resolver.get("auth.basic.username", b.username_env, b.username_file),
                resolver.get("auth.basic.password", b.password_env, b.password_file),
            )
        if auth.header is not None:
            h = auth.header
            header = (h.name, resolver.get("auth.header.value", h.value_env, h.value_file))
    key = None
    if webhook.secret_env is not None or webhook.secret_file is not None:
        secret = resolver.get("secret", webhook.secret_env, webhook.secret_file)
        if secret:
            try:
                key = SigningKey.from_secret(secret)
            except ConfigError as exc:
                which = "secret_env" if webhook.secret_env is not None else "secret_file"
                resolver.problems.append(
                    ConfigProblem(f"{prefix}.{which}", exc.problems[0].message)
                )
    if resolver.problems:
        raise ConfigError(resolver.problems)
    return Credentials(
        bearer_token=bearer,
        basic=basic,
        header=header,
        signing_key=key,
        url_secrets=_url_secrets(webhook),
    )


def secret_files(webhook: WebhookConfig) -> tuple[str, ...]:
    """Every ``*_file`` path the webhook names."""
    paths = [webhook.secret_file]
    auth = webhook.auth
    if auth is not None:
        paths.append(auth.bearer_token_file)
        if auth.basic is not None:
            paths += [auth.basic.username_file, auth.basic.password_file]
        if auth.header is not None:
            paths.append(auth.header.value_file)
    return tuple(p for p in paths if p is not None)


_FileStamp = tuple[tuple[str, int, int, int] | None, ...]


class CredentialSource:
    """The current credentials of one webhook, re-read when one of its secret files changes.

    Mounted secrets rotate in place (a Kubernetes Secret or a projected ServiceAccount
    token is swapped atomically by the kubelet), so every attempt calls :meth:`refresh`,
    which costs one ``stat`` per file. Environment variables are read once.
    """

    def __init__(
        self, webhook: WebhookConfig, env: Mapping[str, str], *, index: int | None = None
    ) -> None:
        self.webhook = webhook
        self._env = env
        self._index = index
        self._files = secret_files(webhook)
        self._stamp = self._file_stamp()
        self.current = resolve_credentials(webhook, env, index=index)

    def __repr__(self) -> str:
        return f"CredentialSource({self.webhook.name!r}, files={len(self._files)})"

    def _file_stamp(self) -> _FileStamp:
        stamps: list[tuple[str, int, int, int] | None] = []
        for path in self._files:
            try:
                st = Path(path).stat()
            except OSError:
                stamps.append(None)
            else:
                stamps.append((path, st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(stamps)

    def refresh(self) -> bool:
        """Re-read the secrets if a file changed; ``True`` when :attr:`current` was replaced.

        Raises :class:`ConfigError` (naming keys and paths, never values) when a changed
        file cannot be used; :attr:`current` then stays as it was and the next call tries
        again.
        """
        if not self._files:
            return False
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        credentials = resolve_credentials(self.webhook, self._env, index=self._index)
        self._stamp = stamp
        changed = credentials != self.current
        self.current = credentials
        return changed
