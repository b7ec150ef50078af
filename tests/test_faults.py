"""Crashes, dropped connections and concurrent runs lose nothing and credit nothing twice.

- A move's process is SIGKILLed at a seeded point (mid-landing, after staging, at the
  start and the end of the merge, between the merge and the reconciliation gate,
  after the bookkeeping before the commit); the rerun leaves the target equal to a
  clean run's (a digest of every Xiaomi and bookkeeping table, surrogate ids aside:
  PostgreSQL sequences are not transactional), with no row lost and none duplicated.
- A target connection terminated in the middle of a move, under ``dag.test()``: the
  task fails, Airflow retries it, and the retry completes the same result.
- Two runs of the same move at once: the second waits for the first's lock, then
  finds nothing new; every user's ledger sums to the converted balance, once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import multiprocessing
import random
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import faults
import pytest
import sqlalchemy as sa
from sources import (
    ACCOUNTS,
    INITIATIVES,
    PARTICIPANTS,
    PRODUCTS,
    REVIEWS,
    USERS,
    account,
    initiative,
    insert,
    linked_users,
    participant,
    product,
    review,
    user,
)
from tally import record

from poco_migration import schemas
from poco_migration.moves import MOVES, pipeline
from poco_migration.moves.pipeline import run_move
from poco_migration.moves.types import MoveRequest, MoveResult
from poco_migration.plan import load_plan

AS_OF = dt.datetime(2024, 10, 7, 2, 0)
PLAN = dataclasses.replace(load_plan(), max_quarantine_ratio=0.5)
DOMAINS = tuple(MOVES)
SEED = 20241007
TRIALS_PER_POINT = 2
# Rows of IT that each domain's move extracts from the source below.
EXTRACTED = {"points": 31, "reviews": 32, "initiatives": 7, "participants": 31}
MI_TABLES = (schemas.mi_points_ledger, schemas.mi_reviews, schemas.mi_initiatives, schemas.mi_initiative_participants)


def build_source(engine_: sa.Engine) -> None:
    """30 linked Italian users and one unlinked, with balances, reviews (one duplicate, one on
    an unmapped product), six active initiatives and one with invalid dates, 31 participants."""
    schemas.create_source(engine_)
    insert(engine_, USERS, *linked_users(1, 30), user(31, mi_account_id=None))
    insert(engine_, ACCOUNTS, *(account(u, 10 * u if u != 29 else -5) for u in range(1, 32)))
    insert(engine_, PRODUCTS, product("F6"), product("X1", mi_product_id=None))
    odd = [review(31, 1, body="Review 1"), review(32, 2, "X1")]  # a duplicate, an unmapped product
    insert(engine_, REVIEWS, *(review(r, r) for r in range(1, 31)), *odd)
    late = dt.datetime(2024, 8, 1)
    insert(engine_, INITIATIVES, *(initiative(i) for i in range(1, 7)), initiative(7, ends_at=late))
    insert(engine_, PARTICIPANTS, *(participant(i, u) for i in (1, 2, 3) for u in range(1, 11)), participant(7, 1))


def run(domain: str, source: sa.Engine, target_url: str) -> MoveResult:
    return run_move(MOVES[domain], MoveRequest(domain, "IT", PLAN, AS_OF), source, sa.make_url(target_url))


def content(target: sa.Engine) -> dict[str, list[tuple]]:
    """Every row a move writes, without surrogate ids and move ids (a participant's initiative
    is named by its source_ref), sorted: two targets with equal content hold the same data."""
    t = schemas.mi_initiatives
    skip = {"entry_id", "review_id", "initiative_id", "move_id"}
    tables = (*MI_TABLES, schemas.quarantine, schemas.points_balances, schemas.moved, schemas.watermarks)
    out = {}
    with target.connect() as conn:
        for table in tables:
            columns = [c for c in table.columns if c.name not in skip]
            if table is schemas.mi_initiative_participants:
                p = table.alias("p")
                ref = sa.select(t.c.source_ref).where(t.c.initiative_id == p.c.initiative_id).scalar_subquery()
                columns = [ref.label("initiative"), *(p.c[c.name] for c in columns)]
            out[table.name] = sorted(tuple(r) for r in conn.execute(sa.select(*columns)))
    return out


def digest(tables: dict[str, list[tuple]]) -> dict[str, str]:
    return {name: hashlib.sha256(repr(rows).encode()).hexdigest() for name, rows in tables.items()}


def placed(target: sa.Engine) -> list[tuple[str, str]]:
    """(domain, source_ref) of every row in a Xiaomi table or in the quarantine, duplicates kept."""
    q, m = schemas.quarantine, schemas.moved
    with target.connect() as conn:
        moved = conn.execute(sa.select(m.c.domain, m.c.source_ref)).tuples().all()
        quarantined = conn.execute(sa.select(q.c.domain, q.c.source_ref)).tuples().all()
        in_tables = [r for table in MI_TABLES for r in conn.execute(sa.select(table.c.source_ref)).scalars()]
    # The ledger's adjustments are extra entries of one account, not extra accounts.
    assert len(in_tables) == len(moved), "a Xiaomi row without its bookkeeping, or the reverse"
    return moved + quarantined


def double_credits(target: sa.Engine) -> int:
    """Users whose ledger entries do not sum to what the bookkeeping says they were credited."""
    ledger, b = schemas.mi_points_ledger, schemas.points_balances
    with target.connect() as conn:
        credited = dict(conn.execute(sa.select(b.c.user_id, b.c.credited)).all())
        sums: dict[int, int] = {}
        for ref, delta in conn.execute(sa.select(ledger.c.source_ref, ledger.c.delta)):
            user_id = int(ref.split(":")[2])
            sums[user_id] = sums.get(user_id, 0) + delta
    return sum(1 for user_id, total in sums.items() if credited.get(user_id) != total)


def assert_nothing_lost_or_doubled(target: sa.Engine, expected: dict[str, list[tuple]]) -> None:
    """Count against a clean run what is missing and what is there twice; record both."""
    refs = placed(target)
    wanted = {(d, r) for d, r in placed_from(expected)}
    lost = len(wanted - set(refs))
    duplicates = len(refs) - len(set(refs)) + double_credits(target)
    record("rows lost", lost)
    record("duplicates", duplicates)
    assert (lost, duplicates) == (0, 0)


def placed_from(tables: dict[str, list[tuple]]) -> list[tuple[str, str]]:
    moved = [(row[0], row[1]) for row in tables[schemas.moved.name]]
    quarantined = [(row[0], row[1]) for row in tables[schemas.quarantine.name]]
    return moved + quarantined


def reset_target(url: str) -> sa.Engine:
    target = sa.create_engine(url)
    schemas.BOOKKEEPING.drop_all(target)
    schemas.TARGET.drop_all(target)
    schemas.create_target(target)
    return target


@pytest.fixture(autouse=True)
def _no_data_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POCO_MIGRATION_DATA_DOCS", "off")


@pytest.fixture(scope="module")
def killer() -> multiprocessing.context.BaseContext:
    """Children forked from a fresh server process that has the engine and GX imported once."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["faults", "great_expectations"])
    return context


