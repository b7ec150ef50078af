"""docker-compose.yaml's Airflow, started as local processes: no Docker engine runs here.

The environment of the compose file's Airflow services is taken as it is; only what
names the containers changes: hosts and databases become the local PostgreSQL's
(throw-away databases), paths become this checkout's, and the executor is the
LocalExecutor (the compose stack's Celery workers need a broker and the ``deploy``
extra; the scheduler, dag-processor and api-server are the same programs).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
import yaml
from conftest import REPO, airflow_uri

ROLES = ("airflow", "poco_source", "mi_target")
PROGRAMS = (("api-server", "--port"), ("scheduler", None), ("dag-processor", None))


@dataclass
class Stack:
    base_url: str
    env: dict[str, str]
    urls: dict[str, str]
    password: str
    home: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def token(self) -> str:
        answer = requests.post(
            f"{self.base_url}/auth/token", json={"username": "admin", "password": self.password}, timeout=30
        )
        answer.raise_for_status()
        return answer.json()["access_token"]

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token()}"}
        return requests.request(method, f"{self.base_url}{path}", headers=headers, timeout=60, **kwargs)

    def cli(self, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
        return subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text()[-4000:]}" for p in sorted(self.home.glob("*.log")))


def compose_environment() -> dict[str, str]:
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    return {k: str(v) for k, v in compose["x-airflow"]["environment"].items()}


def local_environment(home: Path, urls: dict[str, str], port: int, password_file: Path) -> dict[str, str]:
    """The compose environment with the containers' names replaced by this machine's."""
    env = compose_environment()
    secret = secrets.token_hex(16)
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__SECRET_KEY": secret,
            "AIRFLOW__API_AUTH__JWT_SECRET": secret,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": urls["airflow"],
            # The image has asyncpg for Airflow's async engine; here psycopg 3 serves both.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": urls["airflow"].replace("+psycopg:", "+psycopg_async:", 1),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW_CONN_POCO_SOURCE": airflow_uri(urls["poco_source"]),
            "AIRFLOW_CONN_MI_TARGET": airflow_uri(urls["mi_target"]),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "POCO_MIGRATION_PLAN": str(REPO / "config" / "plan.yaml"),
            "POCO_MIGRATION_REDIRECTS": str(REPO / "config" / "redirects.yaml"),
            "POCO_MIGRATION_EXPECTATIONS": str(REPO / "expectations"),
            "POCO_MIGRATION_DATA_DOCS": str(home / "data_docs"),
            "POCO_MIGRATION_OUTPUT": str(home / "output"),
            "POCO_MIGRATION_REPORT": str(home / "report.json"),
        }
    )
    for key in ("AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW__CELERY__BROKER_URL", "AIRFLOW_CONN_MIGRATION_ALERTS"):
        env.pop(key)
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "POCO_MIGRATION"))}
    return {**keep, **env, "AIRFLOW_HOME": str(home / "airflow"), "PATH": f"{REPO / '.venv' / 'bin'}:{keep['PATH']}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def databases(admin_url: str, suffix: str) -> Iterator[dict[str, str]]:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    names = {role: f"stack_{role}_{suffix}" for role in ROLES}
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = sa.make_url(admin_url)
    try:
        yield {role: base.set(database=name).render_as_string(hide_password=False) for role, name in names.items()}
    finally:
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def start(stack: Stack, port: int) -> None:
    for program, port_flag in PROGRAMS:
        args = ["airflow", program, *([port_flag, str(port)] if port_flag else [])]
        log = (stack.home / f"{program}.log").open("w")
        stack.processes.append(
            subprocess.Popen(args, env=stack.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )


def stop(stack: Stack) -> None:
    for process in stack.processes:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
    for process in stack.processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)


def wait_for(check: Callable[[], Any], what: str, timeout: float, stack: Stack) -> Any:
    """Poll ``check`` until it returns something truthy; fail with the stack's logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(requests.RequestException):
            result = check()
            if result:
                return result
        time.sleep(1)
    raise AssertionError(f"{what}: not within {timeout:.0f}s\n{stack.logs()}")
