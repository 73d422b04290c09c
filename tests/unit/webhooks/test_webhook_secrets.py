"""Secrets from environment variables or files, and the Slack URL treated as a secret."""

from __future__ import annotations

import io
import logging
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
from standardwebhooks import Webhook
from webhook_samples import ENV, PASSWORD, TOKEN, WHSEC, make_event, make_webhook

from monitor.config import render_problems, validate_config
from monitor.errors import ConfigError
from monitor.log import configure_logging
from monitor.webhooks.credentials import basic_token, read_secret_file, resolve_credentials
from monitor.webhooks.delivery import WebhookDispatcher, send_test_event
from monitor.webhooks.formats import RenderContext, get_format
from tests.support.webhook_metrics import webhook_metrics

SLACK_TOKEN = "xoxbSLACKPATHTOKEN0123456789"
SLACK_URL = f"https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/{SLACK_TOKEN}"

BASE: dict[str, Any] = {
    "kafka": {"bootstrap_servers": "127.0.0.1:9092", "topics": ["ml.inference"]},
    "models": {
        "fraud": {
            "reference": {"capture_events": 1000},
            "window": {"events": 2000, "slide": 200},
            "features": {"amount": {"type": "numeric"}},
            "prediction": {"type": "numeric"},
        }
    },
}


def config_problems(hook: dict[str, Any]) -> list[tuple[str, str]]:
    """(key path, message) of every problem in a config with this one webhook."""
    with pytest.raises(ConfigError) as info:
        validate_config({**BASE, "webhooks": [{"name": "r", "url": "https://x.example/h", **hook}]})
    return [(p.path, p.message) for p in info.value.problems]


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


# --- config: exactly one of each pair ------------------------------------------------------


@pytest.mark.parametrize(
    ("hook", "path", "message"),
    [
        (
            {"secret_env": "S", "secret_file": "/run/s"},
            "webhooks.0.secret_env",
            "set only one of secret_env and secret_file",
        ),
        (
            {"auth": {"bearer_token_env": "T", "bearer_token_file": "/run/t"}},
            "webhooks.0.auth.bearer_token_env",
            "set only one of bearer_token_env and bearer_token_file",
        ),
        (
            {"auth": {"basic": {"username_env": "U"}}},
            "webhooks.0.auth.basic.password_env",
            "one of password_env or password_file is required",
        ),
        (
            {"auth": {"basic": {"username_env": "U", "username_file": "/u", "password_env": "P"}}},
            "webhooks.0.auth.basic.username_env",
            "set only one of username_env and username_file",
        ),
        (
            {"auth": {"header": {"name": "X-Api-Key"}}},
            "webhooks.0.auth.header.value_env",
            "one of value_env or value_file is required",
        ),
        (
            {"auth": {"header": {"name": "X-Api-Key", "value_env": "V", "value_file": "/v"}}},
            "webhooks.0.auth.header.value_env",
            "set only one of value_env and value_file",
        ),
        (
            {"auth": {"bearer_token_fiel": "/t"}},
            "webhooks.0.auth.bearer_token_fiel",
            "unknown key 'bearer_token_fiel'",
        ),
        (
            {"auth": {"bearer_token_file": ""}},
            "webhooks.0.auth.bearer_token_file",
            "",
        ),
    ],
)
def test_each_secret_is_named_by_exactly_one_of_env_or_file(
    hook: dict[str, Any], path: str, message: str
) -> None:
    found = config_problems(hook)
    assert len(found) == 1, found
    assert found[0][0] == path
    assert message in found[0][1]


def test_every_file_form_is_accepted_by_the_config() -> None:
    hook = {
        "name": "r",
        "url": "https://x.example/h",
        "secret_file": "/run/secrets/signing",
        "auth": {
            "bearer_token_file": "/run/secrets/token",
            "basic": {"username_env": "U", "password_file": "/run/secrets/password"},
            "header": {"name": "X-Api-Key", "value_file": "/run/secrets/key"},
        },
    }
    webhook = validate_config({**BASE, "webhooks": [hook]}).webhooks[0]
    assert webhook.secret_file == "/run/secrets/signing"
    assert webhook.auth is not None and webhook.auth.basic is not None
    assert webhook.auth.basic.password_file == "/run/secrets/password"


# --- resolution from files -----------------------------------------------------------------


