"""Every expectation of every suite in ``expectations/``, through the real gate.

For each expectation, ``CASES`` holds a crafted bad batch that it catches, alone,
and a good batch that it passes; both run through ``Gatekeeper.check`` on the
query that the move validates (``move.extract`` on the source, ``staged_rows``,
``outcome``, ``ratio_query`` and the reconciliation table on the target), on
SQLite and on PostgreSQL.

A batch is ``ROWS`` baseline rows of which the first few are changed, so that a
``mostly`` expectation at ``min_valid_share`` 0.9 is shown on both sides of its
threshold: 1 bad row of 10 passes, 2 bad rows of 10 fail.

Some expectations guard against rows that the databases cannot hold today (a
duplicate or NULL primary key, a status that the extract's own scope filters
out, a second row of a one-row aggregate). For those the bad batch is the real
query with one extra crafted row appended (``Case.extra``), and
``test_the_databases_refuse_the_rows_that_some_expectations_guard_against``
shows that the row could not have come from the tables themselves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from poco_migration import gates, schemas
from poco_migration.connections import SharedConnection
from poco_migration.gates import CheckpointOutcome, Failure, Gatekeeper
from poco_migration.moves import MOVES
from poco_migration.moves.bookkeeping import ratio_query
from poco_migration.moves.types import MoveRequest
from poco_migration.plan import load_plan

MARKET = "IT"
ROWS = 10
MOVE_ID = "move-1"
PARAMETERS = {"max_quarantine_ratio": 0.1, "min_valid_share": 0.9}
# IT's points convert at 0.5 here: a negative balance of -1 can then be staged with a
# credit of 0 (-0.5 rounds to 0 in the gate's integer arithmetic), so that only the
# balance's expectation fails.
PLAN = dataclasses.replace(
    load_plan(),
    markets=tuple(
        dataclasses.replace(m, conversion_rate=Decimal("0.5")) if m.market == MARKET else m for m in load_plan().markets
    ),
)
STARTS, ENDS = dt.datetime(2024, 10, 1), dt.datetime(2024, 10, 31)
DAY = dt.timedelta(days=1)


def request(domain: str) -> MoveRequest:
    return MoveRequest(domain, MARKET, PLAN, as_of=dt.datetime(2024, 10, 7))


def extract(domain: str) -> sa.Select:
    """What the ``extract`` checkpoint validates: the market's whole in-scope source."""
    move = MOVES[domain]
    return move.extract(request(domain), None).where(move.in_scope())


def staged(domain: str) -> sa.Select:
    return MOVES[domain].staged_rows(request(domain))


def totals() -> sa.Select:
    r = schemas.reconciliation
    return sa.select(r.c.metric, r.c.expected, r.c.observed).where(r.c.move_id == MOVE_ID)


# --- how each suite's batch is written ---------------------------------------------
def insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(table.insert(), rows)


def pick(rows: list[dict[str, Any]], table: sa.Table) -> list[dict[str, Any]]:
    """Each row's values for the table's columns (a batch row may span several tables)."""
    return [{k: v for k, v in row.items() if k in table.c} for row in rows]


