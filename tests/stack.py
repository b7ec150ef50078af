"""docker-compose.yaml's Airflow, started as local processes on its real engine: no Docker
engine runs here, so ``poco_migration_tools.stack`` starts the compose file's programs from
its own environment, with throw-away PostgreSQL databases and a Redis of the test's own (so
that a test may restart it): the CeleryExecutor, two Celery workers, the scheduler, the
dag-processor, the triggerer and the api-server."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import psutil
import requests

from poco_migration_tools.local_airflow import LocalAirflow
from poco_migration_tools.stack import LocalRedis, start, start_worker


@dataclass
class Stack:
    airflow: LocalAirflow
    base_url: str
    urls: dict[str, str]
    passwords: dict[str, str]
    redis: LocalRedis
    port: int

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

    def start(self) -> None:
        start(self.airflow, self.port, workers=2)

    def kill(self, name: str) -> None:
        """SIGKILL a program and every process under it, as a machine failure would: its task
        processes too, which Airflow's supervisor puts in process groups of their own."""
        process = self.airflow.named[name]
        tree = [*psutil.Process(process.pid).children(recursive=True), psutil.Process(process.pid)]
        for member in tree:
            with suppress(psutil.NoSuchProcess):
                member.kill()
        psutil.wait_procs(tree, timeout=30)
        process.wait()
        self.airflow.processes.remove(process)

    def restart(self, name: str) -> None:
        """Start a program again after a kill (a worker by its name, ``worker<n>``)."""
        if name.startswith("worker"):
            start_worker(self.airflow, int(name.removeprefix("worker")))
        else:
            self.airflow.start(name)
