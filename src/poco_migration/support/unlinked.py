"""Unlinked users with points, per market: the most common support case.

A POCO points account whose user has no Mi account linked (``mi_account_id`` NULL, or no
user row at all) cannot be credited on the Xiaomi ledger: the contract's ``unlinked_account``
rule quarantines it. These are read from the POCO source directly, not from the quarantine,
so that the count is right before any sync has run (a reminder campaign starts before the
first wave) and stays right as people link their accounts between syncs.

Only balances above 0 count: an unlinked user with 0 points or fewer has nothing to lose at
the shutdown (a negative balance is not owed to anyone), so no campaign or claim concerns it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poco_migration import schemas
from poco_migration.moves.sql import market_expr
from poco_migration.plan import Plan
from poco_migration.status import mask_email

# How many users the reconciliation report lists per market (all are counted).
LISTED = 20


def _unlinked(plan: Plan) -> sa.Subquery:
    """Every unlinked account holding points, with its market as the moves decide it (a missing
    user row goes with GL). A subquery, so that the grouping reads the market as one column:
    PostgreSQL would not match a CASE repeated with its own bound parameters in GROUP BY."""
    a, u = schemas.poco_points_accounts, schemas.poco_users
    return (
        sa.select(
            market_expr(u.c.market, plan).label("market"),
            a.c.user_id,
            u.c.email,
            a.c.balance,
            a.c.tier,
        )
        .select_from(a.outerjoin(u, u.c.user_id == a.c.user_id))
        .where(a.c.balance > 0, u.c.mi_account_id.is_(None))
        .subquery("unlinked")
    )


def by_market(source: Engine, plan: Plan, limit: int = LISTED) -> dict[str, dict[str, Any]]:
    """Each market of the plan (in plan order): ``count`` of unlinked users with points, their
    ``points`` (POCO points, before any conversion) and the first ``limit`` of them by user_id
    (``users``: user_id, masked email or None where the user row is missing, balance, tier).
    One grouped query, then one limited query per market that has any."""
    unlinked = _unlinked(plan)
    totals = sa.select(
        unlinked.c.market, sa.func.count(), sa.func.coalesce(sa.func.sum(unlinked.c.balance), 0)
    ).group_by(unlinked.c.market)
    found = {market: {"count": 0, "points": 0, "users": []} for market in plan.codes}
    with source.connect() as conn:
        for market, count, points in conn.execute(totals).tuples():
            found[market] = {"count": count, "points": int(points), "users": []}
        for market, entry in found.items():
            if entry["count"]:
                entry["users"] = _first(conn, unlinked, market, limit)
    return found


def _first(conn: sa.Connection, unlinked: sa.Subquery, market: str, limit: int) -> list[dict[str, Any]]:
    query = (
        sa.select(unlinked.c.user_id, unlinked.c.email, unlinked.c.balance, unlinked.c.tier)
        .where(unlinked.c.market == market)
        .order_by(unlinked.c.user_id)
        .limit(limit)
    )
    return [
        {"user_id": user_id, "email": mask_email(email), "balance": balance, "tier": tier}
        for user_id, email, balance, tier in conn.execute(query).tuples()
    ]
