"""The dress rehearsal: every DAG run of the plan, in calendar order, in this process.

Each run goes through ``dag.test()``, so Airflow itself runs the tasks, in the
order and with the dependencies the scheduler would use, against the configured
connections. Runs are idempotent, so a second window continues where the first
stopped, and replaying a window again changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from poco_migration.config_files import PROJECT
from poco_migration.dag_common import REHEARSAL_ENV, SHUTDOWN_DAG_ID, SYNC_DAG_ID, cutover_dag_id, utc
from poco_migration.plan import Plan

DAGS_FOLDER = PROJECT / "dags"
NOTHING_CHANGED = "nothing changed"
# Said before the first run, so that its wait is not silent. Measured (README, "The two commands"):
# preparing takes a few seconds; the first run pays, once per process, for Great Expectations'
# import and the start of Airflow's in-process task API, besides whatever it moves.
PREPARING = (
    "preparing Airflow's metadata database and parsing the DAGs; the first run also loads Great Expectations "
    "and starts Airflow's task API, once per process, so it takes longer"
)


@dataclass(frozen=True)
class PlannedRun:
    day: dt.date
    dag_id: str


@dataclass(frozen=True)
class RunOutcome:
    run: PlannedRun
    state: str
    failed_tasks: tuple[str, ...]
    seconds: float
    moved: str  # what the run's moves changed, per domain (``_moved``)
    published: tuple[str, ...] = ()  # what its cutover or shutdown tasks published (``_published``)

    @property
    def summary(self) -> str:
        """The run's line after its timing: what its moves changed, then what it published; a
        run with nothing moved but something published (the shutdown) names only the latter."""
        moved = () if self.published and self.moved == NOTHING_CHANGED else (self.moved,)
        return "; ".join((*moved, *self.published))


def planned_runs(plan: Plan, start: dt.date | None = None, end: dt.date | None = None) -> Iterator[PlannedRun]:
    """The runs the scheduler would make, day by day: the sync, then that day's cutovers."""
    day, last = max(start or plan.start, plan.start), min(end or plan.shutdown, plan.shutdown)
    while day <= last:
        if plan.syncing_on(day):
            yield PlannedRun(day, SYNC_DAG_ID)
        for market in plan.cutovers():
            if market.cutover == day:
                yield PlannedRun(day, cutover_dag_id(market.market))
        if day == plan.shutdown:
            yield PlannedRun(day, SHUTDOWN_DAG_ID)
        day += dt.timedelta(days=1)


@contextmanager
def _rehearsing() -> Iterator[None]:
    """The DAGs parsed and run here are a rehearsal's: no retries, no deadlines (dag_common)."""
    previous = os.environ.get(REHEARSAL_ENV)
    os.environ[REHEARSAL_ENV] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[REHEARSAL_ENV]
        else:
            os.environ[REHEARSAL_ENV] = previous


def say_now(line: str) -> None:
    """Print and flush: piped into a log, a long rehearsal is not silent either."""
    print(line, flush=True)


def rehearse(
    plan: Plan,
    start: dt.date | None,
    end: dt.date | None,
    dags: Collection[str] | None = None,
    say: Callable[[str], None] = say_now,
) -> list[RunOutcome]:
    """Run the window's DAG runs in order (only those of ``dags``, if given: to replay some kinds
    of run without the others); every run is attempted, whatever the ones before did."""
    runs = [run for run in planned_runs(plan, start, end) if not dags or run.dag_id in dags]
    outcomes = []
    with _rehearsing():
        say(PREPARING)
        bag = _dag_bag()
        for done, run in enumerate(runs, start=1):
            outcome = _run(bag, run)
            outcomes.append(outcome)
            failed = ", ".join(outcome.failed_tasks)
            mark = "ok" if outcome.state == "success" else f"{outcome.state.upper()} ({failed})"
            left = len(runs) - done
            say(
                f"[{done}/{len(runs)}] {run.day} {run.dag_id}: {mark} in {outcome.seconds:.1f}s, {left} left; "
                + outcome.summary
            )
    return outcomes


def rerun(dag_id: str, day: dt.date) -> RunOutcome:
    """One DAG run again, as an operator's manual rerun without a scheduler: ``dag.test()``
    clears every task instance of the run and runs them all. Each task is idempotent, so
    this leaves the target as it was unless the source changed. (A subset DAG would rerun
    single tasks, but ``dag.test()`` then drops the run's other task instances from the
    metadata; to rerun one task, clear it in the UI and let the scheduler run it.)"""
    with _rehearsing():
        return _run(_dag_bag(), PlannedRun(day, dag_id))


