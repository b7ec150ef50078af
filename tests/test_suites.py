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
from typing import Any

import pytest
import sqlalchemy as sa

from poco_migration import gates, schemas
from poco_migration.connections import SharedConnection
from poco_migration.gates import CheckpointOutcome, Failure, Gatekeeper
from poco_migration.moves import MOVES
from poco_migration.moves.engine import MoveRequest, ratio_query
from poco_migration.plan import load_plan

MARKET = "IT"
ROWS = 10
MOVE_ID = "move-1"
PARAMETERS = {"max_quarantine_ratio": 0.1, "min_valid_share": 0.9}
# IT's points convert at 0.5 here: a negative balance can then be staged with a
# credit of 0 and a conversion gap of 0.5, so that only the balance's expectation fails.
PLAN = dataclasses.replace(
    load_plan(),
    markets=tuple(
        dataclasses.replace(m, conversion_rate=Decimal("0.5")) if m.market == MARKET else m
        for m in load_plan().markets
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


def write_reconciled(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Staged reviews, and where each one is: in the target, quarantined, noted as moved."""
    insert(conn, schemas.stage_reviews, pick(rows, schemas.stage_reviews))
    insert(conn, schemas.mi_reviews, pick([r for r in rows if r["in_target"]], schemas.mi_reviews))
    quarantined = [{**r, "domain": "reviews", "market": MARKET, "detected_at": STARTS} for r in rows if r["quarantined"]]
    insert(conn, schemas.quarantine, pick(quarantined, schemas.quarantine))
    moved = [{**r, "domain": "reviews", "market": MARKET, "move_id": "move-0"} for r in rows if r["moved"]]
    insert(conn, schemas.moved, pick(moved, schemas.moved))


def write_ratio(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Each in-scope row of the market either quarantined or moved."""
    rows = [{**r, "domain": "reviews", "market": MARKET, "reason": "invalid_rating", "detected_at": STARTS} for r in rows]
    insert(conn, schemas.quarantine, pick([r for r in rows if r["quarantined"]], schemas.quarantine))
    insert(conn, schemas.moved, pick([r for r in rows if not r["quarantined"]], schemas.moved))


@dataclass(frozen=True)
class Suite:
    database: str
    baseline: Callable[[int], dict[str, Any]]  # the i-th valid row, i from 1
    write: Callable[[sa.Connection, list[dict[str, Any]]], None]
    query: Callable[[], sa.Select]


def stage_row(domain: str, ref: str, **values: Any) -> dict[str, Any]:
    return {"batch_market": MARKET, "source_ref": f"poco:{domain}:{ref}", "reason": None, "insertable": True, **values}


def review_row(i: int) -> dict[str, Any]:
    return stage_row(
        "review", i, mi_account_id=1000 + i, mi_product_id=2000 + i, rating=4, title=f"Review {i}",
        body="Great phone", language="it", status="published", helpful_votes=0,
    )  # fmt: skip


SUITES: dict[str, Suite] = {
    "points.extract": Suite(
        "source",
        lambda i: {"user_id": i, "mi_account_id": 1000 + i, "market": MARKET, "balance": 10 * i},
        write_points_source,
        lambda: extract("points"),
    ),
    "reviews.extract": Suite(
        "source",
        lambda i: {
            "review_id": i, "user_id": 100 + i, "mi_account_id": 1000 + i, "market": MARKET,
            "sku": f"SKU-{i}", "mi_product_id": 2000 + i,
            "rating": 4, "body": "Great phone", "language": "it", "status": "published",
        },
        write_reviews_source,
        lambda: extract("reviews"),
    ),  # fmt: skip
    "initiatives.extract": Suite(
        "source",
        lambda i: {
            "initiative_id": i, "market": MARKET, "kind": "campaign", "title": f"Initiative {i}",
            "starts_at": STARTS, "ends_at": ENDS, "status": "active",
        },
        write_initiatives_source,
        lambda: extract("initiatives"),
    ),  # fmt: skip
    "participants.extract": Suite(
        "source",
        lambda i: {
            "initiative_id": i, "known": True, "user_id": 100 + i, "mi_account_id": 1000 + i,
            "market": MARKET, "status": "joined",
        },
        write_participants_source,
        lambda: extract("participants"),
    ),  # fmt: skip
    "points.staged": Suite(
        "target",
        lambda i: stage_row("points", i, user_id=i, mi_account_id=1000 + i, balance=10 * i, credit=5 * i),
        writer(schemas.stage_points),
        lambda: staged("points"),
    ),
    "reviews.staged": Suite("target", review_row, writer(schemas.stage_reviews), lambda: staged("reviews")),
    "initiatives.staged": Suite(
        "target",
        lambda i: stage_row(
            "initiative", i, brand="POCO", market=MARKET, kind="campaign", title=f"Initiative {i}",
            starts_at=STARTS, ends_at=ENDS, status="active",
        ),
        writer(schemas.stage_initiatives),
        lambda: staged("initiatives"),
    ),  # fmt: skip
    "participants.staged": Suite(
        "target",
        lambda i: stage_row(
            "participant", f"{i}:{100 + i}", initiative_id=500 + i, mi_account_id=1000 + i, status="joined"
        ),
        writer(schemas.stage_participants),
        lambda: staged("participants"),
    ),
    "move.reconciled": Suite(
        "target",
        lambda i: {**review_row(i), "in_target": True, "quarantined": False, "moved": False},
        write_reconciled,
        lambda: MOVES["reviews"].outcome(request("reviews")),
    ),
    "move.quarantine_ratio": Suite(
        "target",
        lambda i: {"source_ref": f"poco:review:{i}", "quarantined": False},
        write_ratio,
        lambda: ratio_query("reviews", MARKET),
    ),
    "move.totals": Suite(
        "target",
        lambda i: {"move_id": MOVE_ID, "domain": "reviews", "market": MARKET, "metric": f"metric_{i}",
                   "expected": i, "observed": i},
        writer(schemas.reconciliation),
        totals,
    ),  # fmt: skip
}


def batch(suite: Suite, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``ROWS`` baseline rows, the first ones changed as listed."""
    rows = [suite.baseline(i) for i in range(1, ROWS + 1)]
    return [{**row, **change} for row, change in zip(rows, changes, strict=False)] + rows[len(changes) :]


def with_extra_row(query: sa.Select, **replacements: Any) -> sa.CompoundSelect:
    """The query's rows and one more: a copy of its first row, with some values replaced."""
    columns = list(query.selected_columns)
    first = query.order_by(None).order_by(*columns).limit(1).subquery()
    copy = sa.select(
        *(
            sa.cast(sa.literal(replacements[c.name]) if replacements[c.name] is not None else sa.null(), c.type)
            .label(c.name)
            if c.name in replacements
            else c
            for c in first.c
        )
    )
    return sa.union_all(query.order_by(None), copy)


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


def sample(*values: Any, count: int | None = None) -> dict[str, Any]:
    return {"unexpected_count": len(values) if count is None else count, "unexpected_sample": list(values)}


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
    return Case(suite, expectation, column, [], [], observed, extra=extra)


NONE = None
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
    Case(
        "reviews.extract", BETWEEN, "rating",
        [{"rating": 0}, {"rating": 6}], [{"rating": 0}, {"rating": 1}, {"rating": 5}], sample(0, 6),
    ),  # fmt: skip
    mostly("reviews.extract", NOT_NULL, "body", {"body": None}),
    mostly("reviews.extract", IN_SET, "status", {"status": "spam"}, {"status": "hidden"}, {"status": "pending"}),
    mostly("reviews.extract", NOT_NULL, "language", {"language": None}),
    # initiatives.extract
    unreachable("initiatives.extract", NOT_NULL, "initiative_id", sample(None), initiative_id=None),
    unreachable("initiatives.extract", UNIQUE, "initiative_id", sample(1, 1)),
    unreachable("initiatives.extract", IN_SET, "status", sample("draft"), initiative_id=99, status="draft"),
    mostly(
        "initiatives.extract", IN_SET, "kind", {"kind": "webinar"},
        {"kind": "event"}, {"kind": "contest"}, {"kind": "beta_program"},
    ),  # fmt: skip
    mostly("initiatives.extract", NOT_NULL, "starts_at", {"starts_at": None}),
    mostly("initiatives.extract", NOT_NULL, "ends_at", {"ends_at": None}),
    Case(
        "initiatives.extract", A_AFTER_B, None,
        [{"ends_at": STARTS - DAY}] * 2, [{"ends_at": STARTS - DAY}, {"ends_at": STARTS}], "PAIR",
    ),  # fmt: skip
    # participants.extract
    unreachable("participants.extract", COMPOUND_UNIQUE, None, "COMPOUND"),
    mostly("participants.extract", NOT_NULL, "known_initiative", {"known": False, "known_initiative": None}),
    mostly("participants.extract", NOT_NULL, "mi_account_id", {"mi_account_id": None}),
    mostly("participants.extract", IN_SET, "status", {"status": "lost"}, {"status": "winner"}, {"status": "withdrawn"}),
    # points.staged
    unreachable("points.staged", NOT_NULL, "source_ref", sample(None), source_ref=None, user_id=99),
    unreachable("points.staged", UNIQUE, "source_ref", sample("poco:points:1", "poco:points:1"), user_id=99),
    Case("points.staged", LIKE, "source_ref", [{"source_ref": "poco:point:1"}], [], sample("poco:point:1")),
    Case("points.staged", UNIQUE, "user_id", [{}, {"user_id": 1}], [], sample(1, 1)),
    Case("points.staged", NOT_NULL, "mi_account_id", [{"mi_account_id": None}], [], sample(None)),
    Case("points.staged", NOT_NULL, "credit", [{"credit": None}], [{"balance": 0, "credit": 0}], sample(None)),
    Case(
        "points.staged", BETWEEN, "balance",
        [{"balance": -1, "credit": 0}], [{"balance": 0, "credit": 0}], sample(-1),
    ),  # fmt: skip
    Case(
        "points.staged", BETWEEN, "credit",
        [{"balance": None, "credit": -1}, {"balance": 2**32, "credit": 2**31}],
        [{"balance": 0, "credit": 0}, {"balance": 2**32 - 2, "credit": 2**31 - 1}],
        sample(-1, 2**31),
    ),  # fmt: skip
    Case(
        "points.staged", BETWEEN, "conversion_gap",
        [{"balance": 3, "credit": 3}], [{"balance": 3, "credit": 2}, {"balance": 3, "credit": 1}], sample(1.5),
    ),  # fmt: skip
    # reviews.staged
    unreachable("reviews.staged", NOT_NULL, "source_ref", sample(None), source_ref=None),
    unreachable("reviews.staged", UNIQUE, "source_ref", sample("poco:review:1", "poco:review:1")),
    Case("reviews.staged", LIKE, "source_ref", [{"source_ref": "poco:reviews:1"}], [], sample("poco:reviews:1")),
    Case("reviews.staged", NOT_NULL, "mi_account_id", [{"mi_account_id": None}], [], sample(None)),
    Case("reviews.staged", NOT_NULL, "mi_product_id", [{"mi_product_id": None}], [], sample(None)),
    Case("reviews.staged", BETWEEN, "rating", [{"rating": 0}, {"rating": 6}], [{"rating": 1}, {"rating": 5}], sample(0, 6)),
    Case("reviews.staged", NOT_NULL, "body", [{"body": None}], [], sample(None)),
    Case(
        "reviews.staged", IN_SET, "status",
        [{"status": "deleted"}], [{"status": "removed"}, {"status": "hidden"}, {"status": "pending"}], sample("deleted"),
    ),  # fmt: skip
    # initiatives.staged
    unreachable("initiatives.staged", NOT_NULL, "source_ref", sample(None), source_ref=None),
    unreachable("initiatives.staged", UNIQUE, "source_ref", sample("poco:initiative:1", "poco:initiative:1")),
    Case(
        "initiatives.staged", LIKE, "source_ref",
        [{"source_ref": "poco:initiatives:1"}], [], sample("poco:initiatives:1"),
    ),  # fmt: skip
    Case("initiatives.staged", IN_SET, "brand", [{"brand": "Xiaomi"}], [], sample("Xiaomi")),
    Case(
        "initiatives.staged", IN_SET, "status",
        [{"status": "archived"}], [{"status": "ended"}, {"status": "draft"}, {"status": "cancelled"}],
        sample("archived"),
    ),  # fmt: skip
    Case("initiatives.staged", NOT_NULL, "starts_at", [{"starts_at": None}], [], sample(None)),
    Case("initiatives.staged", NOT_NULL, "ends_at", [{"ends_at": None}], [], sample(None)),
    Case("initiatives.staged", A_AFTER_B, None, [{"ends_at": STARTS - DAY}], [{"ends_at": STARTS}], "PAIR"),
    # participants.staged
    unreachable("participants.staged", NOT_NULL, "source_ref", sample(None), source_ref=None),
    unreachable("participants.staged", UNIQUE, "source_ref", sample("poco:participant:1:101", "poco:participant:1:101")),
    Case(
        "participants.staged", LIKE, "source_ref",
        [{"source_ref": "poco:participants:1:101"}], [], sample("poco:participants:1:101"),
    ),  # fmt: skip
    Case("participants.staged", NOT_NULL, "initiative_id", [{"initiative_id": None}], [], sample(None)),
    Case("participants.staged", NOT_NULL, "mi_account_id", [{"mi_account_id": None}], [], sample(None)),
    Case(
        "participants.staged", IN_SET, "status",
        [{"status": "lost"}], [{"status": "winner"}, {"status": "withdrawn"}], sample("lost"),
    ),  # fmt: skip
    # move.reconciled: the good batch has a quarantined row ("ok") and a held one
    Case(
        "move.reconciled", IN_SET, "outcome",
        [{"in_target": False}],
        [
            {"reason": "invalid_rating", "rating": 0, "in_target": False, "quarantined": True},
            {"reason": "empty_body", "body": "", "moved": True},
        ],
        sample("missing_in_target"),
    ),  # fmt: skip
    unreachable("move.reconciled", UNIQUE, "source_ref", sample("poco:review:1", "poco:review:1")),
    # move.quarantine_ratio (max_quarantine_ratio 0.1: 1 of 10 passes, 2 of 10 fail)
    unreachable("move.quarantine_ratio", ROW_COUNT, None, 2),
    Case("move.quarantine_ratio", BETWEEN, "quarantine_ratio", [{"quarantined": True}] * 2, [{"quarantined": True}], sample(0.2)),
    # move.totals
    Case("move.totals", ROW_COUNT_BETWEEN, None, [{"move_id": "move-2"}] * ROWS, [{"move_id": "move-2"}] * (ROWS - 1), 0),
    Case("move.totals", NOT_NULL, "expected", [{"expected": None, "observed": None}], [{"expected": 0, "observed": 0}], sample(None)),
    Case("move.totals", PAIR_EQUAL, None, [{"observed": 0}], [], "PAIR"),
]


def test_every_expectation_of_every_suite_has_a_case() -> None:
    covered = {(c.suite, c.expectation, c.column) for c in CASES}
    for path in sorted(gates.expectations_dir().glob("*.json")):
        definition = json.loads(path.read_text(encoding="utf-8"))
        for expectation in definition["expectations"]:
            column = expectation["kwargs"].get("column")
            assert (path.stem, expectation["type"], column) in covered, (path.stem, expectation)
    assert len(covered) == len(CASES)


# --- running a batch through the gate ----------------------------------------------
@pytest.fixture(autouse=True)
def no_data_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POCO_MIGRATION_DATA_DOCS", "off")


class Gate:
    """A Gatekeeper on the test's databases, and a way to put one batch before it."""

    def __init__(self, gatekeeper: Gatekeeper, shared: SharedConnection, source: sa.Engine) -> None:
        self.gatekeeper = gatekeeper
        self.shared = shared
        self.source = source

    def check(
        self,
        suite_name: str,
        rows: list[dict[str, Any]],
        stage: str,
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
            return self.gatekeeper.check(stage, validations, parameters, database="source")
        with self.shared.engine.connect() as conn, conn.begin() as tx:  # the gate reads these uncommitted rows
            suite.write(conn, rows)
            outcome = self.gatekeeper.check(stage, validations, parameters)
            tx.rollback()
        return outcome


@pytest.fixture
def gate(db_urls: dict[str, str], source_engine: sa.Engine, target_engine: sa.Engine) -> Iterator[Gate]:
    shared = SharedConnection(sa.make_url(db_urls["target"]))
    try:
        gatekeeper = Gatekeeper(shared, "suites", source_url=sa.make_url(db_urls["source"]))
        try:
            yield Gate(gatekeeper, shared, source_engine)
        finally:
            gatekeeper.close()
    finally:
        shared.close()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_expectation_catches_its_bad_batch_and_passes_its_good_one(case: Case, gate: Gate) -> None:
    suite = SUITES[case.suite]
    query = with_extra_row(suite.query(), **case.extra) if case.extra is not None else None

    bad = gate.check(case.suite, batch(suite, case.bad), "bad", query)
    good = gate.check(case.suite, batch(suite, case.good), "good")

    assert bad.success is False
    assert bad.failures == [Failure(case.suite, case.expectation, case.column, case.observed)]
    assert good.success is True
    assert good.failures == []
