"""The contract's tables as SQLAlchemy Core metadata, for SQLite and PostgreSQL alike.

Three metadata objects, because they live in two databases: ``SOURCE`` is the POCO
platform (``poco_source``), ``TARGET`` the Xiaomi platform (``mi_target``) and
``BOOKKEEPING`` the migration's own tables, kept in the target database beside the
Xiaomi tables so that a move and its bookkeeping commit in one transaction.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Engine

# The contract's domains, in the order they move: initiatives before their participants.
DOMAINS = ("points", "reviews", "initiatives", "participants")

# SQLite only turns INTEGER PRIMARY KEY into an auto-incrementing rowid.
SERIAL = BigInteger().with_variant(Integer, "sqlite")

SOURCE = MetaData()
TARGET = MetaData()
BOOKKEEPING = MetaData()

poco_users = Table(
    "poco_users",
    SOURCE,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("mi_account_id", BigInteger),
    Column("email", Text),
    Column("market", Text),
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
)

poco_points_accounts = Table(
    "poco_points_accounts",
    SOURCE,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("balance", Integer),
    Column("tier", Text),
    Column("expires_at", Date),
    Column("updated_at", DateTime),
)

poco_points_transactions = Table(
    "poco_points_transactions",
    SOURCE,
    Column("txn_id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", BigInteger),
    Column("delta", Integer),
    Column("reason", Text),
    Column("created_at", DateTime),
)

poco_products = Table(
    "poco_products",
    SOURCE,
    Column("sku", Text, primary_key=True),
    Column("name", Text),
    Column("mi_product_id", BigInteger),
)

poco_reviews = Table(
    "poco_reviews",
    SOURCE,
    Column("review_id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", BigInteger),
    Column("sku", Text),
    Column("rating", SmallInteger),
    Column("title", Text),
    Column("body", Text),
    Column("language", Text),
    Column("status", Text),
    Column("helpful_votes", Integer),
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
)

poco_initiatives = Table(
    "poco_initiatives",
    SOURCE,
    Column("initiative_id", BigInteger, primary_key=True, autoincrement=False),
    Column("market", Text),
    Column("kind", Text),
    Column("title", Text),
    Column("starts_at", DateTime),
    Column("ends_at", DateTime),
    Column("status", Text),
    Column("updated_at", DateTime),
)

poco_initiative_participants = Table(
    "poco_initiative_participants",
    SOURCE,
    Column("initiative_id", BigInteger),
    Column("user_id", BigInteger),
    Column("joined_at", DateTime),
    Column("reward_points", Integer),
    Column("status", Text),
    Column("updated_at", DateTime),
    PrimaryKeyConstraint("initiative_id", "user_id"),
)

poco_site_pages = Table(
    "poco_site_pages",
    SOURCE,
    Column("url", Text, primary_key=True),
    Column("market", Text),
    Column("kind", Text),
    Column("ref", Text),
)

poco_market_state = Table(
    "poco_market_state",
    SOURCE,
    Column("market", Text, primary_key=True),
    Column("frozen_at", DateTime),
)

mi_points_ledger = Table(
    "mi_points_ledger",
    TARGET,
    Column("entry_id", SERIAL, primary_key=True, autoincrement=True),
    Column("mi_account_id", BigInteger),
    Column("delta", Integer),
    Column("reason", Text),
    Column("expires_at", Date),
    Column("source_ref", Text, nullable=False, unique=True),
    Column("created_at", DateTime),
)

mi_reviews = Table(
    "mi_reviews",
    TARGET,
    Column("review_id", SERIAL, primary_key=True, autoincrement=True),
    Column("mi_account_id", BigInteger),
    Column("mi_product_id", BigInteger),
    Column("rating", SmallInteger),
    Column("title", Text),
    Column("body", Text),
    Column("language", Text),
    Column("status", Text),
    Column("helpful_votes", Integer),
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
    Column("source_ref", Text, nullable=False, unique=True),
)

mi_initiatives = Table(
    "mi_initiatives",
    TARGET,
    Column("initiative_id", SERIAL, primary_key=True, autoincrement=True),
    Column("brand", Text),
    Column("market", Text),
    Column("kind", Text),
    Column("title", Text),
    Column("starts_at", DateTime),
    Column("ends_at", DateTime),
    Column("status", Text),
    Column("source_ref", Text, nullable=False, unique=True),
)

mi_initiative_participants = Table(
    "mi_initiative_participants",
    TARGET,
    Column("initiative_id", BigInteger),
    Column("mi_account_id", BigInteger),
    Column("joined_at", DateTime),
    Column("reward_points", Integer),
    Column("status", Text),
    Column("source_ref", Text, nullable=False, unique=True),
)

quarantine = Table(
    "poco_migration_quarantine",
    BOOKKEEPING,
    Column("domain", Text, nullable=False),
    Column("source_ref", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("market", Text, nullable=False),
    Column("detected_at", DateTime, nullable=False),
    UniqueConstraint("domain", "source_ref"),
)

# Where every moved row sits, with its market: the Xiaomi tables have no market
# column for reviews and points, and reports, ratios and rollbacks need one.
moved = Table(
    "poco_migration_moved",
    BOOKKEEPING,
    Column("domain", Text, nullable=False),
    Column("source_ref", Text, nullable=False),
    Column("market", Text, nullable=False),
    Column("move_id", Text, nullable=False),
    PrimaryKeyConstraint("domain", "source_ref"),
)

# Moved rows that became invalid on POCO since: held where they are (not quarantined,
# not updated), with the reason they would be quarantined for. The extract checkpoint
# leaves them out of its shares, as the quarantine ratio does; the report shows them.
held = Table(
    "poco_migration_held",
    BOOKKEEPING,
    Column("domain", Text, nullable=False),
    Column("source_ref", Text, nullable=False),
    Column("market", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("detected_at", DateTime, nullable=False),
    PrimaryKeyConstraint("domain", "source_ref"),
)

# The money: what each user has been credited so far, in Mi points, and how many
# adjustments that took. Written in the same transaction as the ledger entries.
points_balances = Table(
    "poco_migration_points_balances",
    BOOKKEEPING,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("market", Text, nullable=False),
    Column("mi_account_id", BigInteger, nullable=False),
    Column("credited", BigInteger, nullable=False),
    Column("adjustments", Integer, nullable=False),
    Column("source_balance", BigInteger, nullable=False),
)

watermarks = Table(
    "poco_migration_watermarks",
    BOOKKEEPING,
    Column("domain", Text, nullable=False),
    Column("market", Text, nullable=False),
    Column("watermark", DateTime),
    Column("updated_at", DateTime, nullable=False),
    PrimaryKeyConstraint("domain", "market"),
)

moves = Table(
    "poco_migration_moves",
    BOOKKEEPING,
    Column("move_id", Text, primary_key=True),
    Column("run_id", Text),
    Column("domain", Text, nullable=False),
    Column("market", Text, nullable=False),
    Column("full_scan", Boolean, nullable=False),
    Column("status", Text, nullable=False),
    Column("staged", Integer, nullable=False),
    Column("inserted", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("quarantined", Integer, nullable=False),
    Column("released", Integer, nullable=False),
    Column("held", Integer, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("message", Text),
)

checkpoints = Table(
    "poco_migration_checkpoints",
    BOOKKEEPING,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("move_id", Text, nullable=False),
    Column("run_id", Text),
    Column("domain", Text, nullable=False),
    Column("market", Text, nullable=False),
    Column("stage", Text, nullable=False),
    Column("success", Boolean, nullable=False),
    Column("evaluated", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("success_percent", Float),
    Column("failures", JSON),
    Column("data_docs", Text),
    Column("checked_at", DateTime, nullable=False),
)


# What operators did to a market, newest last: pause, resume, rollback. A market is
# paused while its latest pause or resume is a pause; the log is the audit trail.
operations = Table(
    "poco_migration_operations",
    BOOKKEEPING,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("market", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("reason", Text),
    Column("detail", JSON),
    Column("at", DateTime, nullable=False),
)

# Staging: one table per domain, holding a market's batch between the extract and
# the merge. Each row carries the target values it would be written with, or the
# reason it cannot be. ``insertable`` is false for rows that may only update a row
# moved before (a review deleted on POCO, a balance gone to zero): they were out
# of scope when first seen and must never be inserted. ``batch_market`` is the
# market the row moves with, which for an initiative may differ from its own
# ``market`` column (kept as it is, byte for byte).
STAGE_KEYS = (
    Column("batch_market", Text, nullable=False),
    Column("source_ref", Text, nullable=False),
    Column("reason", Text),
    Column("insertable", Boolean, nullable=False),
)


def _stage(domain: str, *columns: Column) -> Table:
    keys = [c._copy() for c in STAGE_KEYS]
    return Table(
        f"poco_migration_stage_{domain}",
        BOOKKEEPING,
        *keys,
        *columns,
        PrimaryKeyConstraint("batch_market", "source_ref"),
    )


def _copies(table: Table, *skip: str) -> list[Column]:
    return [Column(c.name, c.type) for c in table.columns if c.name not in {"source_ref", *skip}]


stage_points = _stage(
    "points",
    Column("user_id", BigInteger),
    Column("mi_account_id", BigInteger),
    Column("balance", BigInteger),
    Column("credit", BigInteger),
    Column("expires_at", Date),
    Column("observed_at", DateTime),
)
stage_reviews = _stage("reviews", *_copies(mi_reviews, "review_id"))
stage_initiatives = _stage("initiatives", *_copies(mi_initiatives, "initiative_id"))
stage_participants = _stage("participants", *_copies(mi_initiative_participants))

# Source against target for a move: each metric counted on the POCO side
# (expected) and on the Xiaomi side (observed); the reconciliation gate wants them equal.
reconciliation = Table(
    "poco_migration_reconciliation",
    BOOKKEEPING,
    Column("move_id", Text, nullable=False),
    Column("domain", Text, nullable=False),
    Column("market", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("expected", BigInteger),
    Column("observed", BigInteger),
    PrimaryKeyConstraint("move_id", "metric"),
)


def create_source(engine: Engine) -> None:
    """Create the POCO platform's tables (the seed and the tests need them)."""
    SOURCE.create_all(engine)


def create_target(engine: Engine) -> None:
    """Create the Xiaomi tables and the migration's bookkeeping where missing."""
    TARGET.create_all(engine)
    BOOKKEEPING.create_all(engine)
