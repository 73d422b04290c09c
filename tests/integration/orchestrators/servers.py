"""Real Prefect 3 and Airflow 3 instances on 127.0.0.1, for the orchestrator tests.

Both run from their own venv (:mod:`.venvs`), keep every file under a temporary
directory (SQLite database, logs, config) and send no telemetry. Each records how long
it took to come up and to stop, so the test can print the figures CI cares about.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.integration.orchestrators.processes import Spawned
from tests.integration.orchestrators.venvs import Venv
from tests.support.net import free_port

ASSETS = Path(__file__).parent / "assets"
_FOREIGN_PREFIXES = ("PREFECT_", "AIRFLOW_", "AIRFLOW__", "VIRTUAL_ENV", "PYTHON")


def base_env(venv: Venv, received: Path) -> dict[str, str]:
    """The test's environment without anything that could steer the orchestrator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}
    env["PATH"] = f"{venv.bin}{os.pathsep}{env.get('PATH', '')}"
    env["DO_NOT_TRACK"] = "1"
    env["DRIFTMON_RECEIVED_DIR"] = str(received)
    return env


def poll(what: str, check: Callable[[], Any], timeout: float, proc: Spawned) -> Any:
    """Call ``check`` until it returns something truthy; fail with the server's log."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not proc.running():
            raise AssertionError(f"{proc.argv[0]} exited while waiting for {what}:\n{proc.tail()}")
        try:
            result = check()
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            last, result = exc, None
        if result:
            return result
        time.sleep(0.25)
    message = f"timed out after {timeout}s waiting for {what} ({last!r})"
    raise AssertionError(f"{message}:\n{proc.tail()}")


# --- Prefect 3 ---------------------------------------------------------------------------


class PrefectServer:
    """``prefect server start`` plus a process serving the ``driftmon-test`` deployment."""

    FLOW = "driftmon-retrain"
    DEPLOYMENT = "driftmon-test"

    def __init__(self, venv: Venv, workdir: Path) -> None:
        self.venv = venv
        self.workdir = workdir
        self.received = workdir / "received"
        self.received.mkdir(parents=True)
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.env = base_env(venv, self.received) | {
            "PREFECT_HOME": str(workdir / "prefect-home"),
            "PREFECT_API_URL": self.api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",  # the default 10 s dominates run latency
        }
        self.server: Spawned | None = None
        self.runner: Spawned | None = None
        self.deployment_id = ""
        self.timings: dict[str, float] = {}

    def start(self, timeout: float = 240.0) -> PrefectServer:
        started = time.monotonic()
        self.server = Spawned(
            [
                str(self.venv.bin / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],  # fmt: skip
            env=self.env,
            cwd=self.workdir,
            log=self.workdir / "prefect-server.log",
        )
        poll(
            "Prefect /api/health",
            lambda: httpx.get(f"{self.api}/health", timeout=2).json() is True,
            timeout,
            self.server,
        )
        self.timings["server_up_seconds"] = time.monotonic() - started
        self.runner = Spawned(
            [str(self.venv.bin / "python"), str(ASSETS / "retrain_flow.py")],
            env=self.env,
            cwd=self.workdir,
            log=self.workdir / "prefect-serve.log",
        )

        def deployment() -> str:
            url = f"{self.api}/deployments/name/{self.FLOW}/{self.DEPLOYMENT}"
            response = httpx.get(url, timeout=2)
            return str(response.json()["id"]) if response.status_code == 200 else ""

        self.deployment_id = poll("the served deployment", deployment, timeout, self.runner)
        self.timings["deployment_up_seconds"] = time.monotonic() - started
        return self

    def flow_runs(self) -> list[dict[str, Any]]:
        """Every flow run of the test deployment."""
        body = {"deployments": {"id": {"any_": [self.deployment_id]}}}
        response = httpx.post(f"{self.api}/flow_runs/filter", json=body, timeout=5)
        response.raise_for_status()
        runs: list[dict[str, Any]] = response.json()
        return runs

    def flow_run(self, run_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.api}/flow_runs/{run_id}", timeout=5)
        response.raise_for_status()
        run: dict[str, Any] = response.json()
        return run

    def stop(self) -> None:
        """SIGTERM the runner, then the server; each must exit with all its children."""
        started = time.monotonic()
        for proc in (self.runner, self.server):
            if proc is not None:
                proc.stop(signal.SIGTERM, grace_seconds=20)
        self.timings["stop_seconds"] = time.monotonic() - started

    @property
    def leftovers(self) -> list[int]:
        return [pid for p in (self.runner, self.server) if p is not None for pid in p.leftovers]


# --- Airflow 3 ---------------------------------------------------------------------------


class AirflowStandalone:
    """``airflow standalone`` (api-server, scheduler, dag-processor, triggerer) on SQLite.

    The user ``driftmon`` (role admin) is declared in config and its password written to
    the simple auth manager's password file before start, so no generated password has to
    be scraped from the output. The log servers, fixed at 8793/8794 by default, get free
    ports too, so a second Airflow on the machine does not clash.
    """

    DAG_ID = "driftmon_retrain"
    USER = "driftmon"

    def __init__(self, venv: Venv, workdir: Path) -> None:
        self.venv = venv
        self.workdir = workdir
        self.home = workdir / "airflow-home"
        self.dags = self.home / "dags"
        self.dags.mkdir(parents=True)
        (self.dags / "driftmon_retrain.py").write_text(
            (ASSETS / "dags" / "driftmon_retrain.py").read_text()
        )
        self.received = workdir / "received"
        self.received.mkdir()
        self.password = "driftmon-" + os.urandom(8).hex()
        passwords = self.home / "passwords.json"
        passwords.write_text(json.dumps({self.USER: self.password}))
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = base_env(venv, self.received) | {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__PARALLELISM": "2",  # the default 32 forks 32 idle workers
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            # A busy SQLite file can hold the api-server for seconds; the default 5 s
            # client timeout then fails the task before it starts (seen on a loaded box).
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        }
        self.process: Spawned | None = None
        self.timings: dict[str, float] = {}
        self._token = ""

    def start(self, timeout: float = 300.0) -> AirflowStandalone:
        started = time.monotonic()
        self.process = Spawned(
            [str(self.venv.bin / "airflow"), "standalone"],
            env=self.env,
            cwd=self.workdir,
            log=self.workdir / "airflow-standalone.log",
        )
        poll(
            "Airflow /api/v2/monitor/health",
            lambda: httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=2).is_success,
            timeout,
            self.process,
        )
        self.timings["api_up_seconds"] = time.monotonic() - started

        def dag_ready() -> bool:
            response = self.get(f"/api/v2/dags/{self.DAG_ID}")
            return response.status_code == 200 and response.json()["is_paused"] is False

        poll("the DAG parsed and unpaused", dag_ready, timeout, self.process)
        self.timings["dag_ready_seconds"] = time.monotonic() - started
        return self

    def token(self) -> str:
        if not self._token:
            response = httpx.post(
                f"{self.base_url}/auth/token",
                json={"username": self.USER, "password": self.password},
                timeout=5,
            )
            response.raise_for_status()
            self._token = str(response.json()["access_token"])
        return self._token

    def get(self, path: str) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token()}"}
        return httpx.get(f"{self.base_url}{path}", headers=headers, timeout=5)

    def dag_runs(self) -> list[dict[str, Any]]:
        response = self.get(f"/api/v2/dags/{self.DAG_ID}/dagRuns")
        response.raise_for_status()
        runs: list[dict[str, Any]] = response.json()["dag_runs"]
        return runs

    def stop(self) -> None:
        """SIGINT to ``standalone``, which stops its components and their workers."""
        started = time.monotonic()
        if self.process is not None:
            self.process.stop(signal.SIGINT, grace_seconds=60)
        self.timings["stop_seconds"] = time.monotonic() - started

    @property
    def leftovers(self) -> list[int]:
        return list(self.process.leftovers) if self.process is not None else []
