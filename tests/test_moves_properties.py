"""The contract's invariant on random small POCO sources, on SQLite and PostgreSQL.

"Each in-scope row ends in exactly one of two places: the target, under its
source_ref, or the quarantine, under the same source_ref with a reason. Never both,
never neither, never twice." Out-of-scope rows are in neither place.

Each example builds a random source (users linked or not, in IT, GL or an unknown
market; balances including 0 and negative ones; reviews with random ratings, bodies,
statuses and skus, mapped or not, duplicates included; initiatives with random
statuses and dates and their participants), runs the moves of IT and GL, and checks
every row against a model of the contract written here, independently of the
package. Each market also gets one valid "anchor" row per domain, so that no market
is ever 100% quarantined: with the plan's ratio at 0.99, the gate never refuses.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sources import (
    ACCOUNTS,
    AS_OF,
    INITIATIVES,
    PARTICIPANTS,
    PRODUCTS,
    REVIEWS,
    USERS,
    account,
    initiative,
    insert,
    mi_account,
    participant,
    product,
    review,
    user,
)

from poco_migration import schemas
from poco_migration.moves import MOVES
from poco_migration.moves.pipeline import run_move
from poco_migration.moves.types import MoveRequest
from poco_migration.plan import load_plan

MARKETS = ("IT", "GL")
RATES = {"IT": Decimal("1.5"), "GL": Decimal("0.75")}
PLAN = dataclasses.replace(
    load_plan(),
    max_quarantine_ratio=0.99,
    markets=tuple(
        dataclasses.replace(m, conversion_rate=RATES[m.market]) if m.market in RATES else m for m in load_plan().markets
    ),
)
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

SKUS = ("A", "B", "C", "UNKNOWN")
BODIES = ("good", " Good ", "GOOD\n", "bad", "ดีมาก 🔥", "", "   ", "\t")
RATINGS = (None, -1, 0, 1, 2, 3, 4, 5, 6)
REVIEW_STATUSES = ("published", "hidden", "pending", "deleted")
INITIATIVE_STATUSES = ("draft", "active", "ended", "cancelled")
# Anchors: one valid row per market and domain (ids out of the random ranges).
ANCHOR_USERS = {"IT": 100, "GL": 200}
ANCHOR_SKU = "ANCHOR"


@pytest.fixture(autouse=True)
def _no_data_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POCO_MIGRATION_DATA_DOCS", "off")


# --- the random source ----------------------------------------------------------------------


@dataclass
class Source:
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    initiatives: dict[int, dict[str, Any]] = field(default_factory=dict)
    participants: list[dict[str, Any]] = field(default_factory=list)


@st.composite
def users(draw: st.DrawFn) -> dict[int, dict[str, Any]]:
    """1 to 6 users, linked or not, in IT, GL, an unknown market or none; user n+1 never exists."""
    count = draw(st.integers(1, 6))
    random = {
        uid: user(
            uid,
            market=draw(st.sampled_from(["IT", "IT", "GL", "ZZ", None])),
            mi_account_id=mi_account(uid) if draw(st.booleans()) else None,
        )
        for uid in range(1, count + 1)
    }
    anchors = {uid: user(uid, market=market) for market, uid in ANCHOR_USERS.items()}
    return random | anchors


def some_user(known: dict[int, Any]) -> st.SearchStrategy[int]:
    """A random user id: one of the random users, or one that does not exist."""
    return st.integers(1, max(uid for uid in known if uid not in ANCHOR_USERS.values()) + 1)


@st.composite
def points_and_reviews(draw: st.DrawFn) -> Source:
    source = Source(users=draw(users()))
    balances = st.sampled_from([-7, -1, 0, 0, 1, 3, 5, 10, 251]) | st.integers(-100, 10_000)
    holders = draw(st.sets(some_user(source.users), max_size=7))
    source.accounts = [account(uid, draw(balances)) for uid in sorted(holders)]
    source.accounts += [account(uid, 5) for uid in ANCHOR_USERS.values()]

    source.products = {sku: product(sku, **({} if draw(st.booleans()) else {"mi_product_id": None})) for sku in "ABC"}
    source.products[ANCHOR_SKU] = product(ANCHOR_SKU)
    count = draw(st.integers(0, 10))
    ids = draw(st.permutations(range(1, count + 1)))  # review ids in random insertion order
    source.reviews = [
        review(
            rid,
            draw(some_user(source.users)),
            draw(st.sampled_from(SKUS)),
            rating=draw(st.sampled_from(RATINGS)),
            body=draw(st.sampled_from(BODIES)),
            status=draw(st.sampled_from(REVIEW_STATUSES)),
        )
        for rid in ids
    ]
    source.reviews += [review(1000 + uid, uid, ANCHOR_SKU) for uid in ANCHOR_USERS.values()]
    return source


@st.composite
def initiatives_and_participants(draw: st.DrawFn) -> Source:
    source = Source(users=draw(users()))
    count = draw(st.integers(0, 5))
    for iid in range(1, count + 1):
        row = initiative(
            iid,
            market=draw(st.sampled_from(["IT", "GL", "XX", None])),
            status=draw(st.sampled_from(INITIATIVE_STATUSES)),
        )
        if draw(st.booleans()):
            row["starts_at"], row["ends_at"] = row["ends_at"], row["starts_at"]
        source.initiatives[iid] = row
    for market, uid in ANCHOR_USERS.items():
        source.initiatives[uid] = initiative(uid, market=market)
    pairs = draw(st.sets(st.tuples(st.integers(1, count + 1), some_user(source.users)), max_size=8))
    statuses = st.sampled_from(["joined", "winner", "withdrawn"])
    source.participants = [participant(i, u, status=draw(statuses)) for i, u in sorted(pairs)]
    source.participants += [participant(uid, uid) for uid in ANCHOR_USERS.values()]
    return source


# --- the contract, as a model ------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """An in-scope row: its market, and the reasons that may quarantine it (none: it must move)."""

    market: str
    reasons: frozenset[str]


def market_of(market: str | None) -> str:
    return market if market in PLAN.codes else "GL"


def user_market(source: Source, user_id: int) -> str:
    return market_of(source.users[user_id]["market"]) if user_id in source.users else "GL"


def unlinked(source: Source, user_id: int) -> bool:
    return user_id not in source.users or source.users[user_id]["mi_account_id"] is None


def expected_points(source: Source) -> tuple[dict[str, Expected], set[str]]:
    in_scope, out_of_scope = {}, set()
    for row in source.accounts:
        ref = f"poco:points:{row['user_id']}"
        if row["balance"] == 0:
            out_of_scope.add(ref)
            continue
        reasons = {"unlinked_account"} if unlinked(source, row["user_id"]) else set()
        reasons |= {"negative_balance"} if row["balance"] < 0 else set()
        in_scope[ref] = Expected(user_market(source, row["user_id"]), frozenset(reasons))
    return in_scope, out_of_scope


def review_defects(source: Source, row: dict[str, Any]) -> set[str]:
    """Every reason but duplicate that applies to a review."""
    mapped = row["sku"] in source.products and source.products[row["sku"]]["mi_product_id"] is not None
    rating = row["rating"]
    return {
        reason
        for reason, applies in (
            ("unlinked_account", unlinked(source, row["user_id"])),
            ("unmapped_product", not mapped),
            ("invalid_rating", rating is None or not 1 <= rating <= 5),
            ("empty_body", not row["body"].strip()),
        )
        if applies
    }


def expected_reviews(source: Source) -> tuple[dict[str, Expected], set[str]]:
    """Live reviews are in scope; among those with no other defect, the lowest review_id of each
    (user, sku, trimmed case-folded body) moves and the others are duplicates of it."""
    in_scope, out_of_scope = {}, set()
    first_of: dict[tuple, int] = {}
    for row in sorted(source.reviews, key=lambda r: r["review_id"]):
        ref = f"poco:review:{row['review_id']}"
        if row["status"] == "deleted":
            out_of_scope.add(ref)
            continue
        reasons = review_defects(source, row)
        key = (row["user_id"], row["sku"], row["body"].strip().casefold())
        if key in first_of:
            reasons.add("duplicate")
        elif not reasons:
            first_of[key] = row["review_id"]
        in_scope[ref] = Expected(user_market(source, row["user_id"]), frozenset(reasons))
    return in_scope, out_of_scope


def expected_initiatives(source: Source) -> tuple[dict[str, Expected], set[str]]:
    in_scope, out_of_scope = {}, set()
    for iid, row in source.initiatives.items():
        ref = f"poco:initiative:{iid}"
        if row["status"] not in ("active", "ended"):
            out_of_scope.add(ref)
            continue
        reasons = {"invalid_dates"} if row["ends_at"] < row["starts_at"] else set()
        in_scope[ref] = Expected(market_of(row["market"]), frozenset(reasons))
    return in_scope, out_of_scope


def expected_participants(source: Source) -> tuple[dict[str, Expected], set[str]]:
    initiatives, _ = expected_initiatives(source)
    in_scope = {}
    for row in source.participants:
        iid, uid = row["initiative_id"], row["user_id"]
        moving = initiatives.get(f"poco:initiative:{iid}")
        reasons = {"unlinked_account"} if unlinked(source, uid) else set()
        reasons |= {"orphan"} if moving is None or moving.reasons else set()
        market = market_of(source.initiatives[iid]["market"]) if iid in source.initiatives else user_market(source, uid)
        in_scope[f"poco:participant:{iid}:{uid}"] = Expected(market, frozenset(reasons))
    return in_scope, set()


# --- running and checking ------------------------------------------------------------------------


def reset(source_engine: sa.Engine, target_engine: sa.Engine) -> None:
    """Empty databases for each example (the function-scoped fixtures are shared by all of them)."""
    schemas.SOURCE.drop_all(source_engine)
    schemas.SOURCE.create_all(source_engine)
    for metadata in (schemas.TARGET, schemas.BOOKKEEPING):
        metadata.drop_all(target_engine)
        metadata.create_all(target_engine)


def load(source_engine: sa.Engine, source: Source) -> None:
    insert(source_engine, USERS, *source.users.values())
    insert(source_engine, ACCOUNTS, *source.accounts)
    insert(source_engine, PRODUCTS, *source.products.values())
    insert(source_engine, REVIEWS, *source.reviews)
    insert(source_engine, INITIATIVES, *source.initiatives.values())
    insert(source_engine, PARTICIPANTS, *source.participants)


def move(domains: tuple[str, ...], source_engine: sa.Engine, target_url: str) -> None:
    for domain in domains:
        for market in MARKETS:
            req = MoveRequest(domain, market, PLAN, as_of=AS_OF)
            assert run_move(MOVES[domain], req, source_engine, sa.make_url(target_url)).status in {
                "moved",
                "nothing_new",
            }


def target_rows(target_engine: sa.Engine, table: sa.Table) -> list[dict[str, Any]]:
    with target_engine.connect() as conn:
        return [dict(row) for row in conn.execute(sa.select(table)).mappings()]


def quarantined(target_engine: sa.Engine, domain: str) -> list[tuple[str, str, str]]:
    q = schemas.quarantine
    with target_engine.connect() as conn:
        query = sa.select(q.c.source_ref, q.c.reason, q.c.market).where(q.c.domain == domain)
        return [tuple(row) for row in conn.execute(query)]


def check_one_place(
    domain: str, expected: tuple[dict[str, Expected], set[str]], moved_refs: list[str], target_engine: sa.Engine
) -> None:
    """Every in-scope row in exactly one place, with a reason that applies; out-of-scope rows in neither."""
    in_scope, out_of_scope = expected
    in_quarantine = quarantined(target_engine, domain)
    quarantined_refs = [ref for ref, _, _ in in_quarantine]
    assert len(moved_refs) == len(set(moved_refs)), f"{domain}: moved twice"
    assert len(quarantined_refs) == len(set(quarantined_refs)), f"{domain}: quarantined twice"
    assert set(moved_refs).isdisjoint(quarantined_refs), f"{domain}: both moved and quarantined"
    assert set(moved_refs) | set(quarantined_refs) == set(in_scope), f"{domain}: lost, or out of scope and moved"
    assert out_of_scope.isdisjoint(set(moved_refs) | set(quarantined_refs))
    assert set(moved_refs) == {ref for ref, e in in_scope.items() if not e.reasons}, f"{domain}: valid rows move"
    for ref, reason, market in in_quarantine:
        assert reason in in_scope[ref].reasons, (domain, ref, reason)
        assert market == in_scope[ref].market, (domain, ref, market)


@SETTINGS
@given(source=points_and_reviews())
def test_points_and_reviews_each_end_in_exactly_one_place(
    source_engine: sa.Engine, target_engine: sa.Engine, db_urls: dict[str, str], source: Source
) -> None:
    """Points and reviews: one place per in-scope row; ledger sum per moved user = converted balance."""
    reset(source_engine, target_engine)
    load(source_engine, source)
    move(("points", "reviews"), source_engine, db_urls["target"])

    points = expected_points(source)
    ledger = target_rows(target_engine, schemas.mi_points_ledger)
    check_one_place("points", points, [e["source_ref"] for e in ledger], target_engine)
    sums: dict[int, int] = defaultdict(int)
    for entry in ledger:
        user_id = int(entry["source_ref"].split(":")[2])
        sums[user_id] += entry["delta"]
        assert (entry["reason"], entry["mi_account_id"]) == ("poco_migration", mi_account(user_id))
    balances = {row["user_id"]: row["balance"] for row in source.accounts}
    for user_id, total in sums.items():
        rate = RATES[points[0][f"poco:points:{user_id}"].market]
        assert total == int((balances[user_id] * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP)), user_id

    reviews = target_rows(target_engine, schemas.mi_reviews)
    check_one_place("reviews", expected_reviews(source), [r["source_ref"] for r in reviews], target_engine)
    by_ref = {f"poco:review:{r['review_id']}": r for r in source.reviews}
    for moved in reviews:
        original = by_ref[moved["source_ref"]]
        assert moved["mi_account_id"] == mi_account(original["user_id"])
        assert moved["mi_product_id"] == source.products[original["sku"]]["mi_product_id"]
        assert (moved["body"], moved["rating"], moved["status"]) == (
            original["body"],
            original["rating"],
            original["status"],
        )


@SETTINGS
@given(source=initiatives_and_participants())
def test_initiatives_and_participants_each_end_in_exactly_one_place(
    source_engine: sa.Engine, target_engine: sa.Engine, db_urls: dict[str, str], source: Source
) -> None:
    """Initiatives and participants: one place per in-scope row; a moved participant points at its moved initiative."""
    reset(source_engine, target_engine)
    load(source_engine, source)
    move(("initiatives", "participants"), source_engine, db_urls["target"])

    initiatives = target_rows(target_engine, schemas.mi_initiatives)
    check_one_place("initiatives", expected_initiatives(source), [i["source_ref"] for i in initiatives], target_engine)
    assert {i["brand"] for i in initiatives} <= {"POCO"}

    participants = target_rows(target_engine, schemas.mi_initiative_participants)
    check_one_place(
        "participants", expected_participants(source), [p["source_ref"] for p in participants], target_engine
    )
    mi_ids = {i["source_ref"]: i["initiative_id"] for i in initiatives}
    for moved in participants:
        _, _, iid, uid = moved["source_ref"].split(":")
        assert moved["initiative_id"] == mi_ids[f"poco:initiative:{iid}"]
        assert moved["mi_account_id"] == mi_account(int(uid))
