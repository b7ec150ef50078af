"""Hand-made POCO sources for the move tests: one builder per source table, with defaults.

Every builder returns one row (a dict) of a valid, in-scope source row; a test
overrides only the columns it is about. ``insert`` and ``update`` write rows with
SQLAlchemy Core, so the same rows land on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from poco_migration import schemas

# The source snapshot the tests start from, and the first wave's first sync.
T0 = dt.datetime(2024, 10, 1, 12, 0, 0)
AS_OF = dt.datetime(2024, 10, 7, 2, 0, 0)

_LINKED = object()
_MAPPED = object()


def mi_account(user_id: int) -> int:
    """The Xiaomi account that the builders link a POCO user to."""
    return 7_000_000_000 + user_id


def user(
    user_id: int,
    *,
    market: str | None = "IT",
    mi_account_id: Any = _LINKED,
    updated_at: dt.datetime = T0,
) -> dict[str, Any]:
    """A POCO user, linked to ``mi_account(user_id)`` unless ``mi_account_id`` says otherwise."""
    return {
        "user_id": user_id,
        "mi_account_id": mi_account(user_id) if mi_account_id is _LINKED else mi_account_id,
        "email": f"user{user_id}@example.com",
        "market": market,
        "created_at": T0 - dt.timedelta(days=400),
        "updated_at": updated_at,
    }


def account(
    user_id: int,
    balance: int | None,
    *,
    expires_at: dt.date | None = dt.date(2025, 6, 30),
    tier: str = "gold",
    updated_at: dt.datetime = T0,
) -> dict[str, Any]:
    return {"user_id": user_id, "balance": balance, "tier": tier, "expires_at": expires_at, "updated_at": updated_at}


def product(sku: str, mi_product_id: Any = _MAPPED) -> dict[str, Any]:
    """A POCO product, mapped to a Xiaomi product id derived from the sku unless told otherwise."""
    mapped = 900_000 + sum(ord(c) * (i + 1) for i, c in enumerate(sku))
    return {"sku": sku, "name": f"POCO {sku}", "mi_product_id": mapped if mi_product_id is _MAPPED else mi_product_id}


def mi_product(sku: str) -> int:
    return product(sku)["mi_product_id"]


def review(
    review_id: int,
    user_id: int,
    sku: str | None = "F6",
    *,
    rating: int | None = 5,
    title: str | None = "Nice",
    body: str | None = None,
    language: str | None = "en",
    status: str | None = "published",
    helpful_votes: int | None = 0,
    created_at: dt.datetime = T0 - dt.timedelta(days=30),
    updated_at: dt.datetime = T0,
) -> dict[str, Any]:
    """A review; its body is ``Review <id>`` (unique, so never a duplicate) unless told otherwise."""
    return {
        "review_id": review_id,
        "user_id": user_id,
        "sku": sku,
        "rating": rating,
        "title": title,
        "body": f"Review {review_id}" if body is None else body,
        "language": language,
        "status": status,
        "helpful_votes": helpful_votes,
        "created_at": created_at,
        "updated_at": updated_at,
    }


def initiative(
    initiative_id: int,
    *,
    market: str | None = "IT",
    kind: str = "campaign",
    title: str | None = None,
    starts_at: dt.datetime | None = dt.datetime(2024, 9, 1, 9, 0),
    ends_at: dt.datetime | None = dt.datetime(2024, 12, 1, 18, 0),
    status: str = "active",
    updated_at: dt.datetime = T0,
) -> dict[str, Any]:
    return {
        "initiative_id": initiative_id,
        "market": market,
        "kind": kind,
        "title": f"Initiative {initiative_id}" if title is None else title,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "status": status,
        "updated_at": updated_at,
    }


def participant(
    initiative_id: int,
    user_id: int,
    *,
    joined_at: dt.datetime = dt.datetime(2024, 9, 5, 10, 30),
    reward_points: int | None = 10,
    status: str = "joined",
    updated_at: dt.datetime = T0,
) -> dict[str, Any]:
    return {
        "initiative_id": initiative_id,
        "user_id": user_id,
        "joined_at": joined_at,
        "reward_points": reward_points,
        "status": status,
        "updated_at": updated_at,
    }


def insert(engine: sa.Engine, table: sa.Table, *rows: dict[str, Any]) -> None:
    """Insert the rows into a source table, in one transaction."""
    if rows:
        with engine.begin() as conn:
            conn.execute(table.insert(), list(rows))


def update(engine: sa.Engine, table: sa.Table, key: dict[str, Any], **values: Any) -> None:
    """Update the one source row whose primary key is ``key``."""
    where = [table.c[column] == value for column, value in key.items()]
    with engine.begin() as conn:
        assert conn.execute(sa.update(table).where(*where).values(**values)).rowcount == 1


def linked_users(first: int, count: int, market: str = "IT") -> list[dict[str, Any]]:
    return [user(uid, market=market) for uid in range(first, first + count)]


USERS = schemas.poco_users
ACCOUNTS = schemas.poco_points_accounts
PRODUCTS = schemas.poco_products
REVIEWS = schemas.poco_reviews
INITIATIVES = schemas.poco_initiatives
PARTICIPANTS = schemas.poco_initiative_participants
