"""The exporter-toolkit web configuration file on the HTTP port (hardening, item 14):
TLS, basic auth with bcrypt hashes, extra headers, /status off; a real Prometheus
scrapes through TLS and basic auth; every bad file is a config error naming its key."""

from __future__ import annotations

import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import bcrypt
import httpx
import pytest
from prometheus_client import CollectorRegistry

from monitor.errors import ConfigError
from monitor.publish.health import Health
from monitor.publish.results import ResultsStore
from monitor.publish.server import Server
from monitor.publish.web_config import load_web_config
from tests.support.prometheus import PrometheusServer

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-scrape"


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl, as an operator would)."""
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def web_file(directory: Path, *, tls: bool = True, users: bool = True) -> Path:
    lines = []
    if tls:
        make_cert(directory)
        lines += ["tls_server_config:", "  cert_file: server.crt", "  key_file: server.key"]
    if users:
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        lines += ["basic_auth_users:", f"  prometheus: '{hashed}'"]
    lines += ["http_server_config:", "  headers: {X-Frame-Options: deny}"]
    path = directory / "web.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def serve(path: Path, **kw: object) -> Server:
    web = load_web_config(path)
    return Server(CollectorRegistry(), ResultsStore(), Health(), port=0, web=web, **kw)  # type: ignore[arg-type]


def test_tls_and_basic_auth_protect_every_endpoint(tmp_path: Path) -> None:
    with serve(web_file(tmp_path)) as server:
        assert server.url.startswith("https://")
        ca = ssl.create_default_context(cafile=tmp_path / "server.crt")
        for path in ("/metrics", "/healthz", "/readyz", "/status"):
            denied = httpx.get(server.url + path, verify=ca)
            assert denied.status_code == 401, path
            assert denied.headers["www-authenticate"] == 'Basic realm="driftmon"'
        wrong = httpx.get(server.url + "/metrics", verify=ca, auth=("prometheus", "nope"))
        assert wrong.status_code == 401
        other = httpx.get(server.url + "/metrics", verify=ca, auth=("root", PASSWORD))
        assert other.status_code == 401
        ok = httpx.get(server.url + "/metrics", verify=ca, auth=("prometheus", PASSWORD))
        assert ok.status_code == 200 and "driftmon" not in ok.headers.get("www-authenticate", "")
        assert ok.headers["x-frame-options"] == "deny"
        again = httpx.get(server.url + "/healthz", verify=ca, auth=("prometheus", PASSWORD))
        assert again.text == "ok\n"
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port gets nowhere
            httpx.get(server.url.replace("https://", "http://") + "/healthz", timeout=3)


def test_status_can_be_turned_off(tmp_path: Path) -> None:
    with serve(web_file(tmp_path, tls=False, users=False), serve_status=False) as server:
        assert httpx.get(server.url + "/status").status_code == 404
        assert httpx.get(server.url + "/metrics").status_code == 200


def test_prometheus_scrapes_through_tls_and_basic_auth(
    tmp_path: Path, prometheus_server: Callable[..., PrometheusServer]
) -> None:
    with serve(web_file(tmp_path)) as server:
        scrape = {
            "scheme": "https",
            "tls_config": {"ca_file": str(tmp_path / "server.crt")},
            "basic_auth": {"username": "prometheus", "password": PASSWORD},
        }
        prom = prometheus_server([f"127.0.0.1:{server.port}"], scrape=scrape)
        up = prom.wait_for('up{job="driftmon"} == 1', timeout=30)
        assert up


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("tls_server_config: {cert_file: nope.crt, key_file: nope.key}\n",
         "http.web_config_file.tls_server_config.cert_file"),
        ("basic_auth_users: {prometheus: plain-text}\n",
         "http.web_config_file.basic_auth_users.prometheus"),
        ("tls_config: {}\n", "http.web_config_file.tls_config"),
        ("tls_server_config: {cert_file: a, key_file: b, client_auth_type: Maybe}\n",
         "http.web_config_file.tls_server_config.cert_file"),
    ],
)  # fmt: skip
def test_a_bad_web_config_names_its_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_web_config(path)
    (problem,) = info.value.problems
    assert problem.path == key and problem.hint


def test_check_config_loads_the_web_config_file(tmp_path: Path) -> None:
    (tmp_path / "web.yml").write_text("basic_auth_users: {prometheus: plain}\n")
    config = tmp_path / "driftmon.yaml"
    config.write_text(
        "kafka: {bootstrap_servers: '127.0.0.1:9', topics: [t]}\n"
        "http: {web_config_file: web.yml}\n"
        "models:\n  m:\n    reference: {capture_events: 100}\n"
        "    window: {events: 100, slide: 50}\n    features: {x: {type: numeric}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "http.web_config_file.basic_auth_users.prometheus" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
