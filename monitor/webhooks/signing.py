"""Standard Webhooks signing (https://www.standardwebhooks.com/).

Every signed request carries three headers:

- ``webhook-id``: the drift event id, identical on every retry, so receivers can dedupe;
- ``webhook-timestamp``: integer Unix seconds of *this* attempt (receivers reject
  timestamps more than a few minutes old, so a retry is signed afresh);
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``.

Keys. The specification writes a key as ``whsec_`` followed by the base64 of the key
bytes; such a secret is decoded and used as is. Any other secret is a *raw secret*: its
UTF-8 bytes are the HMAC key. A receiver using the ``standardwebhooks`` package then
needs ``SigningKey.from_secret(raw).whsec`` (``"whsec_" + base64(raw)``), which
``driftmon webhook test`` can print for it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from monitor.errors import ConfigError

SECRET_PREFIX = "whsec_"  # noqa: S105 (the key format's prefix, not a secret)


class SigningKey:
    """An HMAC-SHA256 key. Its repr and str never show the key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ConfigError("webhook signing secret is empty")
        self._key = key

    @classmethod
    def from_secret(cls, secret: str) -> SigningKey:
        """Build a key from ``whsec_<base64>`` or from a raw secret (its UTF-8 bytes)."""
        if secret.startswith(SECRET_PREFIX):
            encoded = secret[len(SECRET_PREFIX) :]
            try:
                # Tolerate unpadded base64, as the reference implementations do.
                key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
            except (binascii.Error, ValueError):
                raise ConfigError(
                    "webhook signing secret starts with whsec_ but is not base64"
                ) from None
            return cls(key)
        return cls(secret.encode("utf-8"))

    @property
    def whsec(self) -> str:
        """The key in the specification's ``whsec_<base64>`` form (give this to receivers)."""
        return SECRET_PREFIX + base64.b64encode(self._key).decode("ascii")

    def sign(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """Return the ``v1,<base64>`` signature of ``{msg_id}.{timestamp}.{body}``."""
        to_sign = f"{msg_id}.{timestamp}.".encode() + body
        digest = hmac.new(self._key, to_sign, hashlib.sha256).digest()
        return "v1," + base64.b64encode(digest).decode("ascii")

    def secret_values(self) -> tuple[str, ...]:
        """Textual forms of the key that must be redacted wherever they could appear."""
        raw = self._key.decode("utf-8", errors="ignore")
        return tuple(v for v in (self.whsec, raw) if len(v) >= 4)

    def __repr__(self) -> str:
        return "SigningKey(***)"


def signature_headers(
    key: SigningKey | None, msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The Standard Webhooks headers; without a key only id and timestamp are sent."""
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    if key is not None:
        headers["webhook-signature"] = key.sign(msg_id, timestamp, body)
    return headers