# The clean run's content per backend (the source is rebuilt identically for every trial).
CLEAN: dict[str, dict[str, list[tuple]]] = {}


def trials() -> list[tuple[str, str, int]]:
    """(point, domain, nth) of every trial: each point twice, domain and landed row seeded."""
    rng = random.Random(SEED)
    out = []
    for point in faults.POINTS:
        for _ in range(TRIALS_PER_POINT):
            domain = rng.choice(DOMAINS)
            nth = rng.randint(1, EXTRACTED[domain]) if point == "extract" else 1
            out.append((point, domain, nth))
    return out


@pytest.mark.parametrize(("point", "domain", "nth"), trials(), ids=[f"{p}-{d}-{n}" for p, d, n in trials()])
def test_a_killed_move_reruns_to_the_clean_result(point, domain, nth, db_urls, killer, request) -> None:
    backend = request.node.callspec.params["db_urls"]
    source = sa.create_engine(db_urls["source"])
    build_source(source)
    target = reset_target(db_urls["target"])
    if backend not in CLEAN:
        for each in DOMAINS:
            run(each, source, db_urls["target"])
        CLEAN[backend] = content(target)
        target = reset_target(db_urls["target"])
    for each in DOMAINS[: DOMAINS.index(domain)]:
        run(each, source, db_urls["target"])

    args = (db_urls["source"], db_urls["target"], domain, PLAN, AS_OF, point, nth)
    child = killer.Process(target=faults.killed_move, args=args)
    child.start()
    child.join(timeout=180)
    assert child.exitcode == -signal.SIGKILL, f"the child was not killed at {point} (exit code {child.exitcode})"
    record("faults injected")

    for each in DOMAINS:  # the retry of the killed task, and the rest of the run
        run(each, source, db_urls["target"])
    record("trials")
    assert_nothing_lost_or_doubled(target, CLEAN[backend])
    assert digest(content(target)) == digest(CLEAN[backend])


# --- a dropped connection, retried by Airflow ----------------------------------------------


