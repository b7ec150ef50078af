"""Hostile input beyond the contract's defects: every case is its own test, on both databases.

Each case writes a small valid background (so the gates see a market, not one row)
and one hostile source row or schema, runs the domain's move (the initiatives
first, for participants) and asserts where the hostile row went. There are
exactly three acceptable outcomes, and each case names the one it expects:

- it **moves** intact (a long, odd or dangerous-looking value that the contract
  allows is kept byte for byte, and bound, never executed);
- it is **quarantined** with a reason (``out_of_range``, ``invalid_text`` and
  ``invalid_kind`` are the project's own, see the README's decisions);
- its move **stops** with a message that names what is wrong (a missing column, a
  key that the source does not keep unique), and nothing of the move is written.

None may vanish: a moved or quarantined row is asserted in exactly one place, and
a row left out of scope is asserted counted in the report.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

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
from poco_migration.audit.run import run_audit
from poco_migration.connections import engine_for
from poco_migration.moves import MOVES
from poco_migration.moves.pipeline import run_move
from poco_migration.moves.types import GateFailed, MoveError, MoveRequest
from poco_migration.plan import Plan, load_plan
from poco_migration.report import build_report

AS_OF = dt.datetime(2024, 10, 7, 2, 0)
RELAXED = dataclasses.replace(load_plan(), max_quarantine_ratio=0.5)
TARGETS = {
    "points": schemas.mi_points_ledger,
    "reviews": schemas.mi_reviews,
    "initiatives": schemas.mi_initiatives,
    "participants": schemas.mi_initiative_participants,
}
BACKGROUND, GLOBAL = range(1, 5), range(11, 15)
INT32_MAX = 2**31 - 1
FAR_PAST, FAR_FUTURE = dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59)
MEGABYTE_BODY = ("Ünïcødé rëvïëw, 𝔞𝔰𝔱𝔯𝔞𝔩 and ascii. " * 40_000)[:1_048_576]
CONTROL_CHARACTERS = "".join(map(chr, range(1, 32))) + "\x7f\x85\u2028\u2029"


def nulls(table: sa.Table, **key: Any) -> dict[str, Any]:
    """A source row with NULL in every column but ``key``."""
    return dict.fromkeys(c.name for c in table.columns) | key


def rated(plan: Plan, market: str, rate: Decimal) -> Plan:
    markets = tuple(dataclasses.replace(m, conversion_rate=rate) if m.market == market else m for m in plan.markets)
    return dataclasses.replace(plan, markets=markets)


# --- ways to make a source hostile ------------------------------------------------------


def rows(table: sa.Table, *values: dict[str, Any]) -> Callable[[sa.Engine], None]:
    return lambda engine: insert(engine, table, *values)


def without_primary_key(table: sa.Table, *values: dict[str, Any]) -> Callable[[sa.Engine], None]:
    """The table recreated with no key at all (a source that keeps no constraint), then the rows."""

    def build(engine: sa.Engine) -> None:
        existing = _read(engine, table)
        table.drop(engine)
        bare = sa.Table(table.name, sa.MetaData(), *(sa.Column(c.name, c.type) for c in table.columns))
        bare.create(engine)
        insert(engine, bare, *existing, *values)

    return build


def wider(table: sa.Table, column: str, *values: dict[str, Any]) -> Callable[[sa.Engine], None]:
    """A source column wider than the contract says (bigint; SQLite takes any integer as it is)."""

    def build(engine: sa.Engine) -> None:
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.execute(sa.text(f"ALTER TABLE {table.name} ALTER COLUMN {column} TYPE bigint"))
        insert(engine, sa.Table(table.name, sa.MetaData(), autoload_with=engine), *values)

    return build


def raw_text(table: sa.Table, column: str, key: dict[str, Any], hex_bytes: str) -> Callable[[sa.Engine], None]:
    """Store bytes that are not UTF-8 as text (only SQLite keeps them: PostgreSQL refuses)."""

    def build(engine: sa.Engine) -> None:
        where = " AND ".join(f"{k} = {v}" for k, v in key.items())
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {table.name} SET {column} = CAST(X'{hex_bytes}' AS TEXT) WHERE {where}"))

    return build


def altered(statement: str) -> Callable[[sa.Engine], None]:
    def build(engine: sa.Engine) -> None:
        with engine.begin() as conn:
            conn.execute(sa.text(statement))

    return build


def both(*builds: Callable[[sa.Engine], None]) -> Callable[[sa.Engine], None]:
    def build(engine: sa.Engine) -> None:
        for step in builds:
            step(engine)

    return build


def _read(engine: sa.Engine, table: sa.Table) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table)).mappings()]


# --- the corpus -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    """One hostile input and where it must end."""

    id: str
    domain: str
    build: Callable[[sa.Engine], None]
    ref: str
    market: str = "IT"
    reason: str | None = None  # quarantined with this reason
    moved: dict[str, Any] | None = None  # moved, with these target values
    stops: str | None = None  # the move stops with a message matching this
    out_of_scope: bool = False  # left in the source, counted in the report
    sqlite_source: bool = False  # only SQLite can hold the value: the source is SQLite, the target either
    plan: Plan = RELAXED


def user5(**values: Any) -> dict[str, Any]:
    return user(5, **values)


CASES = [
    # points
    Case(
        "points-null-in-every-account-column",
        "points",
        rows(ACCOUNTS, nulls(ACCOUNTS, user_id=5)),
        "poco:points:5",
        reason="invalid_balance",
    ),
    Case(
        "points-null-in-every-user-column",
        "points",
        both(rows(USERS, nulls(USERS, user_id=6)), rows(ACCOUNTS, account(6, 10))),
        "poco:points:6",
        market="GL",
        reason="unlinked_account",
    ),
    Case(
        "points-balance-at-the-32-bit-limit",
        "points",
        rows(ACCOUNTS, account(5, INT32_MAX)),
        "poco:points:5",
        moved={"delta": INT32_MAX, "reason": "poco_migration"},
    ),
    Case(
        "points-balance-at-the-32-bit-minimum",
        "points",
        rows(ACCOUNTS, account(5, -(2**31))),
        "poco:points:5",
        reason="negative_balance",
    ),
    Case(
        "points-balance-beyond-32-bits",
        "points",
        wider(ACCOUNTS, "balance", account(5, 2**31 + 5)),
        "poco:points:5",
        reason="out_of_range",
    ),
    Case(
        "points-balance-with-a-fraction",
        "points",
        rows(ACCOUNTS, account(5, 10.5)),
        "poco:points:5",
        reason="invalid_balance",
        sqlite_source=True,
    ),
    Case(
        "points-balance-beyond-64-bits-of-credit",
        "points",
        wider(ACCOUNTS, "balance", account(5, 2**62)),
        "poco:points:5",
        reason="out_of_range",
        plan=rated(RELAXED, "IT", Decimal(3)),
    ),
    Case(
        "points-credit-beyond-32-bits-at-the-market-rate",
        "points",
        rows(ACCOUNTS, account(5, INT32_MAX)),
        "poco:points:5",
        reason="out_of_range",
        plan=rated(RELAXED, "IT", Decimal(2)),
    ),
    Case(
        "points-duplicate-user-id-in-accounts-without-a-key",
        "points",
        without_primary_key(ACCOUNTS, account(5, 10), account(5, 20)),
        "poco:points:5",
        stops=r"points IT: gate_failed.*points\.extract: expect_column_values_to_be_unique\(user_id\)",
    ),
    Case(
        "points-duplicate-user-id-in-users-without-a-key",
        "points",
        both(without_primary_key(USERS, user(5, market="IT")), rows(ACCOUNTS, account(5, 10))),
        "poco:points:5",
        stops=r"points IT: gate_failed.*points\.extract: expect_column_values_to_be_unique\(user_id\)",
    ),
    Case(
        "points-market-not-in-the-plan",
        "points",
        rows(ACCOUNTS, account(5, 10)),
        "poco:points:5",
        market="GL",
        moved={"delta": 10},
    ),
    Case(
        "points-market-in-lower-case-with-white-space",
        "points",
        rows(ACCOUNTS, account(5, 10)),
        "poco:points:5",
        moved={"delta": 10},
    ),
    Case(
        "points-market-that-looks-like-sql",
        "points",
        rows(ACCOUNTS, account(5, 10)),
        "poco:points:5",
        market="GL",
        moved={"delta": 10},
    ),
    Case(
        "points-expiry-at-the-end-of-the-calendar",
        "points",
        rows(ACCOUNTS, account(5, 10, expires_at=dt.date(9999, 12, 31))),
        "poco:points:5",
        moved={"delta": 10, "expires_at": dt.date(9999, 12, 31)},
    ),
    # reviews
    Case(
        "reviews-null-in-every-column",
        "reviews",
        rows(REVIEWS, nulls(REVIEWS, review_id=5)),
        "poco:review:5",
        market="GL",
        reason="unlinked_account",
    ),
    Case(
        "reviews-one-megabyte-body",
        "reviews",
        rows(REVIEWS, review(5, 1, body=MEGABYTE_BODY)),
        "poco:review:5",
        moved={"body": MEGABYTE_BODY},
    ),
    Case(
        "reviews-control-characters",
        "reviews",
        rows(REVIEWS, review(5, 1, title=CONTROL_CHARACTERS, body=f"ok{CONTROL_CHARACTERS}ok")),
        "poco:review:5",
        moved={"title": CONTROL_CHARACTERS, "body": f"ok{CONTROL_CHARACTERS}ok"},
    ),
    Case(
        "reviews-nul-byte-in-the-body",
        "reviews",
        rows(REVIEWS, review(5, 1, body="before\x00after")),
        "poco:review:5",
        reason="invalid_text",
        sqlite_source=True,
    ),
    Case(
        "reviews-body-that-is-not-utf8",
        "reviews",
        both(rows(REVIEWS, review(5, 1)), raw_text(REVIEWS, "body", {"review_id": 5}, "6F6BFFEDA080")),
        "poco:review:5",
        reason="invalid_text",
        sqlite_source=True,
    ),
    Case(
        "reviews-helpful-votes-beyond-64-bits",
        "reviews",
        rows(REVIEWS, review(5, 1, helpful_votes=1e20)),  # SQLite keeps it as a REAL
        "poco:review:5",
        reason="out_of_range",
        sqlite_source=True,
    ),
    Case(
        "reviews-rating-with-a-fraction",
        "reviews",
        rows(REVIEWS, review(5, 1, rating=4.5)),
        "poco:review:5",
        reason="invalid_rating",
        sqlite_source=True,
    ),
    Case(
        "reviews-title-stored-as-a-blob",
        "reviews",
        rows(REVIEWS, review(5, 1, title=b"\xc3\x28")),
        "poco:review:5",
        reason="invalid_text",
        sqlite_source=True,
    ),
    Case(
        "reviews-review-id-null-without-a-key",
        "reviews",
        without_primary_key(REVIEWS, review(None, 1)),
        "poco:review:1",
        stops=r"reviews IT: gate_failed.*reviews\.extract: expect_column_values_to_not_be_null\(review_id\)",
    ),
    Case(
        "reviews-text-that-looks-like-sql",
        "reviews",
        rows(REVIEWS, review(5, 1, title="'); DROP TABLE mi_reviews; --", body="1' OR '1'='1'; DELETE FROM x; --")),
        "poco:review:5",
        moved={"title": "'); DROP TABLE mi_reviews; --", "body": "1' OR '1'='1'; DELETE FROM x; --"},
    ),
    Case(
        "reviews-text-that-looks-like-html",
        "reviews",
        rows(REVIEWS, review(5, 1, title="<b>x</b>&amp;", body='<script>alert("poco")</script><img src=x onerror=1>')),
        "poco:review:5",
        moved={"title": "<b>x</b>&amp;", "body": '<script>alert("poco")</script><img src=x onerror=1>'},
    ),
    Case(
        "reviews-dates-at-both-ends-of-the-calendar",
        "reviews",
        rows(REVIEWS, review(5, 1, created_at=FAR_PAST, updated_at=FAR_FUTURE)),
        "poco:review:5",
        moved={"created_at": FAR_PAST, "updated_at": FAR_FUTURE},
    ),
    Case(
        "reviews-helpful-votes-beyond-32-bits",
        "reviews",
        wider(REVIEWS, "helpful_votes", review(5, 1, helpful_votes=2**31)),
        "poco:review:5",
        reason="out_of_range",
    ),
    Case(
        "reviews-body-of-unicode-white-space-only",
        "reviews",
        rows(REVIEWS, review(5, 1, body="\u00a0\u2003\u3000\t\r\n")),
        "poco:review:5",
        reason="empty_body",
    ),
    Case(
        "reviews-emoji-astral-planes-and-bidi-overrides",
        "reviews",
        rows(REVIEWS, review(5, 1, body="👍🏽 𝔘𝔫𝔦 \u202egnp.exe\u202c ﷽ \u200b")),
        "poco:review:5",
        moved={"body": "👍🏽 𝔘𝔫𝔦 \u202egnp.exe\u202c ﷽ \u200b"},
    ),
    Case(
        "reviews-status-in-another-case",
        "reviews",
        rows(REVIEWS, review(5, 1, status="PUBLISHED")),
        "poco:review:5",
        reason="invalid_status",
    ),
    Case(
        "reviews-duplicate-review-id-without-a-key",
        "reviews",
        without_primary_key(REVIEWS, review(5, 1), review(5, 2)),
        "poco:review:5",
        stops=r"reviews IT: gate_failed.*reviews\.extract: expect_column_values_to_be_unique\(review_id\)",
    ),
    Case(
        "reviews-missing-column",
        "reviews",
        altered("ALTER TABLE poco_reviews DROP COLUMN language"),
        "poco:review:1",
        stops=r"^reviews IT: cannot read the POCO source .*language",
    ),
    # initiatives
    Case(
        "initiatives-null-in-every-column-but-the-status",
        "initiatives",
        rows(INITIATIVES, nulls(INITIATIVES, initiative_id=5, status="active")),
        "poco:initiative:5",
        market="GL",
        reason="invalid_dates",
    ),
    Case(
        "initiatives-null-in-every-column",
        "initiatives",
        rows(INITIATIVES, nulls(INITIATIVES, initiative_id=5)),
        "poco:initiative:5",
        market="GL",
        out_of_scope=True,
    ),
    Case(
        "initiatives-dates-at-both-ends-of-the-calendar",
        "initiatives",
        rows(INITIATIVES, initiative(5, starts_at=FAR_PAST, ends_at=FAR_FUTURE)),
        "poco:initiative:5",
        moved={"starts_at": FAR_PAST, "ends_at": FAR_FUTURE, "brand": "POCO"},
    ),
    Case(
        "initiatives-kind-outside-the-contract",
        "initiatives",
        rows(INITIATIVES, initiative(5, kind="webinar")),
        "poco:initiative:5",
        reason="invalid_kind",
    ),
    Case(
        "initiatives-renamed-column",
        "initiatives",
        altered("ALTER TABLE poco_initiatives RENAME COLUMN ends_at TO finishes_at"),
        "poco:initiative:1",
        stops=r"^initiatives IT: cannot read the POCO source .*ends_at",
    ),
    Case(
        "initiatives-nul-byte-in-the-title",
        "initiatives",
        rows(INITIATIVES, initiative(5, title="Beta\x00program")),
        "poco:initiative:5",
        reason="invalid_text",
        sqlite_source=True,
    ),
    Case(
        "initiatives-market-that-looks-like-html",
        "initiatives",
        rows(INITIATIVES, initiative(5, market="<script>IT</script>")),
        "poco:initiative:5",
        market="GL",
        moved={"market": "<script>IT</script>"},
    ),
    # participants
    Case(
        "participants-null-in-every-column-but-the-key",
        "participants",
        rows(PARTICIPANTS, nulls(PARTICIPANTS, initiative_id=1, user_id=5)),
        "poco:participant:1:5",
        reason="invalid_status",
    ),
    Case(
        "participants-reward-at-the-32-bit-limit",
        "participants",
        rows(PARTICIPANTS, participant(1, 5, reward_points=INT32_MAX)),
        "poco:participant:1:5",
        moved={"reward_points": INT32_MAX},
    ),
    Case(
        "participants-reward-beyond-32-bits",
        "participants",
        wider(PARTICIPANTS, "reward_points", participant(1, 5, reward_points=-(2**31) - 1)),
        "poco:participant:1:5",
        reason="out_of_range",
    ),
    Case(
        "participants-duplicate-key-without-a-key",
        "participants",
        without_primary_key(PARTICIPANTS, participant(1, 5), participant(1, 5, status="winner")),
        "poco:participant:1:5",
        stops=r"participants IT: gate_failed.*expect_compound_columns_to_be_unique",
    ),
    Case(
        "participants-missing-table",
        "participants",
        altered("DROP TABLE poco_initiative_participants"),
        "poco:participant:1:1",
        stops=r"^participants IT: cannot read the POCO source .*poco_initiative_participants",
    ),
]
# The market a user of each case lives in, where the case is about the market itself.
MARKETS = {
    "points-market-not-in-the-plan": "XX",
    "points-market-in-lower-case-with-white-space": "  it ",
    "points-market-that-looks-like-sql": "IT' OR '1'='1",
}


def background(engine: sa.Engine, case: Case) -> None:
    """Valid markets around the hostile row (IT, and GL where unknown markets go): four linked
    users each with a balance and a review, a product, four initiatives and four participants;
    user 5 (IT, unless the case is about the market) is linked too."""
    users = [*linked_users(1, 4), *linked_users(GLOBAL[0], 4, market="GL")]
    insert(engine, USERS, *users, user5(market=MARKETS.get(case.id, "IT")))
    insert(engine, ACCOUNTS, *(account(u, 100) for u in (*BACKGROUND, *GLOBAL)))
    insert(engine, PRODUCTS, product("F6"))
    insert(engine, REVIEWS, *(review(u, u) for u in (*BACKGROUND, *GLOBAL)))
    insert(engine, INITIATIVES, *(initiative(i) for i in BACKGROUND), *(initiative(i, market="GL") for i in GLOBAL))
    insert(engine, PARTICIPANTS, *(participant(1, u) for u in BACKGROUND))


def background_refs(domain: str) -> set[str]:
    return {
        "points": {f"poco:points:{u}" for u in BACKGROUND},
        "reviews": {f"poco:review:{u}" for u in BACKGROUND},
        "initiatives": {f"poco:initiative:{i}" for i in BACKGROUND},
        "participants": {f"poco:participant:1:{u}" for u in BACKGROUND},
    }[domain]


@pytest.fixture(autouse=True)
def _no_data_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POCO_MIGRATION_DATA_DOCS", "off")


class Outcome:
    """Where the rows of a case's domain are after its moves."""

    def __init__(self, target: sa.Engine, domain: str) -> None:
        table, q, m = TARGETS[domain], schemas.quarantine, schemas.moved
        with target.connect() as conn:
            self.target = {r["source_ref"]: dict(r) for r in conn.execute(sa.select(table)).mappings()}
            self.quarantine = {
                ref: (reason, market)
                for ref, reason, market in conn.execute(
                    sa.select(q.c.source_ref, q.c.reason, q.c.market).where(q.c.domain == domain)
                )
            }
            self.markets = dict(conn.execute(sa.select(m.c.source_ref, m.c.market).where(m.c.domain == domain)).all())