def test_secrets_are_read_from_files_without_the_trailing_newline(tmp_path: Path) -> None:
    webhook = make_webhook(
        "airflow",
        url="http://af:8080",
        params={"dag_id": "retrain", "api_version": 1},
        secret_file=write(tmp_path / "signing", WHSEC + "\n"),
        auth={
            "basic": {
                "username_file": write(tmp_path / "user", "admin\r\n"),
                "password_file": write(tmp_path / "password", PASSWORD),
            },
            "header": {"name": "X-Api-Key", "value_file": write(tmp_path / "key", "k-123456\n")},
        },
    )
    creds = resolve_credentials(webhook, {})
    assert creds.basic == ("admin", PASSWORD)
    assert creds.header == ("X-Api-Key", "k-123456")
    assert creds.signing_key is not None and creds.signing_key.whsec == WHSEC
    request = get_format(webhook).render(make_event(), RenderContext(webhook, creds, 0.0))
    assert request.headers["authorization"] == "Basic " + basic_token("admin", PASSWORD)
    assert request.headers["X-Api-Key"] == "k-123456"


def test_bearer_token_file_and_env_give_the_same_request(tmp_path: Path) -> None:
    from_env = make_webhook("generic", auth={"bearer_token_env": "WH_TOKEN"})
    from_file = make_webhook(
        "generic", auth={"bearer_token_file": write(tmp_path / "token", TOKEN + "\n")}
    )
    rendered = [
        get_format(w).render(make_event(), RenderContext(w, resolve_credentials(w, ENV), 1.0))
        for w in (from_env, from_file)
    ]
    assert rendered[0].headers == rendered[1].headers
    assert rendered[1].headers["authorization"] == f"Bearer {TOKEN}"


def test_signing_key_from_a_file_verifies_with_standardwebhooks(tmp_path: Path) -> None:
    webhook = make_webhook("generic", secret_file=write(tmp_path / "whsec", WHSEC + "\n"))
    creds = resolve_credentials(webhook, {})
    request = get_format(webhook).render(make_event(), RenderContext(webhook, creds, time.time()))
    assert Webhook(WHSEC).verify(request.body, dict(request.headers))["id"] == "evt-0001"


def test_file_problems_name_the_key_and_path_but_no_value(tmp_path: Path) -> None:
    empty = write(tmp_path / "empty", "\n")
    directory = tmp_path / "dir"
    directory.mkdir()
    unreadable = tmp_path / "unreadable"
    unreadable.write_text(PASSWORD)
    unreadable.chmod(0)
    webhook = make_webhook(
        "generic",
        secret_file=str(tmp_path / "missing"),
        auth={
            "bearer_token_file": empty,
            "basic": {"username_file": str(directory), "password_file": str(unreadable)},
        },
    )
    with pytest.raises(ConfigError) as info:
        resolve_credentials(webhook, {}, index=2)
    found = {p.path: p.message for p in info.value.problems}
    assert found["webhooks[2].secret_file"] == f"secret file {tmp_path / 'missing'} does not exist"
    assert found["webhooks[2].auth.bearer_token_file"] == f"secret file {empty} is empty"
    assert (
        found["webhooks[2].auth.basic.username_file"] == f"secret file {directory} is a directory"
    )
    if os.geteuid() != 0:  # root reads any file
        assert "not readable" in found["webhooks[2].auth.basic.password_file"]
    assert PASSWORD not in str(info.value)


def test_a_missing_secret_file_stops_the_dispatcher_at_start(tmp_path: Path) -> None:
    webhook = make_webhook("generic", secret_file=str(tmp_path / "nope"))
    dispatcher = WebhookDispatcher([webhook], state_dir=None, metrics=webhook_metrics(), env={})
    with pytest.raises(ConfigError, match=r"webhooks\[0\]\.secret_file"):
        dispatcher.start()


def test_read_secret_file_keeps_inner_whitespace(tmp_path: Path) -> None:
    assert read_secret_file(write(tmp_path / "s", " a b \n")) == " a b "
    assert read_secret_file(write(tmp_path / "s", "two\nlines\n")) == "two\nlines"


# --- the Slack URL is a secret ---------------------------------------------------------------


def test_slack_url_is_masked_in_config_and_request_reprs() -> None:
    webhook = make_webhook("slack", url=SLACK_URL)
    assert SLACK_TOKEN not in repr(webhook) and SLACK_TOKEN not in str(webhook)
    assert "https://hooks.slack.com/***" in repr(webhook)
    assert webhook.display_url == "https://hooks.slack.com/***"
    creds = resolve_credentials(webhook, {})
    assert SLACK_TOKEN not in repr(creds)
    request = get_format(webhook).render(make_event(), RenderContext(webhook, creds, 0.0))
    assert request.url == SLACK_URL  # sent as configured
    assert SLACK_TOKEN not in repr(request) and "T0ABCDEF1" not in repr(request)
    # Any other format's URL is shown as it is.
    other = make_webhook("generic", url="https://x.example/hook?a=1")
    assert other.display_url == "https://x.example/hook?a=1"


