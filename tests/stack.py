"""docker-compose.yaml's Airflow, started as local processes: no Docker engine runs here.

The environment of the compose file's Airflow services is taken as it is; only what
names the containers changes (``local_airflow.environment``): hosts and databases
become the local PostgreSQL's (throw-away databases), paths become this checkout's,
and the executor is the LocalExecutor (the compose stack's Celery workers need a
broker and the ``deploy`` extra; the scheduler, dag-processor and api-server are the
same programs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml
from conftest import REPO

from poco_migration_tools.local_airflow import LocalAirflow, environment

PROGRAMS = (("api-server", "--port"), ("scheduler", None), ("dag-processor", None))
# The compose file's services that do not run here: the alerts' sink and the broker.
NOT_HERE = ("AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW__CELERY__BROKER_URL", "AIRFLOW_CONN_MIGRATION_ALERTS")


@dataclass
class Stack:
    airflow: LocalAirflow
    base_url: str
    urls: dict[str, str]
    passwords: dict[str, str]

    def token(self, username: str = "admin") -> str:
        login = {"username": username, "password": self.passwords[username]}
        answer = requests.post(f"{self.base_url}/auth/token", json=login, timeout=30)
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def api(self, method: str, path: str, *, as_user: str = "admin", **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token(as_user)}"}
        return requests.request(method, f"{self.base_url}{path}", headers=headers, timeout=60, **kwargs)

    def cli(self, *args: str) -> Any:
        return self.airflow.cli(*args)

    def logs(self) -> str:
        return self.airflow.logs()

    def wait_for(self, check: Callable[[], Any], what: str, timeout: float) -> Any:
        return self.airflow.wait_for(check, what, timeout)

    def start(self, port: int) -> None:
        for program, port_flag in PROGRAMS:
            self.airflow.start(program, *([port_flag, str(port)] if port_flag else []))


def compose_environment() -> dict[str, str]:
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    env = {k: str(v) for k, v in compose["x-airflow"]["environment"].items()}
    return {k: v for k, v in env.items() if k not in NOT_HERE}


def local_environment(home: Path, urls: dict[str, str], port: int, password_file: Path) -> dict[str, str]:
    """The compose environment with the containers' names replaced by this machine's."""
    base = {**compose_environment(), "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file)}
    return environment(home, urls, port, base)
