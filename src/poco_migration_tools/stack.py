"""docker-compose.yaml's Airflow as local processes: its own distributed engine, on this machine.

No Docker engine runs here, so the compose file's services are started as the programs they
run, from the compose file's own Airflow environment; only what names the containers
changes (``local_airflow.environment``): the hosts become this machine's PostgreSQL (for the
metadata and for ``poco_source`` / ``mi_target``) and Redis, the paths this checkout's. The
CeleryExecutor stays: the scheduler queues task instances on Redis, two Celery workers
(concurrency 1 each) run them, the triggerer runs deferred work and deadlines, the
dag-processor parses the DAGs and the api-server serves the UI, the API and the tasks'
execution API.

``python -m poco_migration_tools.stack`` (``scripts/stack.sh``) starts it on throw-away-free,
named databases, seeded on the first start, and stops every program (each in a session of
its own, so with all its children) on Ctrl-C, SIGTERM or ``--stop``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import yaml

from poco_migration.config_files import PROJECT
from poco_migration_tools.local_airflow import LocalAirflow, environment, free_port

COMPOSE = PROJECT / "docker-compose.yaml"
# The compose file's values that name its containers: replaced by this machine's.
CONTAINER_NAMES = ("AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW__CELERY__BROKER_URL", "AIRFLOW_CONN_MIGRATION_ALERTS")
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
# The compose file's users and their FAB roles: support agents read (Viewer), operators run the
# DAGs and pause, resume, roll back (User), administrators do everything (Admin).
USERS = {"admin": "Admin", "operator": "User", "support": "Viewer"}


def compose_environment() -> dict[str, str]:
    """The environment every Airflow service of the compose file shares, without what names
    its containers."""
    compose = yaml.safe_load(COMPOSE.read_text())
    env = {k: str(v) for k, v in compose["x-airflow"]["environment"].items()}
    return {k: v for k, v in env.items() if k not in CONTAINER_NAMES}


def stack_environment(
    home: Path,
    urls: Mapping[str, str],
    port: int,
    *,
    broker_url: str,
    executor: str = "CeleryExecutor",
    extra: Mapping[str, str] = {},
) -> dict[str, str]:
    """The compose environment made to run here: ``urls`` for ``airflow``, ``poco_source`` and
    ``mi_target``, Redis at ``broker_url``, the Celery results in the metadata database."""
    env = environment(home, urls, port, compose_environment())
    env |= {
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + urls["airflow"],
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        # A worker killed in the middle of a task: its task instance stops heartbeating, and
        # the scheduler hands it to the retries after this long instead of five minutes.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        # A scheduler killed and started again adopts its predecessor's tasks at the next check
        # (every 5 minutes by default), and a task whose message a restarted Redis lost is queued
        # again after this long (10 minutes by default): the faults a local stack is tried with.
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "20",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
        # A machine whose PostgreSQL (100 connections) serves the stack's databases and more:
        # Airflow's programs hold no idle metadata connections (a connection per use).
        "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_ENABLED": "False",
        "AIRFLOW__API__WORKERS": "1",
    }
    return env | dict(extra)


def start(airflow: LocalAirflow, port: int, workers: int = 2) -> None:
    """Every program of the compose stack: the services, then ``workers`` Celery workers."""
    for service in SERVICES:
        airflow.start(service, *(["--port", str(port)] if service == "api-server" else []))
    for n in range(1, workers + 1):
        start_worker(airflow, n)


def start_worker(airflow: LocalAirflow, n: int) -> Any:
    """Celery worker ``n`` (``worker<n>@<host>``), logging to ``worker<n>.log``. Its log server gets
    a free port (every worker would take 8793 otherwise); the api-server reads the task logs from
    the Airflow home that all the programs share on this machine."""
    log_server = {"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
    worker = ("worker", "--concurrency", "1", "--celery-hostname", f"worker{n}@%h")
    return airflow.start("celery", *worker, env=log_server, log=f"worker{n}")


class LocalRedis:
    """A Redis server of its own (a broker that a test or a measurement may restart), on a free
    port, keeping nothing on disk."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.home / "redis.log").open("a")
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.2)
        raise TimeoutError(
            f"redis-server did not listen on {self.port}: {(self.home / 'redis.log').read_text()[-2000:]}"
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None

    def __enter__(self) -> LocalRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_workers(airflow: LocalAirflow, count: int, timeout: float = 120) -> list[Any]:
    """Celery workers 1 to ``count``, once each has said it is ready for tasks."""
    logs = [airflow.home / f"worker{n}.log" for n in range(1, count + 1)]
    offsets = [log.stat().st_size if log.exists() else 0 for log in logs]
    started = [start_worker(airflow, n) for n in range(1, count + 1)]

    def ready() -> bool:
        return all(" ready." in log.read_text()[offset:] for log, offset in zip(logs, offsets, strict=True))

    airflow.wait_for(ready, f"{count} Celery workers ready", timeout)
    return started


def passwords(home: Path) -> dict[str, str]:
    """The compose file's users' passwords, made once and kept in ``<home>/passwords.json``."""
    path = home / "passwords.json"
    if not path.exists():
        path.write_text(json.dumps({user: secrets.token_urlsafe(12) for user in USERS}))
        path.chmod(0o600)
    return dict(json.loads(path.read_text()))


def prepare(airflow: LocalAirflow, users: Mapping[str, str]) -> None:
    """The metadata database migrated (FAB's tables with it), the users created in FAB with their
    roles (one already there is left as it is), and the roles given the dashboard."""
    _checked(airflow.cli("airflow", "db", "migrate"))
    for user, password in users.items():
        created = airflow.cli(
            "airflow", "users", "create", "--username", user, "--password", password, "--role", USERS[user],
            "--email", f"{user}@poco-migration.invalid", "--firstname", user, "--lastname", "POCO migration",
        )  # fmt: skip
        if created.returncode != 0 and "already exist" not in created.stdout + created.stderr:
            _checked(created)
    _checked(airflow.cli("poco-migration", "grant-dashboard"))


def _checked(done: Any) -> None:
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(done.args)}: exit {done.returncode}\n{(done.stdout + done.stderr)[-3000:]}")


