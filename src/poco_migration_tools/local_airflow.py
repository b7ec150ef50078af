"""Airflow started as local processes on this machine (no Docker engine runs here).

One launcher for whoever needs a real Airflow beside a test or a measurement: the
stack test (``tests/stack.py``, from docker-compose.yaml's environment) and the
benchmark's scale-out run. Each program runs in a session of its own, logging to
``<home>/<program>.log``, so that stopping it stops every child it started.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from poco_migration.config_files import PROJECT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def airflow_uri(url: str) -> str:
    """The Airflow connection URI of a SQLAlchemy URL (Airflow knows no driver suffix)."""
    parsed = sa.make_url(url)
    return parsed.set(drivername=parsed.get_backend_name()).render_as_string(hide_password=False)


def environment(home: Path, urls: Mapping[str, str], port: int, base: Mapping[str, str] = {}) -> dict[str, str]:
    """``base`` (e.g. the compose file's Airflow environment) made to run here: the
    LocalExecutor, PostgreSQL ``urls`` for ``airflow``, ``poco_source`` and ``mi_target``,
    this checkout's DAGs, plugins and configuration, outputs under ``home``. Nothing of
    the caller's own Airflow or migration settings leaks in."""
    secret = secrets.token_hex(16)
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "POCO_MIGRATION"))}
    return {
        **keep,
        **base,
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__SECRET_KEY": secret,
        "AIRFLOW__API_AUTH__JWT_SECRET": secret,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": urls["airflow"],
        # The image has asyncpg for Airflow's async engine; here psycopg 3 serves both.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": urls["airflow"].replace("+psycopg:", "+psycopg_async:", 1),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
        "AIRFLOW_CONN_POCO_SOURCE": airflow_uri(urls["poco_source"]),
        "AIRFLOW_CONN_MI_TARGET": airflow_uri(urls["mi_target"]),
        "POCO_MIGRATION_PLAN": str(PROJECT / "config" / "plan.yaml"),
        "POCO_MIGRATION_REDIRECTS": str(PROJECT / "config" / "redirects.yaml"),
        "POCO_MIGRATION_EXPECTATIONS": str(PROJECT / "expectations"),
        "POCO_MIGRATION_DATA_DOCS": str(home / "data_docs"),
        "POCO_MIGRATION_OUTPUT": str(home / "output"),
        "POCO_MIGRATION_REPORT": str(home / "report.json"),
        "GX_ANALYTICS_ENABLED": "false",
        "PATH": f"{PROJECT / '.venv' / 'bin'}:{keep.get('PATH', '')}",
    }


@contextmanager
def databases(admin_url: str, names: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """Throw-away PostgreSQL databases (role -> name), created empty, dropped after."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = sa.make_url(admin_url)
    try:
        yield {role: base.set(database=name).render_as_string(hide_password=False) for role, name in names.items()}
    finally:
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class LocalAirflow:
    """Airflow programs started on one home and environment, stopped together."""

    home: Path
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # The latest process started under each log's name (``scheduler``, ``worker1``...).
    named: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(
        self, program: str, *args: str, env: Mapping[str, str] = {}, log: str | None = None
    ) -> subprocess.Popen[bytes]:
        """``airflow <program> <args>``, in a session of its own (so that its children stop with it),
        logging to ``<home>/<log or program>.log`` (appended to: a program started again keeps
        what it logged before)."""
        output = (self.home / f"{log or program}.log").open("a")
        process = subprocess.Popen(
            ["airflow", program, *args],
            env={**self.env, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        self.named[log or program] = process
        return process

    def cli(self, *args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
        """A command in the stack's environment (``airflow ...``, ``poco-migration ...``)."""
        return subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)

    def stop(self, process: subprocess.Popen[bytes] | None = None) -> None:
        """Stop one program, or all of them: SIGTERM to its session, SIGKILL after 30 s."""
        for running in [process] if process else list(self.processes):
            with suppress(ProcessLookupError):
                os.killpg(running.pid, signal.SIGTERM)
            try:
                running.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(running.pid, signal.SIGKILL)
                running.wait()
            self.processes.remove(running)

    def logs(self, tail: int = 4000) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text()[-tail:]}" for p in sorted(self.home.glob("*.log")))

    def wait_for(self, check: Callable[[], Any], what: str, timeout: float) -> Any:
        """Poll ``check`` until it returns something truthy (an error while polling counts as
        not yet); raise ``TimeoutError`` with the programs' logs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with suppress(Exception):
                if result := check():
                    return result
            time.sleep(1)
        raise TimeoutError(f"{what}: not within {timeout:.0f}s\n{self.logs()}")

    def __enter__(self) -> LocalAirflow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
