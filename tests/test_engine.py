"""The migration on its distributed engine: a window of a plan run by the scheduler and Celery
workers, through a worker killed while it stages and another while its checkpoints run, Redis
restarted and the scheduler killed and restarted, ends with the same target, row for row, as
the in-process rehearsal of the same window; a late cutover's deadline alert goes through the
triggerer to a webhook, exactly once.

A move is held at a chosen point by a lock the test takes on the table it is about to write
(PostgreSQL's ``LOCK TABLE``): the staging table while it stages, the checkpoints' table when it
records what its checkpoints found. So the fault lands where it is meant to, with no hook in the
code under test.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import PG_URL, _pg_admin
from stack import Stack
from test_rehearsal import checksum_by_source_ref
from webhook_sink import webhook_sink

from poco_migration.dag_common import cutover_dag_id
from poco_migration_tools.local_airflow import LocalAirflow, airflow_uri, databases, free_port
from poco_migration_tools.stack import LocalRedis, prepare, stack_environment

# One wave's daily syncs (7 and 8 October for IT, to the 9th for GL), IT's cutover on the 9th, GL's
# and the shutdown on the 10th.
PLAN = """
shutdown: 2024-10-10
max_quarantine_ratio: 0.05
waves:
  - name: engine
    start: 2024-10-07
    markets:
      - {market: IT, cutover: 2024-10-09}
      - {market: GL, cutover: 2024-10-10}
"""
SYNC, SHUTDOWN = "poco_migration_sync", "poco_migration_shutdown"
SEED = ("poco-migration", "seed", "--scale", "300", "--seed", "11")


@pytest.fixture(scope="module")
def window(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """The in-process rehearsal's checksums, and the stack, seeded alike, not started yet."""
    if _pg_admin() is None:
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL}")
    home = tmp_path_factory.mktemp("engine")
    (home / "plan.yaml").write_text(PLAN)
    passwords = {"admin": uuid.uuid4().hex}
    roles = ("airflow", "poco_source", "mi_target", "rehearsed_source", "rehearsed_target")
    names = {role: f"engine_{role}_{uuid.uuid4().hex[:8]}" for role in roles}
    port = free_port()
    with databases(PG_URL, names) as urls, LocalRedis(home) as redis, webhook_sink() as (sink, alerts):
        extra = {"POCO_MIGRATION_PLAN": str(home / "plan.yaml"), "AIRFLOW_CONN_MIGRATION_ALERTS": sink}
        env = stack_environment(home, urls, port, broker_url=redis.url, extra=extra)
        rehearsed = _rehearsed(home, env, urls)
        with LocalAirflow(home, env) as airflow:
            stack = Stack(airflow, f"http://127.0.0.1:{port}", urls, passwords, redis, port)
            prepare(airflow, passwords)
            assert (done := stack.cli(*SEED)).returncode == 0, done.stderr[-3000:]
            yield {"stack": stack, "rehearsed": rehearsed, "alerts": alerts, "home": home}


def _rehearsed(home: Path, env: dict[str, str], urls: dict[str, str]) -> dict[str, str]:
    """The same window rehearsed in one process (``dag.test()``), on databases and an Airflow
    metadata database of its own: the target the engine must end with."""
    own = home / "rehearsal"
    own.mkdir()
    rehearsal = {k: v for k, v in env.items() if k != "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"} | {
        "AIRFLOW_HOME": str(own),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{own / 'airflow.db'}",
        "AIRFLOW_CONN_POCO_SOURCE": airflow_uri(urls["rehearsed_source"]),
        "AIRFLOW_CONN_MI_TARGET": airflow_uri(urls["rehearsed_target"]),
        "POCO_MIGRATION_OUTPUT": str(own / "output"),
        "POCO_MIGRATION_DATA_DOCS": str(own / "data_docs"),
        "AIRFLOW_CONN_MIGRATION_ALERTS": "",
    }
    for command in (("airflow", "db", "migrate"), SEED, ("poco-migration", "rehearse")):
        done = subprocess.run(command, env=rehearsal, capture_output=True, text=True, timeout=900, check=False)
        assert done.returncode == 0, f"{command}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    target = sa.create_engine(urls["rehearsed_target"])
    try:
        return checksum_by_source_ref(target)
    finally:
        target.dispose()


