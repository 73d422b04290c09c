"""Standard Webhooks signing, verified with the reference ``standardwebhooks`` package."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from webhook_samples import ENV, RAW_SECRET, WHSEC, make_event, make_webhook

from monitor.errors import ConfigError
from monitor.webhooks.credentials import resolve_credentials
from monitor.webhooks.formats import generic
from monitor.webhooks.formats._base import RenderContext
from monitor.webhooks.signing import SigningKey, signature_headers


def test_whsec_key_verifies_with_standardwebhooks() -> None:
    key = SigningKey.from_secret(WHSEC)
    body = b'{"hello":"world"}'
    ts = int(time.time())
    headers = signature_headers(key, "evt-1", ts, body)
    assert headers["webhook-id"] == "evt-1"
    assert headers["webhook-timestamp"] == str(ts)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(WHSEC).verify(body, headers) == {"hello": "world"}


def test_raw_secret_is_its_utf8_bytes_and_whsec_form_verifies() -> None:
    key = SigningKey.from_secret(RAW_SECRET)
    assert key.whsec == "whsec_" + base64.b64encode(RAW_SECRET.encode()).decode()
    body = b"[1,2]"
    headers = signature_headers(key, "evt-2", int(time.time()), body)
    Webhook(key.whsec).verify(body, headers)
    Webhook(RAW_SECRET.encode()).verify(body, headers)  # the package also takes raw bytes


def test_signature_is_hmac_of_id_timestamp_body() -> None:
    import hashlib
    import hmac

    key = SigningKey.from_secret(RAW_SECRET)
    expected = hmac.new(RAW_SECRET.encode(), b"id.17.body", hashlib.sha256).digest()
    assert key.sign("id", 17, b"body") == "v1," + base64.b64encode(expected).decode()


def test_tampered_body_fails_verification() -> None:
    headers = signature_headers(SigningKey.from_secret(WHSEC), "e", int(time.time()), b"{}")
    with pytest.raises(WebhookVerificationError):
        Webhook(WHSEC).verify(b'{"x":1}', headers)


def test_unpadded_whsec_is_accepted_and_bad_base64_is_a_config_error() -> None:
    unpadded = WHSEC.rstrip("=")
    assert SigningKey.from_secret(unpadded).whsec == SigningKey.from_secret(WHSEC).whsec
    with pytest.raises(ConfigError, match="not base64"):
        SigningKey.from_secret("whsec_!!!not-base64!!!")


def test_key_never_in_repr() -> None:
    key = SigningKey.from_secret(RAW_SECRET)
    assert RAW_SECRET not in repr(key) and RAW_SECRET not in str(key)


def test_generic_request_verifies_unchanged() -> None:
    webhook = make_webhook("generic", secret_env="WH_SECRET")
    creds = resolve_credentials(webhook, ENV)
    request = generic.render(make_event(), RenderContext(webhook, creds, time.time()))
    payload = Webhook(WHSEC).verify(request.body, dict(request.headers))
    assert payload["id"] == "evt-0001"
    assert request.headers["webhook-id"] == "evt-0001"
    assert "***" in repr(request) and request.headers["webhook-signature"] not in repr(request)
