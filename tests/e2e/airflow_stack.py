"""A real distributed Airflow for tests: Redis, api-server, scheduler, dag-processor, triggerer
and a Celery worker, each its own process, on the test databases.

Nothing is simulated: the scheduler schedules, the CeleryExecutor queues through a real
``redis-server``, the worker runs the tasks, and phases are triggered through the REST API
with a token from Airflow's own login, as the UI does. Used by ``test_celery.py`` and the
dashboard's browser test.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migration_ops.pools import write_pool_file
from tests.e2e.kill_harness import migrate_env

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "admin", "celery-test-password"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_binary() -> str:
    """``redis-server`` from the system packages (``.ci/run`` installs it)."""
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(found).exists():
        raise RuntimeError("redis-server is not installed: apt-get install redis-server")
    return found


@dataclass
class AirflowStack:
    """The processes of one distributed Airflow and how to talk to it."""

    workdir: Path
    env: dict[str, str]
    port: int
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    token: str = ""

    @property
    def url(self) -> str:
        """Base URL of the api-server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start one process (its own session, so it can be killed with its children)."""
        log = (self.workdir / "logs" / f"{name}.log").open("ab")
        proc = subprocess.Popen(  # noqa: S603 - our own commands
            list(args),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = proc
        return proc

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run one ``airflow`` CLI command to completion."""
        return subprocess.run(  # noqa: S603 - our own CLI
            [str(Path(sys.executable).with_name("airflow")), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )

    def start_worker(self, name: str = "worker") -> subprocess.Popen[bytes]:
        """A Celery worker with two task slots, as ``airflow celery worker`` in production."""
        airflow = str(Path(sys.executable).with_name("airflow"))
        return self.start(
            name,
            airflow,
            "celery",
            "worker",
            "--concurrency",
            "2",
            "--celery-hostname",
            f"{name}-{secrets.token_hex(3)}@%h",
            "--without-mingle",
            "--without-gossip",
        )

    def assert_alive(self) -> None:
        """Fail at once, naming the process and its log, when a component has died."""
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                log = self.workdir / "logs" / f"{name}.log"
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def kill(self, name: str) -> None:
        """SIGKILL a process and everything it started (a worker dies with its tasks)."""
        proc = self.processes.pop(name)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL for the slow ones)."""
        for name in list(self.processes):
            proc = self.processes[name]
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 20
        for name in list(self.processes):
            proc = self.processes[name]
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill(name)
        self.processes.clear()

    def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        """JSON request to the api-server; ``token`` defaults to the logged-in admin's."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310
        req.add_header("Content-Type", "application/json")
        bearer = self.token if token is None else token
        if bearer:
            req.add_header("Authorization", f"Bearer {bearer}")
        with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310 - loopback
            raw = response.read()
        return json.loads(raw) if raw else None

    def login(self) -> str:
        """A JWT from Airflow's own login endpoint (simple auth manager, real password)."""
        answer = self.request(
            "POST", "/auth/token", {"username": USER, "password": PASSWORD}, token=""
        )
        self.token = str(answer["access_token"])
        return self.token

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Trigger a DAG run through the REST API, as the UI's trigger button does."""
        answer = self.request(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}}
        )
        return str(answer["dag_run_id"])

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs, as the REST API reports them."""
        return list(self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"])

    def task_tries(self, dag_id: str, run_id: str) -> dict[str, list[dict[str, Any]]]:
        """Task id → its tries (state, hostname) in one DAG run."""
        tries: dict[str, list[dict[str, Any]]] = {}
        instances = self.request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=200"
        )["task_instances"]
        for ti in instances:
            path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/tries"
            tries[ti["task_id"]] = self.request("GET", path)["task_instances"]
        return tries


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 2) -> Any:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (urllib.error.URLError, ConnectionError, KeyError):
            value = None
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def stack_env(
    workdir: Path, pg_socket: str, legacy_db: str, target_db: str, port: int
) -> dict[str, str]:
    """The environment of every component: CeleryExecutor on Redis, real login."""
    redis_port = free_port()
    env = migrate_env(workdir, pg_socket, legacy_db, target_db)
    passwords = workdir / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}), encoding="utf-8")
    env.update(
        {
            "MIGRATION_TEST_REDIS_PORT": str(redis_port),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
            "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__CORE__FERNET_KEY": "",
            # A killed worker's task is noticed within a minute, not after the default 5.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__CORE__PARALLELISM": "8",
            # Log servers on free ports: other Airflow processes may run on this machine.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        }
    )
    return env


def start_stack(workdir: Path, pg_socket: str, legacy_db: str, target_db: str) -> AirflowStack:
    """Redis, metadata schema, pools, then every component and one worker; logged in."""
    port = free_port()
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    stack = AirflowStack(workdir, stack_env(workdir, pg_socket, legacy_db, target_db, port), port)
    redis_port = stack.env["MIGRATION_TEST_REDIS_PORT"]
    stack.start(
        "redis",
        redis_binary(),
        "--port",
        redis_port,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
    )
    stack.airflow("db", "migrate")
    stack.airflow("pools", "import", str(write_pool_file(workdir / "pools.json")))
    airflow = str(Path(sys.executable).with_name("airflow"))
    for component in COMPONENTS:
        extra = ("--port", str(port)) if component == "api-server" else ()
        stack.start(component, airflow, component, *extra)
    stack.start_worker()
    wait_for(lambda: stack.request("GET", "/api/v2/monitor/health", token=""), 180, "api-server")
    stack.login()
    return stack


def start_api_server(workdir: Path, pg_socket: str, legacy_db: str, target_db: str) -> AirflowStack:
    """Only the api-server (with the plugins) on a fresh metadata database; logged in."""
    port = free_port()
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    stack = AirflowStack(workdir, stack_env(workdir, pg_socket, legacy_db, target_db, port), port)
    stack.airflow("db", "migrate")
    airflow = str(Path(sys.executable).with_name("airflow"))
    stack.start("api-server", airflow, "api-server", "--port", str(port))
    wait_for(lambda: stack.request("GET", "/api/v2/monitor/health", token=""), 180, "api-server")
    stack.login()
    return stack