def _named_databases(admin_url: str, prefix: str) -> dict[str, str]:
    """The stack's three databases on the local PostgreSQL, created when missing (kept between
    starts, unlike the tests' throw-away ones)."""
    import sqlalchemy as sa

    names = {role: f"{prefix}_{role}" for role in ("airflow", "poco_source", "mi_target")}
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        present: set[str] = set(conn.execute(sa.text("SELECT datname FROM pg_database")).scalars())
        for name in set(names.values()) - present:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    base = sa.make_url(admin_url)
    return {role: base.set(database=name).render_as_string(hide_password=False) for role, name in names.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/stack.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=PROJECT / "var" / "stack")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--broker", default=os.environ.get("POCO_STACK_BROKER", "redis://127.0.0.1:6379/5"))
    parser.add_argument(
        "--postgres", default=os.environ.get("POCO_STACK_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--scale", type=int, default=1000, help="the seed's scale on the first start")
    parser.add_argument("--stop", action="store_true", help="stop the stack started from this home")
    args = parser.parse_args(argv)
    pid_file = args.home / "stack.pid"
    if args.stop:
        return _stop(pid_file)
    args.home.mkdir(parents=True, exist_ok=True)
    urls = _named_databases(args.postgres, "poco_stack")
    env = stack_environment(args.home, urls, args.port, broker_url=args.broker)
    with LocalAirflow(args.home, env) as airflow:
        prepare(airflow, passwords(args.home))
        _seed_once(airflow, args.scale)
        start(airflow, args.port, args.workers)
        pid_file.write_text(str(os.getpid()))
        where = args.home / "passwords.json"
        print(f"POCO migration stack on http://127.0.0.1:{args.port}/ (users {', '.join(USERS)}; passwords: {where})")
        print(f"programs: {', '.join(SERVICES)} and {args.workers} Celery workers on {args.broker}")
        print(f"logs: {args.home}/*.log; Ctrl-C or scripts/stack.sh --stop stops them all")
        _wait_for_a_signal()
        print("stopping every program of the stack")
    pid_file.unlink(missing_ok=True)
    return 0


def _seed_once(airflow: LocalAirflow, scale: int) -> None:
    """The POCO source seeded on the first start (as the compose file's init does: a report that
    cannot be made means there is no source yet)."""
    if airflow.cli("poco-migration", "report").returncode != 0:
        _checked(airflow.cli("poco-migration", "seed", "--scale", str(scale)))


def _wait_for_a_signal() -> None:
    stop = {"now": False}

    def stopping(signum: int, frame: Any) -> None:
        stop["now"] = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stopping)
    while not stop["now"]:
        signal.pause()


def _stop(pid_file: Path) -> int:
    if not pid_file.exists():
        print(f"no stack is running from {pid_file.parent}")
        return 1
    os.kill(int(pid_file.read_text()), signal.SIGTERM)
    print(f"asked the stack (pid {pid_file.read_text()}) to stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