@pytest.mark.parametrize(
    "url", ["https://user:pa55word@x.example/hook", "http://user@x.example/h", "http://:pw@x/h"]
)
def test_credentials_in_a_webhook_url_are_refused(url: str) -> None:
    """httpx would send them as Basic auth over a configured token, and a receiver that
    echoes headers would put the base64 in logs and the outbox: they belong in *_env."""
    with pytest.raises(pydantic.ValidationError) as info:
        make_webhook("generic", url=url, auth={"bearer_token_env": "T"})
    (error,) = info.value.errors()
    assert "credentials in the URL" in error["msg"]
    assert "auth.basic" in error["ctx"]["hint"]
    # What check-config and run print names the key and never the password.
    data = {
        "models": {
            "m": {
                "reference": {"capture_events": 100},
                "window": {"events": 10, "slide": 5},
                "features": {"x": {"type": "numeric"}},
            }
        },
        "webhooks": [{"name": "r", "url": url}],
    }
    with pytest.raises(ConfigError) as refused:
        validate_config(data)
    (problem,) = refused.value.problems
    assert problem.path == "webhooks.0.url"
    assert "pa55word" not in render_problems(refused.value)


def test_slack_url_never_reaches_logs_or_test_results(caplog: pytest.LogCaptureFixture) -> None:
    # A receiver that echoes the URL it was called on, in the body and in a redirect.
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(SLACK_TOKEN):
            return httpx.Response(404, text=f"no such hook: {request.url} ({request.url.path})")
        return httpx.Response(200)

    webhook = make_webhook("slack", url=SLACK_URL, retry={"max_attempts": 1})
    result = send_test_event(webhook, {}, transport=httpx.MockTransport(handler))
    assert not result.ok and result.status == 404
    assert SLACK_TOKEN not in result.describe() and "T0ABCDEF1" not in result.describe()

    dispatcher = WebhookDispatcher(
        [webhook],
        state_dir=None,
        metrics=webhook_metrics(),
        env={},
        transport=httpx.MockTransport(handler),
    )
    with caplog.at_level(logging.DEBUG):
        dispatcher.start()
        dispatcher.submit(make_event("e-slack"))
        assert dispatcher.flush(5.0)
        dispatcher.stop(2.0)
    assert "rejected event e-slack" in caplog.text
    assert "no such hook" in caplog.text and SLACK_TOKEN not in caplog.text

    # start() registered the URL with driftmon's log handler: even a line that quotes it
    # verbatim, from any module, is masked.
    root = logging.getLogger("monitor")
    saved = (root.handlers[:], root.propagate, root.level)
    root.handlers.clear()
    stream = io.StringIO()
    try:
        configure_logging("debug", "text", stream)
        logging.getLogger("monitor.anywhere").warning("posting to %s", SLACK_URL)
    finally:
        root.handlers[:], root.propagate = saved[0], saved[1]
        root.setLevel(saved[2])
    assert "posting to" in stream.getvalue() and SLACK_TOKEN not in stream.getvalue()


# --- rotation ----------------------------------------------------------------------------------


def test_a_rotated_token_file_is_used_from_the_next_attempt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("token-one-AAAA\n")
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200)

    webhook = make_webhook("generic", auth={"bearer_token_file": str(token_file)})
    dispatcher = WebhookDispatcher(
        [webhook],
        state_dir=None,
        metrics=webhook_metrics(),
        env={},
        transport=httpx.MockTransport(handler),
    )
    dispatcher.start()
    try:
        dispatcher.submit(make_event("e1"))
        assert dispatcher.flush(5.0)
        # The kubelet swaps the file atomically; a rename does the same here.
        rotated = tmp_path / "token.new"
        rotated.write_text("token-two-BBBBBB\n")
        rotated.replace(token_file)
        dispatcher.submit(make_event("e2"))
        assert dispatcher.flush(5.0)
        # A broken rotation keeps the last good token and says so, without the value.
        token_file.write_text("")
        with caplog.at_level(logging.WARNING, logger="monitor.webhooks"):
            dispatcher.submit(make_event("e3"))
            assert dispatcher.flush(5.0)
    finally:
        dispatcher.stop(2.0)
    assert seen == ["Bearer token-one-AAAA", "Bearer token-two-BBBBBB", "Bearer token-two-BBBBBB"]
    assert f"secret file {token_file} is empty" in caplog.text
    assert "keeping the previous secrets" in caplog.text
    assert "token-two-BBBBBB" not in caplog.text
