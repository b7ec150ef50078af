"""The contract's tables, created by the project, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sources import ACCOUNTS, USERS, account, insert, user

from poco_migration import schemas

CONTRACT_SOURCE = {
    "poco_users": {"user_id", "mi_account_id", "email", "market", "created_at", "updated_at"},
    "poco_points_accounts": {"user_id", "balance", "tier", "expires_at", "updated_at"},
    "poco_points_transactions": {"txn_id", "user_id", "delta", "reason", "created_at"},
    "poco_products": {"sku", "name", "mi_product_id"},
    "poco_reviews": {
        "review_id", "user_id", "sku", "rating", "title", "body", "language", "status", "helpful_votes",
        "created_at", "updated_at",
    },
    "poco_initiatives": {"initiative_id", "market", "kind", "title", "starts_at", "ends_at", "status", "updated_at"},
    "poco_initiative_participants": {"initiative_id", "user_id", "joined_at", "reward_points", "status", "updated_at"},
    "poco_site_pages": {"url", "market", "kind", "ref"},
    "poco_market_state": {"market", "frozen_at"},
}  # fmt: skip
CONTRACT_TARGET = {
    "mi_points_ledger": {"entry_id", "mi_account_id", "delta", "reason", "expires_at", "source_ref", "created_at"},
    "mi_reviews": {
        "review_id", "mi_account_id", "mi_product_id", "rating", "title", "body", "language", "status",
        "helpful_votes", "created_at", "updated_at", "source_ref",
    },
    "mi_initiatives": {
        "initiative_id", "brand", "market", "kind", "title", "starts_at", "ends_at", "status", "source_ref",
    },
    "mi_initiative_participants": {
        "initiative_id", "mi_account_id", "joined_at", "reward_points", "status", "source_ref",
    },
    "poco_migration_quarantine": {"domain", "source_ref", "reason", "market", "detected_at"},
}  # fmt: skip


def columns(engine: sa.Engine) -> dict[str, set[str]]:
    inspector = sa.inspect(engine)
    return {t: {c["name"] for c in inspector.get_columns(t)} for t in inspector.get_table_names()}


def test_source_tables_have_the_contract_columns(source_engine) -> None:
    found = columns(source_engine)
    assert {t: found[t] for t in CONTRACT_SOURCE} == CONTRACT_SOURCE
    assert sa.inspect(source_engine).get_pk_constraint("poco_initiative_participants")["constrained_columns"] == [
        "initiative_id",
        "user_id",
    ]


def test_target_tables_have_the_contract_columns(target_engine) -> None:
    found = columns(target_engine)
    for table, wanted in CONTRACT_TARGET.items():
        assert wanted <= found[table], table


def test_source_ref_is_unique_in_every_target_table(target_engine) -> None:
    inspector = sa.inspect(target_engine)
    for table in ("mi_points_ledger", "mi_reviews", "mi_initiatives", "mi_initiative_participants"):
        unique = [u["column_names"] for u in inspector.get_unique_constraints(table)]
        indexes = [i["column_names"] for i in inspector.get_indexes(table) if i["unique"]]
        assert ["source_ref"] in unique + indexes, table
    unique = [u["column_names"] for u in inspector.get_unique_constraints("poco_migration_quarantine")]
    assert ["domain", "source_ref"] in unique


def test_creating_the_target_twice_keeps_its_rows(target_engine) -> None:
    from poco_migration.schemas import create_target, quarantine

    row = {"domain": "points", "source_ref": "poco:points:1", "reason": "x", "market": "IT"}
    with target_engine.begin() as conn:
        conn.execute(quarantine.insert().values(**row, detected_at=sa.func.current_timestamp()))
    create_target(target_engine)
    with target_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(quarantine)).scalar() == 1


def _earlier_moves_table(engine: sa.Engine, *dropped: str) -> None:
    """``poco_migration_moves`` as an earlier version created it, without the columns named."""
    earlier = sa.MetaData()
    sa.Table("poco_migration_moves", earlier, *(c._copy() for c in schemas.moves.columns if c.name not in dropped))
    earlier.create_all(engine)


def test_a_target_of_an_earlier_version_gets_the_new_bookkeeping_columns(db_urls, mig, caplog) -> None:
    with mig.target.begin() as conn:
        conn.execute(sa.text("DROP TABLE poco_migration_moves"))
    _earlier_moves_table(mig.target, "as_of", "dag_id", "task_id", "map_index")
    assert schemas.create_target(mig.target) == [
        "poco_migration_moves.as_of",
        "poco_migration_moves.dag_id",
        "poco_migration_moves.task_id",
        "poco_migration_moves.map_index",
    ]
    assert "bookkeeping brought up to this version: added poco_migration_moves.as_of" in caplog.text
    assert schemas.create_target(mig.target) == []  # once is enough
    insert(mig.source, USERS, user(1))
    insert(mig.source, ACCOUNTS, account(1, 10))
    assert mig.run("points").status == "moved"  # and the move writes them
    with mig.target.connect() as conn:
        as_of = conn.execute(sa.select(schemas.moves.c.as_of)).scalar_one()
    assert as_of == dt.datetime(2024, 10, 7, 2, 0)


def test_a_target_of_an_earlier_version_loses_its_permanent_stage(mig, caplog) -> None:
    """The stage was a permanent table per domain, shared by the markets; a move now stages in
    a temporary table of its own, so the old tables and their last batches go."""
    earlier = sa.MetaData()
    for table in (schemas.stage_points, schemas.stage_reviews):
        sa.Table(table.name, earlier, *(c._copy() for c in table.columns))
    earlier.create_all(mig.target)
    with mig.target.begin() as conn:
        conn.execute(earlier.tables["poco_migration_stage_points"].insert(), [stage_row(1), stage_row(2)])

    assert schemas.create_target(mig.target) == []
    assert "dropped poco_migration_stage_points, poco_migration_stage_reviews (no longer used)" in caplog.text
    with mig.target.connect() as conn:
        assert [name for name in schemas.RETIRED if sa.inspect(conn).has_table(name)] == []
    assert schemas.drop_retired(mig.target) == []  # once is enough
    insert(mig.source, USERS, user(1))
    insert(mig.source, ACCOUNTS, account(1, 10))
    assert mig.run("points").status == "moved"


def stage_row(user_id: int) -> dict[str, object]:
    return {"batch_market": "IT", "source_ref": f"poco:points:{user_id}", "reason": None, "insertable": True}


def test_a_missing_column_that_needs_a_value_is_refused_by_name(db_urls, target_engine) -> None:
    with target_engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE poco_migration_moves"))
    _earlier_moves_table(target_engine, "status")
    with pytest.raises(
        schemas.SchemaOutdated, match=r"poco_migration_moves\.status is missing from .* and is NOT NULL"
    ):
        schemas.create_target(target_engine)
