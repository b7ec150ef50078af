"""The contract's mapping, written out a second time for the audit, from docs/contract.md.

Deliberately not the move's code: an audit that reused the move's rules or mapping
would agree with any mistake in them. Each domain says, as two SELECTs, what its rows
look like on each side in the audit's one spelling (``values``):

Columns are selected as the databases type them; ``values`` spells or hashes them by
their kind.

- the source side: the key (``k1``, ``k2``), the row's market (``row_market``), whether the row is
  ``in_scope`` now, and every target column as the contract maps it from the source
  row as it is now;
- the target side: the key recovered from ``source_ref``, the ``ref`` itself, and the
  same columns as they are in the Xiaomi tables; for points, also the ledger's entries one
  by one (``target_entries``), which the range sums add up per user without grouping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from poco_migration import schemas
from poco_migration.audit.values import AMOUNT, INSTANT, NUMBER, TEXT
from poco_migration.plan import GLOBAL_MARKET, Plan
from poco_migration.refs import adjustment_sql, is_domain, keys_sql, opening_ref_sql, ref_sql

# Credits beyond this are out of range for the 32-bit ledger anyway; the bound keeps
# 2 x balance x p inside 64 bits for any rate the plan accepts (p <= 10^9).
BALANCE_BOUND = 2**31


@dataclass(frozen=True)
class Mapping:
    domain: str
    kinds: dict[str, str]  # each compared column and its kind (values.NUMBER, TEXT, INSTANT, AMOUNT)
    source: Callable[[Plan], sa.Select]
    target: Callable[[], sa.Select]
    source_key: sa.ColumnElement[Any]  # the indexed column whose range bounds the buckets
    key_count: int = 1
    # The target's rows as the entries they add up from, with a ``weight`` (values.linear_hash):
    # for the range sums where both sides are PostgreSQL.
    target_entries: Callable[[], sa.Select] | None = None
    # The keys whose entries all weigh 0 (``k1``): those sums cannot see them where their amounts
    # add up to 0, so they are read and judged apart.
    target_unweighed: Callable[[], sa.Select] | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.kinds)


def _market(column: sa.ColumnElement[Any], plan: Plan) -> sa.ColumnElement[str]:
    """The contract: a row's market is upper(trim(market)) where the plan has it, else GL."""
    code = sa.func.upper(sa.func.trim(column))
    return sa.case((code.in_(plan.codes), code), else_=sa.literal(GLOBAL_MARKET))


def market_of(raw: str | None, plan: Plan) -> str:
    """``_market`` in Python, for the raw market values the range sums count rows by."""
    code = (raw or "").strip(" ").upper()
    return code if code in plan.codes else GLOBAL_MARKET


def _credit(balance: sa.ColumnElement[Any], rate: Decimal) -> sa.ColumnElement[int]:
    """balance x rate, rounded half up, in integers: floor((2bp + q) / 2q) for rate = p/q."""
    p, q = rate.as_integer_ratio()
    wide = sa.cast(balance, sa.BigInteger)  # before any arithmetic: abs(-2^31) overflows an integer
    exact = (wide * (2 * p) + q) // (2 * q)
    return sa.case((wide.between(-BALANCE_BOUND, BALANCE_BOUND), exact), else_=sa.null())


# --- points: one credit per account, then adjustments; compared per user ---------------
accounts, users, ledger = schemas.poco_points_accounts, schemas.poco_users, schemas.mi_points_ledger
# A ledger entry's user, whether it is the opening credit, and whether it is POCO's at all:
# read by the entries, the per-user rows and the users without an opening credit alike.
entry_user = keys_sql("points", ledger.c.source_ref)[0]
entry_opens = adjustment_sql(ledger.c.source_ref).is_(None)
entry_of_poco = is_domain(ledger.c.source_ref, "points")


def _points_credit(market: sa.ColumnElement[str], plan: Plan) -> sa.ColumnElement[int]:
    """The credit at the rate of the row's market: one branch per rate, not per market (the
    market's expression is evaluated again in each branch; the shipped plan has one rate)."""
    markets: dict[Decimal, list[str]] = {}
    for m in plan.markets:
        markets.setdefault(m.conversion_rate, []).append(m.market)
    *others, last = markets.items()
    branches = [(market.in_(codes), _credit(accounts.c.balance, rate)) for rate, codes in others]
    everywhere_else = _credit(accounts.c.balance, last[0])
    return sa.case(*branches, else_=everywhere_else) if branches else everywhere_else


