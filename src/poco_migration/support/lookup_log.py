"""Who looked up whom: every support lookup leaves a row, which administrators read.

A lookup reads personal data (points, reviews, a masked email), so each one is recorded
in the bookkeeping before its answer is shown: who asked (the Airflow user, or the shell
user of the command), through what (``cli``, ``dashboard``, ``api``), by which kind of key
and the POCO users found. The key is kept for an id and never for an email, hashed or not
(``Query.shown``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poco_migration import schemas
from poco_migration.support.people import Query


def record(target: Engine, query: Query, users: list[int], asked_by: str, via: str) -> None:
    schemas.lookups.create(target, checkfirst=True)  # a target made before lookups existed
    row = {
        "asked_by": asked_by,
        "via": via,
        "kind": query.kind,
        "query": query.shown,
        "users": users,
        "asked_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
    }
    with target.begin() as conn:
        conn.execute(schemas.lookups.insert().values(**row))


def recent(target: Engine, limit: int = 100) -> list[dict[str, Any]]:
    """The latest lookups, newest first."""
    lookups = schemas.lookups
    with target.connect() as conn:
        if not sa.inspect(conn).has_table(lookups.name):
            return []
        query = sa.select(lookups).order_by(lookups.c.id.desc()).limit(limit)
        return [dict(row._mapping) for row in conn.execute(query)]