def _dag_bag():
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.db import upgradedb

    upgradedb()
    logging.getLogger("airflow").setLevel(logging.WARNING)
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return bag


def _run(bag, run: PlannedRun) -> RunOutcome:
    """``dag.test()`` clears the run's task instances and runs them, with the dependencies
    the scheduler would use."""
    began, started = time.monotonic(), dt.datetime.now(dt.UTC)
    dag_run = bag.dags[run.dag_id].test(logical_date=utc(run.day))
    _dated_as_it_ran(dag_run, started)
    failed = tuple(_named(ti) for ti in dag_run.get_task_instances() if ti.state == "failed")
    seconds = time.monotonic() - began
    return RunOutcome(run, str(dag_run.state), failed, seconds, _moved(dag_run.run_id), _published(dag_run))


def _dated_as_it_ran(dag_run, started: dt.datetime) -> None:
    """``dag.test()`` records a run of 2024 as started at its logical date and ended now, which
    the UI shows as a run of two years ("Total: 704d 20h"), and as due now (``run_after``), which
    it shows as the latest run's date. The rehearsal writes down what happened instead: the run
    started when ``dag.test()`` began, and was due at its plan date, as a scheduler would have
    had it."""
    import sqlalchemy as sa
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        update = sa.update(DagRun).where(DagRun.id == dag_run.id)
        session.execute(update.values(start_date=started, run_after=dag_run.logical_date))


def _named(ti) -> str:
    """A task instance as the grid shows it: a mapped one with its market (``move[IT]``)."""
    if ti.map_index is None or ti.map_index < 0:
        return ti.task_id
    return f"{ti.task_id}[{ti.rendered_map_index or ti.map_index}]"


MOVE_COUNTS = ("inserted", "updated", "quarantined", "released")


def _moved(run_id: str) -> str:
    """What the run's moves changed, per domain, from the bookkeeping: ``points 12 inserted,
    3 updated; reviews 40 inserted, 1 quarantined``, or ``nothing changed``."""
    import sqlalchemy as sa

    from poco_migration import schemas
    from poco_migration.connections import TARGET_CONN_ID, engine_for

    m = schemas.moves
    sums = (sa.func.coalesce(sa.func.sum(m.c[name]), 0) for name in MOVE_COUNTS)
    query = sa.select(m.c.domain, *sums).where(m.c.run_id == run_id).group_by(m.c.domain)
    engine = engine_for(TARGET_CONN_ID)  # a new engine per call: let it go with its connections
    try:
        with engine.connect() as conn:
            changed = {domain: counts for domain, *counts in conn.execute(query).tuples()}
    finally:
        engine.dispose()
    parts = [
        f"{domain} " + ", ".join(f"{n} {name}" for name, n in zip(MOVE_COUNTS, changed[domain], strict=True) if n)
        for domain in schemas.DOMAINS
        if any(changed.get(domain, ()))
    ]
    return "; ".join(parts) or NOTHING_CHANGED


# What each publishing task returned (its XCom), as the run's line says it, in the order they
# run: a cutover audits, then writes its statements and publishes its redirects; the shutdown retires the app, archives,
# reports and audits. A task that failed or was skipped returned nothing and is not named.
PUBLISHED: dict[str, Callable[[dict[str, Any]], str]] = {
    "retire_app": lambda x: f"app retired: {len(x['checked'])} endpoints answer 410 Gone",
    "archive_source": lambda x: f"archive {x['path']} ({len(x['rows'])} tables, {sum(x['rows'].values())} rows)",
    "final_report": lambda x: f"drift {x['drift']}",
    "audit": lambda x: f"audit {x['verdict']} ({x['compared']} rows compared)",
    "statements": lambda x: f"statements {x['users']} users",
    "redirects": lambda x: f"redirects {x['redirects']} mapped, {x['probed']} probed, all answered one 301",
}


def _published(dag_run) -> tuple[str, ...]:
    """What the run's publishing tasks returned, from their XComs in Airflow's metadata database:
    only a task that passed its checks returns, so each value is a verified one."""
    from airflow.models.xcom import XCOM_RETURN_KEY, XComModel
    from airflow.utils.session import create_session

    query = XComModel.get_many(
        run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=list(PUBLISHED), key=XCOM_RETURN_KEY
    ).with_only_columns(XComModel.task_id, XComModel.value)
    with create_session() as session:
        returned = {row.task_id: XComModel.deserialize_value(row) for row in session.execute(query)}
    return tuple(show(returned[task]) for task, show in PUBLISHED.items() if returned.get(task))
