"""``airflow``: trigger a DAG run through the Airflow REST API.

Airflow 3 (API v2)::

    POST <base>/api/v2/dags/<dag_id>/dagRuns
    authorization: Bearer <token>
    {"dag_run_id": "driftmon__<event id>", "logical_date": null,
     "conf": {<params.conf>, <the generic drift payload>}, "note": "..."}

``logical_date`` is required by v2 even when null. The token is ``bearer_token_env``, or,
with ``auth.basic``, one fetched from ``POST <base>/auth/token`` with
``{"username", "password"}`` (``params.token_url`` overrides that URL) and refreshed after
a 401. Airflow 2 (API v1) takes the same body without ``logical_date`` and HTTP Basic
auth (or a bearer token).

``url`` is either the full ``.../api/v{1,2}/dags/<dag_id>/dagRuns`` endpoint or the
Airflow base URL together with ``params.dag_id`` and ``params.api_version`` (2, the
default, for Airflow 3; 1 for Airflow 2).

Success: 200 with ``state: "queued"``. 409 means the ``dag_run_id`` (the event id)
already exists, so an earlier attempt got through: counted as delivered.
"""

from __future__ import annotations

import re
from typing import Any

from monitor.errors import DeliveryRejected
from monitor.webhooks.config import WebhookConfig
from monitor.webhooks.event import DriftEvent
from monitor.webhooks.formats._base import (
    Format,
    RenderContext,
    WebhookRequest,
    WebhookResponse,
    auth_headers,
    dict_param,
    drift_payload,
    fail_status,
    json_body,
    only_params,
    sensitive,
    str_param,
    url_of,
)

_API_PATH = re.compile(r"/api/v(?P<version>[12])/dags/[^/]+/dagRuns$")
_RUN_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.~:+-]")  # Airflow's default allowed_run_id_pattern
_PARAMS = {"dag_id", "api_version", "conf", "note", "run_id_prefix", "token_url"}


def endpoint(webhook: WebhookConfig) -> tuple[str, int]:
    """The dagRuns URL and the REST API version (1 for Airflow 2, 2 for Airflow 3)."""
    url = url_of(webhook)
    dag_id = webhook.params.get("dag_id")
    if dag_id:
        version = int(webhook.params.get("api_version", 2))
        return f"{url}/api/v{version}/dags/{dag_id}/dagRuns", version
    match = _API_PATH.search(url)
    return url, int(match.group("version")) if match else 2


def dag_run_id(event: DriftEvent, webhook: WebhookConfig) -> str:
    """``<prefix><event id>``, with characters Airflow refuses replaced by ``_``."""
    prefix = str(webhook.params.get("run_id_prefix", "driftmon__"))
    return _RUN_ID_UNSAFE.sub("_", prefix + event.id)


def render(event: DriftEvent, ctx: RenderContext) -> WebhookRequest:
    """Render the dagRuns POST for API v2 (Airflow 3) or v1 (Airflow 2)."""
    url, version = endpoint(ctx.webhook)
    params = ctx.webhook.params
    conf: dict[str, Any] = {**params.get("conf", {}), **drift_payload(event)}
    default_note = f"driftmon: {event.kind} detected on {event.model} (event {event.id})"
    if event.test:
        default_note = "driftmon TEST event, not a real drift: " + default_note
    body: dict[str, Any] = {"dag_run_id": dag_run_id(event, ctx.webhook)}
    if version == 2:
        body["logical_date"] = None  # required key in v2; null lets Airflow choose
    body["conf"] = conf
    body["note"] = str(params.get("note", default_note))
    # v2 never takes Basic auth: the username/password are exchanged for a token.
    headers = {
        "content-type": "application/json",
        "user-agent": "driftmon-webhooks",
        **auth_headers(ctx, use_basic=version == 1),
    }
    return WebhookRequest("POST", url, headers, json_body(body), sensitive(ctx))


def token_request(ctx: RenderContext) -> WebhookRequest | None:
    """``POST /auth/token`` for Airflow 3 with username/password, else ``None``."""
    url, version = endpoint(ctx.webhook)
    creds = ctx.credentials
    if version != 2 or creds.basic is None or creds.bearer_token:
        return None
    token_url = ctx.webhook.params.get("token_url")
    if not token_url:
        base = url[: url.index("/api/v2/")] if "/api/v2/" in url else url_of(ctx.webhook)
        token_url = base + "/auth/token"
    body = json_body({"username": creds.basic[0], "password": creds.basic[1]})
    headers = {"content-type": "application/json", "user-agent": "driftmon-webhooks"}
    return WebhookRequest("POST", str(token_url), headers, body)


def parse_token(response: WebhookResponse) -> str:
    """The ``access_token`` of a 200/201 token response."""
    data = response.json()
    if response.status in (200, 201) and isinstance(data, dict):
        token = data.get("access_token")
        if isinstance(token, str) and token:
            return token
    raise fail_status(response, "201 with access_token from /auth/token")


def check(response: WebhookResponse) -> str:
    """200 with state queued, or 409 (this dag_run_id was already created)."""
    if response.status == 409:
        return "already triggered (409: dag_run_id exists)"
    data = response.json()
    if response.status == 200 and isinstance(data, dict):
        if data.get("state") == "queued":
            return f"dag run {data.get('dag_run_id')} queued"
        raise DeliveryRejected(f"HTTP 200 but state is not queued: {response.excerpt()}")
    raise fail_status(response, "200 with state queued, or 409")


def validate(webhook: WebhookConfig) -> list[tuple[str, str]]:
    """Either a full dagRuns URL or ``dag_id``; ``api_version`` 1 or 2."""
    problems: list[tuple[str, str]] = []
    only_params(webhook, _PARAMS, problems)
    dag_id = str_param(webhook, "dag_id", problems)
    if webhook.params.get("api_version", 2) not in (1, 2):
        problems.append(("api_version", "must be 2 (Airflow 3) or 1 (Airflow 2)"))
    if dag_id is None and not _API_PATH.search(url_of(webhook)):
        problems.append(
            ("dag_id", "is required unless url ends with /api/v2/dags/<dag_id>/dagRuns")
        )
    dict_param(webhook, "conf", problems)
    str_param(webhook, "note", problems)
    str_param(webhook, "run_id_prefix", problems)
    str_param(webhook, "token_url", problems)
    return problems


FORMAT = Format("airflow", render, check, validate, token_request, parse_token)