def drop_connection(target_url: str) -> Callable[[sa.Connection], None]:
    """Sever a move's target connection as a failover or a network cut would: on PostgreSQL
    the server terminates its backend; SQLite has no server, so the driver connection is closed."""

    def drop(conn: sa.Connection) -> None:
        raw = conn.connection.driver_connection
        if conn.dialect.name != "postgresql":
            raw.close()
            return
        admin = sa.create_engine(target_url)
        with admin.connect() as other:
            assert other.execute(sa.select(sa.func.pg_terminate_backend(raw.info.backend_pid))).scalar()
        admin.dispose()

    return drop


def test_a_connection_dropped_mid_move_is_retried_and_completes(connections, monkeypatch) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.db import upgradedb

    from poco_migration.cli import main
    from poco_migration.dag_common import SYNC_DAG_ID, utc
    from poco_migration_tools.rehearsal import DAGS_FOLDER

    assert main(["seed", "--scale", "60", "--seed", "3"]) == 0
    points = MOVES["points"]
    merge, drop, dropped = points.merge, drop_connection(connections["target"]), []

    def merge_after_a_drop(conn: sa.Connection, req: MoveRequest, move_id: str) -> None:
        if not dropped:
            dropped.append(req.market)
            drop(conn)
        merge(conn, req, move_id)

    monkeypatch.setattr(points, "merge", merge_after_a_drop)
    upgradedb()
    dag = DagBag(dag_folder=str(DAGS_FOLDER)).get_dag(SYNC_DAG_ID)
    for task in dag.tasks:
        task.retries, task.retry_delay, task.retry_exponential_backoff = 1, dt.timedelta(seconds=1), False
    run_ = dag.test(logical_date=utc(dt.date(2024, 10, 7)))
    record("faults injected")
    record("trials")

    tries = {(ti.task_id, ti.rendered_map_index): (ti.state, ti.try_number) for ti in run_.get_task_instances()}
    # The first market to merge (the instances' order is the executor's) lost its connection: its
    # instance failed and passed on its retry; the two others passed at once.
    [market] = dropped
    assert tries == {
        ("markets", None): ("success", 1),
        **{("move", m): ("success", 2 if m == market else 1) for m in ("IT", "PL", "TH")},
    }
    assert str(run_.state) == "success"
    target = sa.create_engine(connections["target"])
    m = schemas.moved
    with target.connect() as conn:
        markets = set(conn.execute(sa.select(m.c.market).where(m.c.domain == "points").distinct()).scalars())
    assert markets == {"IT", "PL", "TH"}
    duplicates = double_credits(target)
    record("duplicates", duplicates)
    assert duplicates == 0


# --- two runs of one move at once ---------------------------------------------------------


def test_two_runs_of_the_same_move_at_once_credit_once(db_urls, monkeypatch) -> None:
    source = sa.create_engine(db_urls["source"])
    build_source(source)
    target = reset_target(db_urls["target"])
    locked, first_in = {}, threading.Event()
    lock, stage = pipeline._lock, pipeline._stage

    def timed_lock(*args: Any) -> Any:
        watermark = lock(*args)
        locked[threading.current_thread().name] = time.monotonic()
        return watermark

    def slow_stage(*args: Any) -> Any:
        staged = stage(*args)
        if threading.current_thread().name == "first":
            first_in.set()
            time.sleep(1.0)  # holding the lock while the second run starts
        return staged

    monkeypatch.setattr(pipeline, "_lock", timed_lock)
    monkeypatch.setattr(pipeline, "_stage", slow_stage)
    results: dict[str, Any] = {}
    finished: dict[str, float] = {}

    def go(name: str) -> None:
        if name == "second":
            first_in.wait(timeout=60)
        try:
            results[name] = run("points", source, db_urls["target"]).status
        except Exception as exc:  # a refusal must say why: kept for the assertion
            results[name] = f"{type(exc).__name__}: {exc}"
        finished[name] = time.monotonic()

    threads = [threading.Thread(target=go, args=(name,), name=name) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    record("trials")

    assert results == {"first": "moved", "second": "nothing_new"}
    assert locked["second"] >= finished["first"] - 0.05, "the second run did not wait for the first's lock"
    ledger = schemas.mi_points_ledger
    with target.connect() as conn:
        entries = conn.execute(sa.select(ledger.c.source_ref, ledger.c.delta).order_by(ledger.c.source_ref)).all()
    expected = sorted((f"poco:points:{u}", 10 * u) for u in range(1, 31) if u != 29)
    duplicates = len(entries) - len(expected) + double_credits(target)
    record("duplicates", max(duplicates, 0))
    assert sorted(tuple(e) for e in entries) == expected