def _points_source(plan: Plan) -> sa.Select:
    market = _market(users.c.market, plan)
    credit = _points_credit(market, plan)
    return sa.select(
        accounts.c.user_id.label("k1"),
        market.label("row_market"),
        users.c.market.label("raw_market"),
        sa.or_(accounts.c.balance != 0, accounts.c.balance.is_(None)).label("in_scope"),
        users.c.mi_account_id.label("mi_account_id"),
        credit.label("credit"),
        sa.literal(0, sa.BigInteger).label("credited_twice"),
    ).select_from(accounts.outerjoin(users, users.c.user_id == accounts.c.user_id))


def _points_entries() -> sa.Select:
    """Each ledger entry under its user: the opening credit weighs 1 (its account is the user's),
    an adjustment 0 (only its delta counts, into the user's credit)."""
    return sa.select(
        entry_user.label("k1"),
        sa.case((entry_opens, 1), else_=0).label("weight"),
        ledger.c.mi_account_id.label("mi_account_id"),
        ledger.c.delta.label("credit"),
        sa.literal(0, sa.BigInteger).label("credited_twice"),
    ).where(entry_of_poco)


def _points_unweighed() -> sa.Select:
    """Users with adjustments but no opening credit: their entries weigh 0 in the range sums
    (a stray ``poco:points:<u>:1`` of 0 points would add nothing there)."""
    opening = ledger.alias("opening")
    return (
        sa.select(entry_user.label("k1"))
        .where(entry_of_poco, ~entry_opens)
        .where(~sa.exists().where(opening.c.source_ref == opening_ref_sql(ledger.c.source_ref)))
        .distinct()
    )


def _points_target() -> sa.Select:
    per_user = (
        sa.select(
            entry_user.label("k1"),
            sa.func.sum(ledger.c.delta).label("total"),
            sa.func.max(sa.case((entry_opens, ledger.c.mi_account_id))).label("account"),
            (sa.func.count() - sa.func.count(sa.distinct(ledger.c.source_ref))).label("twice"),
        )
        .where(entry_of_poco)
        .group_by(sa.literal_column("k1"))
        .subquery("per_user")
    )
    return sa.select(
        per_user.c.k1,
        ref_sql("points", per_user.c.k1).label("ref"),
        per_user.c.account.label("mi_account_id"),
        per_user.c.total.label("credit"),
        per_user.c.twice.label("credited_twice"),
    )


# --- reviews: author and product mapped, deleted -> removed, the rest kept ----------------
reviews, products = schemas.poco_reviews, schemas.poco_products
REVIEW_KINDS = {
    **dict.fromkeys(("mi_account_id", "mi_product_id", "rating"), NUMBER),
    **dict.fromkeys(("title", "body", "language", "status"), TEXT),
    "helpful_votes": NUMBER,
    **dict.fromkeys(("created_at", "updated_at"), INSTANT),
}


def _reviews_source(plan: Plan) -> sa.Select:
    r = reviews.c
    return sa.select(
        r.review_id.label("k1"),
        _market(users.c.market, plan).label("row_market"),
        users.c.market.label("raw_market"),
        sa.or_(r.status != "deleted", r.status.is_(None)).label("in_scope"),
        users.c.mi_account_id.label("mi_account_id"),
        products.c.mi_product_id.label("mi_product_id"),
        r.rating.label("rating"),
        r.title.label("title"),
        r.body.label("body"),
        r.language.label("language"),
        sa.case((r.status == "deleted", "removed"), else_=r.status).label("status"),
        r.helpful_votes.label("helpful_votes"),
        r.created_at.label("created_at"),
        r.updated_at.label("updated_at"),
    ).select_from(reviews.outerjoin(users, users.c.user_id == r.user_id).outerjoin(products, products.c.sku == r.sku))


def _reviews_target() -> sa.Select:
    t = schemas.mi_reviews.c
    kept = [t[c].label(c) for c in ("title", "body", "language", "status")]
    return sa.select(
        keys_sql("reviews", t.source_ref)[0].label("k1"),
        t.source_ref.label("ref"),
        *(t[c].label(c) for c in ("mi_account_id", "mi_product_id", "rating")),
        *kept,
        t.helpful_votes.label("helpful_votes"),
        t.created_at.label("created_at"),
        t.updated_at.label("updated_at"),
    ).where(is_domain(t.source_ref, "reviews"))


