"""What cannot be moved at all stops its move with a message naming it, and writes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from poco_migration import schemas
from poco_migration.moves import MOVES
from poco_migration.moves.pipeline import run_move
from poco_migration.moves.types import MoveError, MoveRequest
from poco_migration.plan import load_plan

AS_OF = dt.datetime(2024, 10, 7)


def move(domain: str, source: sa.Engine, target_url: str) -> None:
    run_move(MOVES[domain], MoveRequest(domain, "IT", load_plan(), AS_OF), source, sa.make_url(target_url))


def nothing_written(target: sa.Engine) -> bool:
    with target.connect() as conn:
        tables = (*schemas.TARGET.sorted_tables, *schemas.BOOKKEEPING.sorted_tables)
        return all(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() == 0 for t in tables)


def test_a_missing_source_table_is_named(source_engine, target_engine, db_urls) -> None:
    schemas.poco_reviews.drop(source_engine)
    with pytest.raises(MoveError, match=r"^reviews IT: cannot read the POCO source .*poco_reviews"):
        move("reviews", source_engine, db_urls["target"])
    assert nothing_written(target_engine)


def test_a_renamed_source_column_is_named(source_engine, target_engine, db_urls) -> None:
    with source_engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE poco_points_accounts RENAME COLUMN balance TO points"))
    with pytest.raises(MoveError, match=r"^points IT: cannot read the POCO source .*balance"):
        move("points", source_engine, db_urls["target"])
    assert nothing_written(target_engine)


def test_an_unreachable_target_is_named(source_engine) -> None:
    with pytest.raises(MoveError, match=r"^points IT: cannot connect to the Xiaomi target"):
        move("points", source_engine, "postgresql+psycopg://nobody@127.0.0.1:1/nowhere")