@contextmanager
def locked(url: str, table: str) -> Iterator[sa.Connection]:
    """Hold ``table`` locked against every other access until the block ends."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        conn.execute(sa.text(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE'))  # the test's own name
        yield conn
        conn.rollback()
    engine.dispose()


def waiting_on(url: str, table: str) -> bool:
    """Whether some session waits for the lock on ``table`` (a move held where the test wants it)."""
    query = sa.text(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE NOT l.granted AND c.relname = :t"
    )
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(query, {"t": table}).scalar_one())
    finally:
        engine.dispose()


def runs(stack: Stack, dag_id: str) -> list[dict[str, Any]]:
    return stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=logical_date").json()["dag_runs"]


def finished(stack: Stack, dag_id: str) -> list[str]:
    """The states of the DAG's runs once every run it has in the window has finished and the
    scheduler plans no other; empty before."""
    found = runs(stack, dag_id)
    planned = stack.api("GET", f"/api/v2/dags/{dag_id}").json()["next_dagrun_logical_date"]
    if not found or planned is not None or any(r["state"] not in ("success", "failed") for r in found):
        return []
    return [r["state"] for r in found]


def all_succeeded(stack: Stack, dag_id: str, what: str) -> None:
    states = stack.wait_for(lambda: finished(stack, dag_id), what, 900)
    assert set(states) == {"success"}, f"{dag_id}: {states}\n{stack.logs()}"


def unpause(stack: Stack, dag_id: str) -> None:
    assert stack.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False}).status_code == 200


def tries(stack: Stack, dag_id: str) -> dict[str, int]:
    """Each task instance's try number over the DAG's runs: a killed task shows its retries."""
    found = {}
    for run in runs(stack, dag_id):
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances"
        for ti in stack.api("GET", path).json()["task_instances"]:
            found[f"{run['logical_date'][:10]} {ti['task_id']}[{ti['map_index']}]"] = ti["try_number"]
    return found


def test_a_window_on_celery_survives_its_faults_and_ends_as_the_rehearsal(window) -> None:
    stack: Stack = window["stack"]
    target = stack.urls["mi_target"]
    stack.airflow.start("api-server", "--port", str(stack.port))
    for program in ("scheduler", "dag-processor", "triggerer"):
        stack.airflow.start(program)
    stack.restart("worker1")
    stack.wait_for(lambda: stack.api("GET", f"/api/v2/dags/{SYNC}").status_code == 200, "the DAGs parsed", 240)

    # A worker killed in the middle of a move (landed and staged, about to note its held rows):
    # worker1 is the only one, so the move is its own.
    with locked(target, "poco_migration_held"):
        unpause(stack, SHUTDOWN)
        unpause(stack, SYNC)
        stack.wait_for(lambda: waiting_on(target, "poco_migration_held"), "a move has staged", 300)
        stack.kill("worker1")
    stack.restart("worker2")
    # The other worker takes the retry; it is killed in turn while it records its checkpoints.
    with locked(target, "poco_migration_checkpoints"):
        stack.wait_for(lambda: waiting_on(target, "poco_migration_checkpoints"), "a move's checkpoints", 300)
        stack.kill("worker2")
    stack.restart("worker1")
    stack.restart("worker2")
    # Redis restarted, then the scheduler killed and restarted, while the syncs go on.
    stack.redis.stop()
    time.sleep(3)
    stack.redis.start()
    stack.kill("scheduler")
    time.sleep(3)
    stack.restart("scheduler")
    all_succeeded(stack, SYNC, "the syncs of 7 to 10 October")
    retried = {k: n for k, n in tries(stack, SYNC).items() if n > 1}
    assert sum(n - 1 for n in retried.values()) >= 2, retried  # each kill cost its task a try, and it passed

    # IT's cutover, late on purpose: its freeze waits until the deadline's alert has arrived.
    alerts = window["alerts"]
    late_it = "the cutover of IT is not done by the end of 2024-10-09"
    with locked(stack.urls["poco_source"], "poco_market_state"):
        unpause(stack, cutover_dag_id("IT"))
        stack.wait_for(lambda: any(a.get("error") == late_it for a in alerts), "IT's deadline alert", 300)
    all_succeeded(stack, cutover_dag_id("IT"), "IT's cutover")
    unpause(stack, cutover_dag_id("GL"))
    all_succeeded(stack, cutover_dag_id("GL"), "GL's cutover")
    all_succeeded(stack, SHUTDOWN, "the shutdown")

    engine = sa.create_engine(target)
    try:
        assert checksum_by_source_ref(engine) == window["rehearsed"]
    finally:
        engine.dispose()
    time.sleep(10)  # a second alert for the same deadline would have come by now
    late = [a for a in alerts if a.get("kind") == "late"]
    assert [a["error"] for a in late].count(late_it) == 1, late
    assert all(a["dag_id"] for a in late)
    # What the engine leaves in the metadata database shows real durations: seconds, not years.
    for dag_id in (SYNC, cutover_dag_id("IT"), SHUTDOWN):
        for run in runs(stack, dag_id):
            started, ended = (dt.datetime.fromisoformat(run[k]) for k in ("start_date", "end_date"))
            assert dt.timedelta(0) <= ended - started < dt.timedelta(minutes=15), (dag_id, run)


def test_the_in_process_rehearsal_leaves_real_durations_and_plan_dates(window) -> None:
    """``dag.test()`` recorded a run of 2024 as lasting two years and due today; the rehearsal
    writes down when it really started, and the plan date it was due."""
    metadata = sa.create_engine(f"sqlite:///{window['home'] / 'rehearsal' / 'airflow.db'}")
    query = sa.text("SELECT dag_id, logical_date, run_after, start_date, end_date FROM dag_run ORDER BY id")
    try:
        with metadata.connect() as conn:
            rows = conn.execute(query).all()
    finally:
        metadata.dispose()
    assert [(r.dag_id, r.logical_date[:10]) for r in rows] == [
        (SYNC, "2024-10-07"),
        (SYNC, "2024-10-08"),
        (SYNC, "2024-10-09"),
        (cutover_dag_id("IT"), "2024-10-09"),
        (cutover_dag_id("GL"), "2024-10-10"),
        (SHUTDOWN, "2024-10-10"),
    ]
    for row in rows:
        assert row.run_after == row.logical_date, row
        started, ended = (dt.datetime.fromisoformat(row._mapping[k]) for k in ("start_date", "end_date"))
        assert dt.timedelta(0) <= ended - started < dt.timedelta(minutes=5), row