# --- initiatives: under the POCO brand, every other column kept ---------------------------
initiatives = schemas.poco_initiatives
IN_SCOPE = ("active", "ended")
INITIATIVE_KINDS = {
    **dict.fromkeys(("brand", "market", "kind", "title"), TEXT),
    **dict.fromkeys(("starts_at", "ends_at"), INSTANT),
    "status": TEXT,
}


def _initiative_columns(table: sa.Table, brand: sa.ColumnElement[str]) -> list[sa.ColumnElement[Any]]:
    c = table.c
    return [
        brand.label("brand"),
        *(c[name].label(name) for name in ("market", "kind", "title")),
        c.starts_at.label("starts_at"),
        c.ends_at.label("ends_at"),
        c.status.label("status"),
    ]


def _initiatives_source(plan: Plan) -> sa.Select:
    i = initiatives.c
    return sa.select(
        i.initiative_id.label("k1"),
        _market(i.market, plan).label("row_market"),
        i.market.label("raw_market"),
        i.status.in_(IN_SCOPE).label("in_scope"),
        *_initiative_columns(initiatives, sa.literal("POCO", sa.Text)),
    )


def _initiatives_target() -> sa.Select:
    t = schemas.mi_initiatives
    return sa.select(
        keys_sql("initiatives", t.c.source_ref)[0].label("k1"),
        t.c.source_ref.label("ref"),
        *_initiative_columns(t, t.c.brand),
    ).where(is_domain(t.c.source_ref, "initiatives"))


# --- participants: under their initiative's Xiaomi id and the user's Mi account -----------
participants = schemas.poco_initiative_participants
PARTICIPANT_KINDS = {
    **dict.fromkeys(("initiative", "mi_account_id"), NUMBER),
    "joined_at": INSTANT,
    "reward_points": NUMBER,
    "status": TEXT,
}


def _participants_source(plan: Plan) -> sa.Select:
    p = participants.c
    raw = sa.case((initiatives.c.initiative_id.is_not(None), initiatives.c.market), else_=users.c.market)
    return sa.select(
        p.initiative_id.label("k1"),
        p.user_id.label("k2"),
        _market(raw, plan).label("row_market"),
        raw.label("raw_market"),
        sa.true().label("in_scope"),
        p.initiative_id.label("initiative"),
        users.c.mi_account_id.label("mi_account_id"),
        p.joined_at.label("joined_at"),
        p.reward_points.label("reward_points"),
        p.status.label("status"),
    ).select_from(
        participants.outerjoin(users, users.c.user_id == p.user_id).outerjoin(
            initiatives, initiatives.c.initiative_id == p.initiative_id
        )
    )


def _participants_target() -> sa.Select:
    t, moved = schemas.mi_initiative_participants, schemas.mi_initiatives
    k1, k2 = keys_sql("participants", t.c.source_ref)
    # The participant's initiative as POCO knows it, read back from the Xiaomi initiative it
    # points to: a participant under the wrong Xiaomi initiative shows the wrong POCO id.
    initiative = keys_sql("initiatives", moved.c.source_ref)[0]
    return (
        sa.select(
            k1.label("k1"),
            k2.label("k2"),
            t.c.source_ref.label("ref"),
            initiative.label("initiative"),
            t.c.mi_account_id.label("mi_account_id"),
            t.c.joined_at.label("joined_at"),
            t.c.reward_points.label("reward_points"),
            t.c.status.label("status"),
        )
        .select_from(t.outerjoin(moved, moved.c.initiative_id == t.c.initiative_id))
        .where(is_domain(t.c.source_ref, "participants"))
    )


MAPPINGS = {
    "points": Mapping(
        "points",
        {"mi_account_id": NUMBER, "credit": AMOUNT, "credited_twice": NUMBER},
        _points_source,
        _points_target,
        accounts.c.user_id,
        target_entries=_points_entries,
        target_unweighed=_points_unweighed,
    ),
    "reviews": Mapping("reviews", REVIEW_KINDS, _reviews_source, _reviews_target, reviews.c.review_id),
    "initiatives": Mapping(
        "initiatives", INITIATIVE_KINDS, _initiatives_source, _initiatives_target, initiatives.c.initiative_id
    ),
    "participants": Mapping(
        "participants",
        PARTICIPANT_KINDS,
        _participants_source,
        _participants_target,
        participants.c.initiative_id,
        key_count=2,
    ),
}
