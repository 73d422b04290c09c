"""The exporter-toolkit web configuration file: TLS and basic auth on the HTTP port.

Security teams lock node_exporter and friends down with one YAML file
(``--web.config.file``); ``http.web_config_file`` accepts the same file, so the port
is protected the way they already do it::

    tls_server_config:
      cert_file: server.crt          # relative paths start at this file's directory
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # optional, with client_ca_file
      client_ca_file: ca.crt
      min_version: TLS12             # or TLS13
    basic_auth_users:
      prometheus: $2y$10$...         # bcrypt hashes, e.g. htpasswd -nBC 10 "" | tr -d ':'
    http_server_config:
      headers: {X-Frame-Options: deny}

Every endpoint asks for the credentials when ``basic_auth_users`` is set (Kubernetes
probes send them with ``httpHeaders``). A verified password is remembered by its SHA-256,
so a scrape every few seconds does not pay bcrypt's deliberate cost each time.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from monitor.config.yaml_bounded import AliasExpansionError, load_bounded
from monitor.errors import ConfigError, ConfigProblem

__all__ = ["BasicAuth", "WebConfig", "load_web_config"]

_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version"}
_TOP_KEYS = {"tls_server_config", "basic_auth_users", "http_server_config"}


@dataclass
class BasicAuth:
    """``basic_auth_users``: user -> bcrypt hash, with a cache of verified passwords."""

    users: Mapping[str, bytes]
    _verified: set[tuple[str, bytes]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def allows(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries a listed user and its password."""
        if not authorization or not authorization.startswith("Basic "):
            return False
        try:
            user, _, password = (
                base64.b64decode(authorization[6:], validate=True).decode("utf-8").partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return False
        stored = self.users.get(user)
        if stored is None:
            bcrypt.checkpw(b"x", _dummy_hash())  # same cost for unknown users: no user probing
            return False
        digest = hashlib.sha256(password.encode()).digest()
        with self._lock:
            if any(hmac.compare_digest(d, digest) for u, d in self._verified if u == user):
                return True
        if not bcrypt.checkpw(password.encode(), stored):
            return False
        with self._lock:
            self._verified.add((user, digest))
        return True


@functools.cache
def _dummy_hash() -> bytes:
    # Made on first use, not at import: every daemon imports this module, few use auth.
    return bcrypt.hashpw(b"unused", bcrypt.gensalt(rounds=4))


@dataclass(frozen=True)
class WebConfig:
    """What the file asks of the HTTP server."""

    tls: ssl.SSLContext | None = None
    basic_auth: BasicAuth | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def load_web_config(path: Path) -> WebConfig:
    """Read and check the file; ``ConfigError`` naming ``http.web_config_file.<key>``."""
    where = "http.web_config_file"
    try:
        data = load_bounded(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _error(
            where, f"cannot read {path}: {exc.strerror or exc}", "check the path"
        ) from None
    except (AliasExpansionError, ValueError, yaml.YAMLError) as exc:
        raise _error(
            where, f"{path} is not valid YAML: {exc}", "see the exporter-toolkit format"
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _error(where, "the file must hold a mapping", "see the exporter-toolkit format")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise _error(
            f"{where}.{unknown[0]}",
            "unknown key",
            f"supported: {', '.join(sorted(_TOP_KEYS))}",
        )
    base = path.resolve().parent
    tls = _tls(data.get("tls_server_config"), base, f"{where}.tls_server_config")
    auth = _users(data.get("basic_auth_users"), f"{where}.basic_auth_users")
    headers = _headers(data.get("http_server_config"), f"{where}.http_server_config")
    return WebConfig(tls, auth, headers)


def _tls(section: Any, base: Path, where: str) -> ssl.SSLContext | None:
    if section is None:
        return None
    if not isinstance(section, dict):
        raise _error(where, "must be a mapping", "set cert_file and key_file")
    unknown = sorted(set(section) - _TLS_KEYS)
    if unknown:
        raise _error(f"{where}.{unknown[0]}", "unknown key", f"supported: {sorted(_TLS_KEYS)}")
    for key in ("cert_file", "key_file"):
        if not isinstance(section.get(key), str):
            raise _error(f"{where}.{key}", "required", "the PEM file's path")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    version = section.get("min_version", "TLS12")
    if version not in _VERSIONS:
        raise _error(f"{where}.min_version", f"unknown version {version!r}", "TLS12 or TLS13")
    context.minimum_version = _VERSIONS[version]
    cert, key = base / section["cert_file"], base / section["key_file"]
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise _error(
            f"{where}.cert_file", f"cannot load {cert} with {key}: {exc}", "PEM certificate and key"
        ) from None
    auth_type = section.get("client_auth_type", "NoClientCert")
    if auth_type not in _CLIENT_AUTH:
        raise _error(
            f"{where}.client_auth_type", f"unknown {auth_type!r}", f"one of {list(_CLIENT_AUTH)}"
        )
    context.verify_mode = _CLIENT_AUTH[auth_type]
    ca = section.get("client_ca_file")
    if ca is not None:
        try:
            context.load_verify_locations(base / ca)
        except (OSError, ssl.SSLError) as exc:
            raise _error(
                f"{where}.client_ca_file", f"cannot load {base / ca}: {exc}", "PEM CAs"
            ) from None
    elif context.verify_mode != ssl.CERT_NONE:
        raise _error(
            f"{where}.client_ca_file", f"required with {auth_type}", "the CA that signs clients"
        )
    return context


def _users(section: Any, where: str) -> BasicAuth | None:
    if section is None:
        return None
    if not isinstance(section, dict) or not section:
        raise _error(where, "must map user names to bcrypt hashes", "e.g. `prometheus: $2y$...`")
    users: dict[str, bytes] = {}
    for user, hashed in section.items():
        text = str(hashed)
        if not text.startswith(("$2a$", "$2b$", "$2y$")):
            raise _error(
                f"{where}.{user}",
                "not a bcrypt hash",
                "hash the password: htpasswd -nBC 10 \"\" | tr -d ':'",
            )
        users[str(user)] = text.encode()
    return BasicAuth(users)


def _headers(section: Any, where: str) -> dict[str, str]:
    if section is None:
        return {}
    if not isinstance(section, dict) or set(section) - {"headers"}:
        raise _error(
            where, "only `headers` is supported here", "e.g. headers: {X-Frame-Options: deny}"
        )
    headers = section.get("headers") or {}
    if not isinstance(headers, dict):
        raise _error(f"{where}.headers", "must be a mapping", "header name: value")
    return {str(k): str(v) for k, v in headers.items()}


def _error(path: str, message: str, hint: str) -> ConfigError:
    return ConfigError([ConfigProblem(path, message, hint)])
