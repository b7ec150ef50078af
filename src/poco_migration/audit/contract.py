"""The contract's mapping, written out a second time for the audit, from docs/contract.md.

Deliberately not the move's code: an audit that reused the move's rules or mapping
would agree with any mistake in them. Each domain says, as two SELECTs, what its rows
look like on each side in the audit's one spelling (``values``):

- the source side: the key (``k1``, ``k2``), the row's market (``row_market``), whether the row is
  ``in_scope`` now, and every target column as the contract maps it from the source
  row as it is now;
- the target side: the key recovered from ``source_ref``, the ``ref`` itself, whether
  the row is ``retained`` (its source row may have left scope since it moved: a review
  ``removed``, an initiative no longer active or ended, a ledger that sums to 0), and
  the same columns as they are in the Xiaomi tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from poco_migration import schemas
from poco_migration.audit.values import instant, number, text
from poco_migration.plan import GLOBAL_MARKET, Plan
from poco_migration.refs import adjustment_sql, is_domain, keys_sql, ref_sql

# Credits beyond this are out of range for the 32-bit ledger anyway; the bound keeps
# 2 x balance x p inside 64 bits for any rate the plan accepts (p <= 10^9).
BALANCE_BOUND = 2**31


@dataclass(frozen=True)
class Mapping:
    domain: str
    columns: tuple[str, ...]
    source: Callable[[Plan], sa.Select]
    target: Callable[[], sa.Select]
    source_key: sa.ColumnElement[Any]  # the indexed column whose range bounds the buckets
    key_count: int = 1


def _market(column: sa.ColumnElement[Any], plan: Plan) -> sa.ColumnElement[str]:
    """The contract: a row's market is upper(trim(market)) where the plan has it, else GL."""
    code = sa.func.upper(sa.func.trim(column))
    return sa.case((code.in_(plan.codes), code), else_=sa.literal(GLOBAL_MARKET))


def _credit(balance: sa.ColumnElement[Any], rate: Decimal) -> sa.ColumnElement[int]:
    """balance x rate, rounded half up, in integers: floor((2bp + q) / 2q) for rate = p/q."""
    p, q = rate.as_integer_ratio()
    exact = (sa.cast(balance, sa.BigInteger) * (2 * p) + q) // (2 * q)
    return sa.case((sa.func.abs(balance) <= BALANCE_BOUND, exact), else_=sa.null())


# --- points: one credit per account, then adjustments; compared per user ---------------
accounts, users = schemas.poco_points_accounts, schemas.poco_users


def _points_source(plan: Plan) -> sa.Select:
    market = _market(users.c.market, plan)
    credit = sa.case(*((market == m.market, _credit(accounts.c.balance, m.conversion_rate)) for m in plan.markets))
    return sa.select(
        accounts.c.user_id.label("k1"),
        market.label("row_market"),
        sa.or_(accounts.c.balance != 0, accounts.c.balance.is_(None)).label("in_scope"),
        number(users.c.mi_account_id).label("mi_account_id"),
        number(credit).label("credit"),
        sa.literal("0", sa.Text).label("credited_twice"),
    ).select_from(accounts.outerjoin(users, users.c.user_id == accounts.c.user_id))


def _points_target() -> sa.Select:
    ledger = schemas.mi_points_ledger
    opening = adjustment_sql(ledger.c.source_ref).is_(None)
    per_user = (
        sa.select(
            keys_sql("points", ledger.c.source_ref)[0].label("k1"),
            sa.func.sum(ledger.c.delta).label("total"),
            sa.func.max(sa.case((opening, ledger.c.mi_account_id))).label("account"),
            (sa.func.count() - sa.func.count(sa.distinct(ledger.c.source_ref))).label("twice"),
        )
        .where(is_domain(ledger.c.source_ref, "points"))
        .group_by(sa.literal_column("k1"))
        .subquery("per_user")
    )
    return sa.select(
        per_user.c.k1,
        ref_sql("points", per_user.c.k1).label("ref"),
        (per_user.c.total == 0).label("retained"),
        number(per_user.c.account).label("mi_account_id"),
        number(per_user.c.total).label("credit"),
        number(per_user.c.twice).label("credited_twice"),
    )


# --- reviews: author and product mapped, deleted -> removed, the rest kept ----------------
reviews, products = schemas.poco_reviews, schemas.poco_products
REVIEW_COLUMNS = ("mi_account_id", "mi_product_id", "rating", "title", "body", "language", "status")
REVIEW_TAIL = ("helpful_votes", "created_at", "updated_at")