def write_points_source(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    insert(conn, schemas.poco_users, pick(rows, schemas.poco_users))
    insert(conn, schemas.poco_points_accounts, pick(rows, schemas.poco_points_accounts))


def write_reviews_source(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    insert(conn, schemas.poco_users, pick(rows, schemas.poco_users))
    insert(conn, schemas.poco_products, pick(rows, schemas.poco_products))
    insert(conn, schemas.poco_reviews, pick(rows, schemas.poco_reviews))


def write_initiatives_source(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    insert(conn, schemas.poco_initiatives, rows)


def write_participants_source(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """``known`` False: the participant's initiative does not exist (an orphan)."""
    known = [{"initiative_id": r["initiative_id"], "market": MARKET, "status": "active"} for r in rows if r["known"]]
    insert(conn, schemas.poco_initiatives, known)
    insert(conn, schemas.poco_users, pick(rows, schemas.poco_users))
    insert(conn, schemas.poco_initiative_participants, pick(rows, schemas.poco_initiative_participants))


def writer(table: sa.Table) -> Callable[[sa.Connection, list[dict[str, Any]]], None]:
    return lambda conn, rows: insert(conn, table, rows)


def stage_writer(table: sa.Table) -> Callable[[sa.Connection, list[dict[str, Any]]], None]:
    """A move's stage, created in the gate's own connection as a move creates it."""
    return lambda conn, rows: write_stage(conn, table, rows)


def write_stage(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    table.create(conn)
    insert(conn, table, rows)


def bookkeeping(rows: list[dict[str, Any]], table: sa.Table) -> list[dict[str, Any]]:
    """Quarantine or moved rows of the market's reviews, for the batch's source_refs."""
    values = {"domain": "reviews", "market": MARKET, "reason": "invalid_rating", "detected_at": STARTS, "move_id": "m0"}
    return pick([{**values, **row} for row in rows], table)


def write_reconciled(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Staged reviews, and where each one is: in the target, quarantined, noted as moved."""
    write_stage(conn, schemas.stage_reviews, pick(rows, schemas.stage_reviews))
    insert(conn, schemas.mi_reviews, pick([r for r in rows if r["in_target"]], schemas.mi_reviews))
    insert(conn, schemas.quarantine, bookkeeping([r for r in rows if r["quarantined"]], schemas.quarantine))
    insert(conn, schemas.moved, bookkeeping([r for r in rows if r["moved"]], schemas.moved))


def write_ratio(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Each in-scope row of the market is either quarantined or moved."""
    insert(conn, schemas.quarantine, bookkeeping([r for r in rows if r["quarantined"]], schemas.quarantine))
    insert(conn, schemas.moved, bookkeeping([r for r in rows if not r["quarantined"]], schemas.moved))


@dataclass(frozen=True)
class Suite:
    database: str
    baseline: Callable[[int], dict[str, Any]]  # the i-th valid row, i from 1
    write: Callable[[sa.Connection, list[dict[str, Any]]], None]
    query: Callable[[], sa.Select]


def stage_row(domain: str, ref: object, **values: Any) -> dict[str, Any]:
    return {"batch_market": MARKET, "source_ref": f"poco:{domain}:{ref}", "reason": None, "insertable": True, **values}


# The i-th valid row of each suite's batch (i from 1). A source row spans the
# tables its query joins: its user, its product, its initiative.
def points_source(i: int) -> dict[str, Any]:
    return {"user_id": i, "mi_account_id": 1000 + i, "market": MARKET, "balance": 10 * i}


def reviews_source(i: int) -> dict[str, Any]:
    review = {"review_id": i, "rating": 4, "body": "Great phone", "language": "it", "status": "published"}
    user = {"user_id": 100 + i, "mi_account_id": 1000 + i, "market": MARKET}
    return {**review, **user, "sku": f"SKU-{i}", "mi_product_id": 2000 + i}


def initiatives_source(i: int) -> dict[str, Any]:
    dates = {"starts_at": STARTS, "ends_at": ENDS}
    return {"initiative_id": i, "market": MARKET, "kind": "campaign", "title": f"I{i}", "status": "active", **dates}


def participants_source(i: int) -> dict[str, Any]:
    user = {"user_id": 100 + i, "mi_account_id": 1000 + i, "market": MARKET}
    return {"initiative_id": i, "known": True, "status": "joined", **user}


def points_stage(i: int) -> dict[str, Any]:
    return stage_row("points", i, user_id=i, mi_account_id=1000 + i, balance=10 * i, credit=5 * i)


def reviews_stage(i: int) -> dict[str, Any]:
    mapped = {"mi_account_id": 1000 + i, "mi_product_id": 2000 + i}
    return stage_row(
        "review", i, rating=4, title=f"R{i}", body="Great phone", language="it", status="published", **mapped
    )


def initiatives_stage(i: int) -> dict[str, Any]:
    values = {"brand": "POCO", "market": MARKET, "kind": "campaign", "title": f"I{i}", "status": "active"}
    return stage_row("initiative", i, starts_at=STARTS, ends_at=ENDS, **values)


def participants_stage(i: int) -> dict[str, Any]:
    return stage_row("participant", f"{i}:{100 + i}", initiative_id=500 + i, mi_account_id=1000 + i, status="joined")


def reconciled(i: int) -> dict[str, Any]:
    return {**reviews_stage(i), "in_target": True, "quarantined": False, "moved": False}


def ratio(i: int) -> dict[str, Any]:
    return {"source_ref": f"poco:review:{i}", "quarantined": False}


def metric(i: int) -> dict[str, Any]:
    return {"move_id": MOVE_ID, "domain": "reviews", "market": MARKET, "metric": f"m{i}", "expected": i, "observed": i}


SUITES: dict[str, Suite] = {
    "points.extract": Suite("source", points_source, write_points_source, lambda: extract("points")),
    "reviews.extract": Suite("source", reviews_source, write_reviews_source, lambda: extract("reviews")),
    "initiatives.extract": Suite(
        "source", initiatives_source, write_initiatives_source, lambda: extract("initiatives")
    ),
    "participants.extract": Suite(
        "source", participants_source, write_participants_source, lambda: extract("participants")
    ),
    "points.staged": Suite("target", points_stage, stage_writer(schemas.stage_points), lambda: staged("points")),
    "reviews.staged": Suite("target", reviews_stage, stage_writer(schemas.stage_reviews), lambda: staged("reviews")),
    "initiatives.staged": Suite(
        "target", initiatives_stage, stage_writer(schemas.stage_initiatives), lambda: staged("initiatives")
    ),
    "participants.staged": Suite(
        "target", participants_stage, stage_writer(schemas.stage_participants), lambda: staged("participants")
    ),
    "move.reconciled": Suite("target", reconciled, write_reconciled, lambda: MOVES["reviews"].outcome()),
    "move.quarantine_ratio": Suite("target", ratio, write_ratio, lambda: ratio_query("reviews", MARKET)),
    "move.totals": Suite("target", metric, writer(schemas.reconciliation), totals),
}


def batch(suite: Suite, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``ROWS`` baseline rows, the first ones changed as listed."""
    rows = [suite.baseline(i) for i in range(1, ROWS + 1)]
    return [{**row, **change} for row, change in zip(rows, changes, strict=False)] + rows[len(changes) :]


def with_extra_row(query: sa.Select, **replacements: Any) -> sa.CompoundSelect:
    """The query's rows and one more: a copy of its first row (ordered by every column), some values replaced."""
    first = query.order_by(None).order_by(*query.selected_columns).limit(1).subquery()

    def value(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        if column.name not in replacements:
            return column
        replacement = replacements[column.name]
        literal = sa.null() if replacement is None else sa.literal(replacement)
        return sa.cast(literal, column.type).label(column.name)

    return sa.union_all(query.order_by(None), sa.select(*(value(c) for c in first.c)))


# --- the cases ---------------------------------------------------------------------
NOT_NULL = "expect_column_values_to_not_be_null"
UNIQUE = "expect_column_values_to_be_unique"
IN_SET = "expect_column_values_to_be_in_set"
BETWEEN = "expect_column_values_to_be_between"
LIKE = "expect_column_values_to_match_like_pattern"
A_AFTER_B = "expect_column_pair_values_a_to_be_greater_than_b"
PAIR_EQUAL = "expect_column_pair_values_to_be_equal"
COMPOUND_UNIQUE = "expect_compound_columns_to_be_unique"
ROW_COUNT = "expect_table_row_count_to_equal"
ROW_COUNT_BETWEEN = "expect_table_row_count_to_be_between"


def sample(*values: Any) -> dict[str, Any]:
    """What a failed column map expectation observed: its unexpected values (here, never more than 5)."""
    return {"unexpected_count": len(values), "unexpected_sample": list(values)}


@dataclass(frozen=True)
class Case:
    suite: str
    expectation: str
    column: str | None
    bad: list[dict[str, Any]]  # changes to the first baseline rows
    good: list[dict[str, Any]]
    observed: Any
    # A row the tables cannot hold, appended to the real query's rows for the bad batch.
    extra: dict[str, Any] | None = field(default=None)

    @property
    def id(self) -> str:
        return f"{self.suite}:{self.expectation.removeprefix('expect_')}:{self.column or '-'}"


def mostly(suite: str, expectation: str, column: str, bad: dict[str, Any], *near_misses: dict[str, Any]) -> Case:
    """A ``mostly: min_valid_share`` expectation: 2 bad rows of 10 fail it, 1 (with valid near misses) passes."""
    observed = sample(*[bad[column]] * 2)
    return Case(suite, expectation, column, [bad, bad], [bad, *near_misses], observed)


def unreachable(suite: str, expectation: str, column: str | None, observed: Any, **extra: Any) -> Case:
    """Bad: the valid batch, plus a copy of its first row with ``extra`` values that the tables refuse."""
    return Case(suite, expectation, column, [], [], observed, extra=extra)


# fmt: off
CASES = [
    # points.extract
    unreachable("points.extract", NOT_NULL, "user_id", sample(None), user_id=None),
    unreachable("points.extract", UNIQUE, "user_id", sample(1, 1)),
    mostly("points.extract", NOT_NULL, "mi_account_id", {"mi_account_id": None}),
    mostly("points.extract", NOT_NULL, "balance", {"balance": None}),
    mostly("points.extract", BETWEEN, "balance", {"balance": -1}, {"balance": 2147483647}),
    # reviews.extract
    unreachable("reviews.extract", NOT_NULL, "review_id", sample(None), review_id=None),
    unreachable("reviews.extract", UNIQUE, "review_id", sample(1, 1)),
    mostly("reviews.extract", NOT_NULL, "mi_account_id", {"mi_account_id": None}),
    mostly("reviews.extract", NOT_NULL, "mi_product_id", {"mi_product_id": None}),
    Case("reviews.extract", BETWEEN, "rating",
         [{"rating": 0}, {"rating": 6}],
         [{"rating": 0}, {"rating": 1}, {"rating": 5}],
         sample(0, 6)),
    mostly("reviews.extract", NOT_NULL, "body", {"body": None}),
    mostly("reviews.extract", IN_SET, "status", {"status": "spam"}, {"status": "hidden"}, {"status": "pending"}),
    mostly("reviews.extract", NOT_NULL, "language", {"language": None}),
    # initiatives.extract
    unreachable("initiatives.extract", NOT_NULL, "initiative_id", sample(None), initiative_id=None),
    unreachable("initiatives.extract", UNIQUE, "initiative_id", sample(1, 1)),
    unreachable("initiatives.extract", IN_SET, "status", sample("draft"), initiative_id=99, status="draft"),
    mostly("initiatives.extract", IN_SET, "kind",
           {"kind": "webinar"}, {"kind": "event"}, {"kind": "contest"}, {"kind": "beta_program"}),
    mostly("initiatives.extract", NOT_NULL, "starts_at", {"starts_at": None}),
    mostly("initiatives.extract", NOT_NULL, "ends_at", {"ends_at": None}),
    Case("initiatives.extract", A_AFTER_B, None,
         [{"ends_at": STARTS - DAY}] * 2,
         [{"ends_at": STARTS - DAY}, {"ends_at": STARTS}],
         sample(*[(STARTS - DAY, STARTS)] * 2)),
    # participants.extract
    unreachable("participants.extract", COMPOUND_UNIQUE, None, sample(*[{"initiative_id": 1, "user_id": 101}] * 2)),
    mostly("participants.extract", NOT_NULL, "known_initiative", {"known": False, "known_initiative": None}),
    mostly("participants.extract", NOT_NULL, "mi_account_id", {"mi_account_id": None}),
    mostly("participants.extract", IN_SET, "status", {"status": "lost"}, {"status": "winner"}, {"status": "withdrawn"}),
    # points.staged (IT converts at 0.5 here)
    unreachable("points.staged", NOT_NULL, "source_ref", sample(None), source_ref=None, user_id=99),
    unreachable("points.staged", UNIQUE, "source_ref", sample(*["poco:points:1"] * 2), user_id=99),
    Case("points.staged", LIKE, "source_ref", [{"source_ref": "poco:point:1"}], [], sample("poco:point:1")),
    Case("points.staged", UNIQUE, "user_id", [{}, {"user_id": 1}], [], sample(1, 1)),
    Case("points.staged", NOT_NULL, "mi_account_id", [{"mi_account_id": None}], [], sample(None)),
    Case("points.staged", NOT_NULL, "credit", [{"credit": None}], [{"balance": 0, "credit": 0}], sample(None)),
    Case("points.staged", BETWEEN, "balance",
         [{"balance": -1, "credit": 0}], [{"balance": 0, "credit": 0}], sample(-1)),
    Case("points.staged", BETWEEN, "credit",
         [{"balance": None, "credit": -1}, {"balance": 2**32, "credit": 2**31}],
         [{"balance": 0, "credit": 0}, {"balance": 2**32 - 2, "credit": 2**31 - 1}],
         sample(-1, 2**31)),
    # 3 x 0.5 = 1.5 rounds half up to 2 (exactly): 1 and 3 are refused, 7 -> 4 and 355 -> 178 pass.
    Case("points.staged", PAIR_EQUAL, None,
         [{"balance": 3, "credit": 3}, {"balance": 3, "credit": 1}],
         [{"balance": 3, "credit": 2}, {"balance": 7, "credit": 4}, {"balance": 355, "credit": 178}],
         sample((3, 2), (1, 2))),
    # reviews.staged
    unreachable("reviews.staged", NOT_NULL, "source_ref", sample(None), source_ref=None),
    unreachable("reviews.staged", UNIQUE, "source_ref", sample(*["poco:review:1"] * 2)),
    Case("reviews.staged", LIKE, "source_ref", [{"source_ref": "poco:reviews:1"}], [], sample("poco:reviews:1")),
    Case("reviews.staged", NOT_NULL, "mi_account_id", [{"mi_account_id": None}], [], sample(None)),
    Case("reviews.staged", NOT_NULL, "mi_product_id", [{"mi_product_id": None}], [], sample(None)),
    Case("reviews.staged", BETWEEN, "rating", [{"rating": 0}, {"rating": 6}], [{"rating": 1}, {"rating": 5}],
         sample(0, 6)),
    Case("reviews.staged", NOT_NULL, "body", [{"body": None}], [], sample(None)),
    Case("reviews.staged", IN_SET, "status",
         [{"status": "deleted"}],
         [{"status": "removed"}, {"status": "hidden"}, {"status": "pending"}],
         sample("deleted")),
    # initiatives.staged
    unreachable("initiatives.staged", NOT_NULL, "source_ref", sample(None), source_ref=None),
    unreachable("initiatives.staged", UNIQUE, "source_ref", sample(*["poco:initiative:1"] * 2)),
    Case("initiatives.staged", LIKE, "source_ref",
         [{"source_ref": "poco:initiatives:1"}], [], sample("poco:initiatives:1")),
    Case("initiatives.staged", IN_SET, "brand", [{"brand": "Xiaomi"}], [], sample("Xiaomi")),
    Case("initiatives.staged", IN_SET, "status",
         [{"status": "archived"}],
         [{"status": "ended"}, {"status": "draft"}, {"status": "cancelled"}],
         sample("archived")),
    Case("initiatives.staged", NOT_NULL, "starts_at", [{"starts_at": None}], [], sample(None)),
    Case("initiatives.staged", NOT_NULL, "ends_at", [{"ends_at": None}], [], sample(None)),
    Case("initiatives.staged", A_AFTER_B, None,
         [{"ends_at": STARTS - DAY}], [{"ends_at": STARTS}], sample((STARTS - DAY, STARTS))),
    # participants.staged
    unreachable("participants.staged", NOT_NULL, "source_ref", sample(None), source_ref=None),
    # (the first row in text order is "...:10:110": ":" sorts after "0")
    unreachable("participants.staged", UNIQUE, "source_ref", sample(*["poco:participant:10:110"] * 2)),
    Case("participants.staged", LIKE, "source_ref",
         [{"source_ref": "poco:participants:1:101"}], [], sample("poco:participants:1:101")),
    Case("participants.staged", NOT_NULL, "initiative_id", [{"initiative_id": None}], [], sample(None)),
    Case("participants.staged", NOT_NULL, "mi_account_id", [{"mi_account_id": None}], [], sample(None)),
    Case("participants.staged", IN_SET, "status",
         [{"status": "lost"}], [{"status": "winner"}, {"status": "withdrawn"}], sample("lost")),
    # move.reconciled: the good batch also holds a quarantined row ("ok") and a held one
    Case("move.reconciled", IN_SET, "outcome",
         [{"in_target": False}],
         [{"reason": "invalid_rating", "rating": 0, "in_target": False, "quarantined": True},
          {"reason": "empty_body", "body": "", "moved": True}],
         sample("missing_in_target")),
    unreachable("move.reconciled", UNIQUE, "source_ref", sample(*["poco:review:1"] * 2)),
    # move.quarantine_ratio (max_quarantine_ratio 0.1: 1 of 10 quarantined passes, 2 of 10 fail)
    unreachable("move.quarantine_ratio", ROW_COUNT, None, 2),
    Case("move.quarantine_ratio", BETWEEN, "quarantine_ratio",
         [{"quarantined": True}] * 2, [{"quarantined": True}], sample(0.2)),
    # move.totals (the batch: the rows of MOVE_ID)
    Case("move.totals", ROW_COUNT_BETWEEN, None,
         [{"move_id": "move-2"}] * ROWS, [{"move_id": "move-2"}] * (ROWS - 1), 0),
    Case("move.totals", NOT_NULL, "expected",
         [{"expected": None, "observed": None}], [{"expected": 0, "observed": 0}], sample(None)),
    Case("move.totals", PAIR_EQUAL, None, [{"observed": 0}], [], sample((1, 0))),
]
# fmt: on


def test_every_expectation_of_every_suite_has_a_case() -> None:
    """One case per expectation in ``expectations/``, and no case for an expectation that is not there."""
    in_files = sorted(
        (path.stem, expectation["type"], expectation["kwargs"].get("column"))
        for path in gates.expectations_dir().glob("*.json")
        for expectation in json.loads(path.read_text(encoding="utf-8"))["expectations"]
    )
    assert sorted((c.suite, c.expectation, c.column) for c in CASES) == in_files


# --- running a batch through the gate ----------------------------------------------
@pytest.fixture(autouse=True)
def no_data_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POCO_MIGRATION_DATA_DOCS", "off")


class Gate:
    """Puts one batch before the gate, as a move does: one shared connection, one Gatekeeper."""

    def __init__(self, target_url: sa.URL, source: sa.Engine) -> None:
        self.target_url = target_url
        self.source = source

    def check(
        self,
        suite_name: str,
        rows: list[dict[str, Any]],
        query: sa.Select | sa.CompoundSelect | None = None,
        parameters: dict[str, Any] = PARAMETERS,
    ) -> CheckpointOutcome:
        suite = SUITES[suite_name]
        validations = [(suite_name, suite.query() if query is None else query)]
        if suite.database == "source":
            with self.source.begin() as conn:  # committed: the gate reads the source on its own
                for table in reversed(schemas.SOURCE.sorted_tables):
                    conn.execute(table.delete())
                suite.write(conn, rows)
            with self.gatekeeper() as (gatekeeper, _):
                return gatekeeper.check("test", validations, parameters, database="source")
        with self.gatekeeper() as (gatekeeper, shared), shared.engine.connect() as conn, conn.begin() as tx:
            suite.write(conn, rows)  # the gate reads these rows uncommitted, through the same connection
            outcome = gatekeeper.check("test", validations, parameters)
            tx.rollback()
        return outcome

    @contextmanager
    def gatekeeper(self) -> Iterator[tuple[Gatekeeper, SharedConnection]]:
        shared = SharedConnection(self.target_url)
        try:
            gatekeeper = Gatekeeper(shared, "suites", source_url=self.source.url)
            try:
                yield gatekeeper, shared
            finally:
                gatekeeper.close()
        finally:
            shared.close()


@pytest.fixture
def gate(db_urls: dict[str, str], source_engine: sa.Engine, target_engine: sa.Engine) -> Gate:
    return Gate(sa.make_url(db_urls["target"]), source_engine)


def as_read(value: Any, backend: str) -> Any:
    """A value as GX reads it back: SQLite has no timestamp type, so a query's timestamps come back as text."""
    if isinstance(value, dt.datetime) and backend == "sqlite":
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dict):
        return {k: as_read(v, backend) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(as_read(v, backend) for v in value)
    return value


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_expectation_catches_its_bad_batch_and_passes_its_good_one(case: Case, gate: Gate) -> None:
    suite = SUITES[case.suite]
    query = with_extra_row(suite.query(), **case.extra) if case.extra is not None else None

    bad = gate.check(case.suite, batch(suite, case.bad), query)
    good = gate.check(case.suite, batch(suite, case.good))

    observed = as_read(case.observed, gate.target_url.get_backend_name())
    assert bad.success is False
    assert bad.failures == [Failure(case.suite, case.expectation, case.column, observed)]
    assert good.success is True
    assert good.failures == []


def test_the_quarantine_threshold_comes_from_the_parameters(gate: Gate) -> None:
    suite = SUITES["move.quarantine_ratio"]
    rows = batch(suite, [{"quarantined": True}])  # 1 of 10 quarantined: a ratio of 0.1

    relaxed = gate.check("move.quarantine_ratio", rows, parameters={**PARAMETERS, "max_quarantine_ratio": 0.5})
    strict = gate.check("move.quarantine_ratio", rows, parameters={**PARAMETERS, "max_quarantine_ratio": 0.01})

    assert relaxed.success is True
    assert relaxed.failures == []
    assert strict.success is False
    assert strict.failures == [Failure("move.quarantine_ratio", BETWEEN, "quarantine_ratio", sample(0.1))]


# --- what the "unreachable" cases stand for ------------------------------------------
def stage(table: sa.Table, *refs: str | None) -> tuple[sa.Table, str, list[dict[str, Any]]]:
    return table, "source_ref", [{"batch_market": MARKET, "source_ref": ref, "insertable": True} for ref in refs]


REFUSED = [  # (table, the key its error names, rows)
    (schemas.poco_points_accounts, "user_id", [{"user_id": None}]),
    (schemas.poco_points_accounts, "user_id", [{"user_id": 1}, {"user_id": 1}]),
    (schemas.poco_reviews, "review_id", [{"review_id": None}]),
    (schemas.poco_reviews, "review_id", [{"review_id": 1}, {"review_id": 1}]),
    (schemas.poco_initiatives, "initiative_id", [{"initiative_id": None}]),
    (schemas.poco_initiatives, "initiative_id", [{"initiative_id": 1}, {"initiative_id": 1}]),
    (schemas.poco_initiative_participants, "initiative_id, .*user_id", [{"initiative_id": 1, "user_id": 1}] * 2),
    *(
        stage(table, *refs)
        for table in (
            schemas.stage_points,
            schemas.stage_reviews,
            schemas.stage_initiatives,
            schemas.stage_participants,
        )
        for refs in ((None,), ("poco:x:1", "poco:x:1"))
    ),
]


def test_the_databases_refuse_the_rows_that_some_expectations_guard_against(
    source_engine: sa.Engine, target_engine: sa.Engine
) -> None:
    """A NULL or repeated key: what the ``unreachable`` cases append to the real query's rows."""
    for table, key, rows in REFUSED:
        engine = source_engine if table.metadata is schemas.SOURCE else target_engine
        with pytest.raises(sa.exc.IntegrityError, match=key), engine.begin() as conn:
            if table.metadata is schemas.STAGING:  # a move's own temporary table, as a move creates it
                table.create(conn, checkfirst=True)
            conn.execute(table.insert(), rows)


def test_the_queries_cannot_return_what_some_expectations_guard_against(
    source_engine: sa.Engine, target_engine: sa.Engine
) -> None:
    """The extract's scope leaves out every status but active and ended; the ratio is one row, always."""
    statuses = ("draft", "active", "ended", "cancelled", None)
    with source_engine.begin() as conn:
        conn.execute(
            schemas.poco_initiatives.insert(),
            [{"initiative_id": i, "market": MARKET, "status": status} for i, status in enumerate(statuses)],
        )
        assert {row.status for row in conn.execute(extract("initiatives"))} == {"active", "ended"}
    with target_engine.begin() as conn:
        assert len(conn.execute(ratio_query("reviews", MARKET)).all()) == 1
        write_ratio(conn, batch(SUITES["move.quarantine_ratio"], [{"quarantined": True}]))
        assert len(conn.execute(ratio_query("reviews", MARKET)).all()) == 1


# --- the suite files themselves ------------------------------------------------------
@pytest.fixture
def suites_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("POCO_MIGRATION_EXPECTATIONS", str(tmp_path))
    gates.suite_definition.cache_clear()
    yield tmp_path
    gates.suite_definition.cache_clear()


def write_suite(directory: Path, name: str, *expectations: dict[str, Any]) -> None:
    (directory / f"{name}.json").write_text(json.dumps({"name": name, "expectations": list(expectations)}))


VALID = {"type": NOT_NULL, "kwargs": {"column": "source_ref"}}


def test_load_suite_refuses_a_suite_with_an_unknown_expectation(suites_dir: Path) -> None:
    """GX drops an expectation whose type it does not know, and keeps the rest: the gate would check less."""
    write_suite(suites_dir, "valid", VALID)
    write_suite(suites_dir, "misspelled", VALID, {"type": "expect_column_values_to_be_nul", "kwargs": {"column": "x"}})

    assert [e.column for e in gates.load_suite("valid").expectations] == ["source_ref"]
    with pytest.raises(gates.SuiteError, match=r"'misspelled': some expectations are not valid GX configurations"):
        gates.load_suite("misspelled")


def test_load_suite_refuses_an_expectation_with_bad_arguments(suites_dir: Path) -> None:
    """A known type with a missing column: GX raises itself (not a SuiteError naming the file)."""
    write_suite(suites_dir, "no_column", VALID, {"type": NOT_NULL, "kwargs": {"mostly": 0.9}})

    with pytest.raises(ValueError, match="ExpectColumnValuesToNotBeNull"):
        gates.load_suite("no_column")