def moves_of(case: Case) -> list[tuple[str, str]]:
    """The moves a case runs: its domain in IT and in its own market, initiatives first."""
    domains = ["initiatives", "participants"] if case.domain == "participants" else [case.domain]
    markets = dict.fromkeys(["IT", case.market])
    return [(d, m) for d in domains for m in markets]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_moved_quarantined_or_named(case: Case, db_urls: dict[str, str], tmp_path) -> None:
    source_url = f"sqlite:///{tmp_path / 'hostile.db'}" if case.sqlite_source else db_urls["source"]
    source, target = engine_for(source_url), sa.create_engine(db_urls["target"])
    schemas.create_source(source)
    schemas.create_target(target)
    background(source, case)
    case.build(source)

    def run_all() -> None:
        for domain, market in moves_of(case):
            request = MoveRequest(domain, market, case.plan, AS_OF)
            run_move(MOVES[domain], request, source, sa.make_url(db_urls["target"]))

    if case.stops:
        with pytest.raises((MoveError, GateFailed)) as stopped:
            run_all()
        assert re.search(case.stops, str(stopped.value), re.DOTALL), str(stopped.value)
    else:
        run_all()
    outcome = Outcome(target, case.domain)
    in_target, in_quarantine = case.ref in outcome.target, case.ref in outcome.quarantine
    assert not (in_target and in_quarantine), f"{case.ref} is in both places"
    if case.reason:
        assert outcome.quarantine[case.ref] == (case.reason, case.market)
        assert background_refs(case.domain) <= set(outcome.target)
    elif case.moved is not None:
        assert in_target and outcome.markets[case.ref] == case.market
        assert {k: outcome.target[case.ref][k] for k in case.moved} == case.moved
        assert background_refs(case.domain) <= set(outcome.target)
    elif case.stops:
        assert not in_target, f"{case.ref} of a stopped move reached the target"
    else:
        assert case.out_of_scope and not in_target and not in_quarantine
        [row] = [
            r
            for r in build_report(source, target, case.plan)["rows"]
            if (r["domain"], r["market"]) == (case.domain, case.market)
        ]
        assert row["out_of_scope"] == 1 and row["drift"] == 0
    if not case.stops:
        # The independent audit, on the same hostile source, agrees: nothing lost, nothing twice,
        # every moved row as the contract maps it.
        moved = moves_of(case)
        audited = run_audit(source, target, case.plan, {m for _, m in moved}, dict.fromkeys(d for d, _ in moved))
        assert [f for c in audited.cells() for f in c["findings"]] == []
    record("hostile cases")