def _reviews_source(plan: Plan) -> sa.Select:
    r = reviews.c
    return sa.select(
        r.review_id.label("k1"),
        _market(users.c.market, plan).label("row_market"),
        sa.or_(r.status != "deleted", r.status.is_(None)).label("in_scope"),
        number(users.c.mi_account_id).label("mi_account_id"),
        number(products.c.mi_product_id).label("mi_product_id"),
        number(r.rating).label("rating"),
        text(r.title).label("title"),
        text(r.body).label("body"),
        text(r.language).label("language"),
        sa.case((r.status == "deleted", "removed"), else_=r.status).label("status"),
        number(r.helpful_votes).label("helpful_votes"),
        instant(r.created_at).label("created_at"),
        instant(r.updated_at).label("updated_at"),
    ).select_from(reviews.outerjoin(users, users.c.user_id == r.user_id).outerjoin(products, products.c.sku == r.sku))


def _reviews_target() -> sa.Select:
    t = schemas.mi_reviews.c
    kept = [text(t[c]).label(c) for c in ("title", "body", "language", "status")]
    return sa.select(
        keys_sql("reviews", t.source_ref)[0].label("k1"),
        t.source_ref.label("ref"),
        (t.status == "removed").label("retained"),
        *(number(t[c]).label(c) for c in ("mi_account_id", "mi_product_id", "rating")),
        *kept,
        number(t.helpful_votes).label("helpful_votes"),
        instant(t.created_at).label("created_at"),
        instant(t.updated_at).label("updated_at"),
    ).where(is_domain(t.source_ref, "reviews"))


# --- initiatives: under the POCO brand, every other column kept ---------------------------
initiatives = schemas.poco_initiatives
IN_SCOPE = ("active", "ended")
INITIATIVE_COLUMNS = ("brand", "market", "kind", "title", "starts_at", "ends_at", "status")


def _initiative_columns(table: sa.Table, brand: sa.ColumnElement[str]) -> list[sa.ColumnElement[Any]]:
    c = table.c
    return [
        brand.label("brand"),
        *(text(c[name]).label(name) for name in ("market", "kind", "title")),
        instant(c.starts_at).label("starts_at"),
        instant(c.ends_at).label("ends_at"),
        text(c.status).label("status"),
    ]


def _initiatives_source(plan: Plan) -> sa.Select:
    i = initiatives.c
    return sa.select(
        i.initiative_id.label("k1"),
        _market(i.market, plan).label("row_market"),
        i.status.in_(IN_SCOPE).label("in_scope"),
        *_initiative_columns(initiatives, sa.literal("POCO", sa.Text)),
    )


def _initiatives_target() -> sa.Select:
    t = schemas.mi_initiatives
    return sa.select(
        keys_sql("initiatives", t.c.source_ref)[0].label("k1"),
        t.c.source_ref.label("ref"),
        sa.or_(t.c.status.not_in(IN_SCOPE), t.c.status.is_(None)).label("retained"),
        *_initiative_columns(t, text(t.c.brand)),
    ).where(is_domain(t.c.source_ref, "initiatives"))


# --- participants: under their initiative's Xiaomi id and the user's Mi account -----------
participants = schemas.poco_initiative_participants
PARTICIPANT_COLUMNS = ("initiative", "mi_account_id", "joined_at", "reward_points", "status")


def _participants_source(plan: Plan) -> sa.Select:
    p = participants.c
    market = sa.case(
        (initiatives.c.initiative_id.is_not(None), _market(initiatives.c.market, plan)),
        else_=_market(users.c.market, plan),
    )
    return sa.select(
        p.initiative_id.label("k1"),
        p.user_id.label("k2"),
        market.label("row_market"),
        sa.true().label("in_scope"),
        number(p.initiative_id).label("initiative"),
        number(users.c.mi_account_id).label("mi_account_id"),
        instant(p.joined_at).label("joined_at"),
        number(p.reward_points).label("reward_points"),
        text(p.status).label("status"),
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
            sa.false().label("retained"),
            number(initiative).label("initiative"),
            number(t.c.mi_account_id).label("mi_account_id"),
            instant(t.c.joined_at).label("joined_at"),
            number(t.c.reward_points).label("reward_points"),
            text(t.c.status).label("status"),
        )
        .select_from(t.outerjoin(moved, moved.c.initiative_id == t.c.initiative_id))
        .where(is_domain(t.c.source_ref, "participants"))
    )


MAPPINGS = {
    "points": Mapping(
        "points", ("mi_account_id", "credit", "credited_twice"), _points_source, _points_target, accounts.c.user_id
    ),
    "reviews": Mapping(
        "reviews", (*REVIEW_COLUMNS, *REVIEW_TAIL), _reviews_source, _reviews_target, reviews.c.review_id
    ),
    "initiatives": Mapping(
        "initiatives", INITIATIVE_COLUMNS, _initiatives_source, _initiatives_target, initiatives.c.initiative_id
    ),
    "participants": Mapping(
        "participants",
        PARTICIPANT_COLUMNS,
        _participants_source,
        _participants_target,
        participants.c.initiative_id,
        key_count=2,
    ),
}
