"""The contract's tables as SQLAlchemy Core metadata, for SQLite and PostgreSQL alike.

Four metadata objects, because they live in two databases: ``SOURCE`` is the POCO
platform (``poco_source``), ``TARGET`` the Xiaomi platform (``mi_target``),
``BOOKKEEPING`` the migration's own tables, kept in the target database beside the
Xiaomi tables so that a move and its bookkeeping commit in one transaction, and
``STAGING`` the temporary tables each move stages its batch in.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Constraint,
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
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeEngine

log = logging.getLogger(__name__)

# The contract's domains, in the order they move: initiatives before their participants.
DOMAINS = ("points", "reviews", "initiatives", "participants")

# SQLite only turns INTEGER PRIMARY KEY into an auto-incrementing rowid.
SERIAL = BigInteger().with_variant(Integer, "sqlite")

SOURCE = MetaData()
TARGET = MetaData()
BOOKKEEPING = MetaData()

TYPES: dict[str, type[TypeEngine[Any]] | TypeEngine[Any]] = {
    "bigint": BigInteger,
    "integer": Integer,
    "smallint": SmallInteger,
    "text": Text,
    "timestamp": DateTime,
    "date": Date,
    "boolean": Boolean,
    "float": Float,
    "json": JSON,
    "serial": SERIAL,
}
FLAGS = {"pk", "unique", "required"}


def _table(metadata: MetaData, name: str, columns: str, *constraints: Constraint) -> Table:
    """A table from its columns written as the contract writes them, so that this file reads
    beside docs/contract.md: ``"user_id bigint pk, email text, source_ref text unique required"``.
    ``pk``: the primary key (a ``serial`` one numbers itself); ``unique``; ``required``: NOT NULL."""
    return Table(name, metadata, *(_column(name, spec.split()) for spec in columns.split(",")), *constraints)


def _column(table: str, words: list[str]) -> Column:
    name, kind, *flags = words
    if kind not in TYPES or not FLAGS.issuperset(flags):
        raise ValueError(f"{table}.{name}: {' '.join(words)!r} is not 'name type [pk] [unique] [required]'")
    key = "pk" in flags
    return Column(
        name,
        TYPES[kind],
        primary_key=key,
        autoincrement=key and kind == "serial",
        unique="unique" in flags or None,
        nullable=not (key or "required" in flags),
    )


poco_users = _table(
    SOURCE,
    "poco_users",
    "user_id bigint pk, mi_account_id bigint, email text, market text, created_at timestamp, updated_at timestamp",
)

poco_points_accounts = _table(
    SOURCE,
    "poco_points_accounts",
    "user_id bigint pk, balance integer, tier text, expires_at date, updated_at timestamp",
)

poco_points_transactions = _table(
    SOURCE,
    "poco_points_transactions",
    "txn_id bigint pk, user_id bigint, delta integer, reason text, created_at timestamp",
)

poco_products = _table(
    SOURCE,
    "poco_products",
    "sku text pk, name text, mi_product_id bigint",
)

poco_reviews = _table(
    SOURCE,
    "poco_reviews",
    "review_id bigint pk, user_id bigint, sku text, rating smallint, title text, body text, language text, "
    "status text, helpful_votes integer, created_at timestamp, updated_at timestamp",
)

poco_initiatives = _table(
    SOURCE,
    "poco_initiatives",
    "initiative_id bigint pk, market text, kind text, title text, starts_at timestamp, ends_at timestamp, status text, "
    "updated_at timestamp",
)

poco_initiative_participants = _table(
    SOURCE,
    "poco_initiative_participants",
    "initiative_id bigint required, user_id bigint required, joined_at timestamp, reward_points integer, status text, "
    "updated_at timestamp",
    PrimaryKeyConstraint("initiative_id", "user_id"),
)

poco_site_pages = _table(
    SOURCE,
    "poco_site_pages",
    "url text pk, market text, kind text, ref text",
)

poco_market_state = _table(
    SOURCE,
    "poco_market_state",
    "market text pk, frozen_at timestamp",
)

mi_points_ledger = _table(
    TARGET,
    "mi_points_ledger",
    "entry_id serial pk, mi_account_id bigint, delta integer, reason text, expires_at date, "
    "source_ref text unique required, created_at timestamp",
)

mi_reviews = _table(
    TARGET,
    "mi_reviews",
    "review_id serial pk, mi_account_id bigint, mi_product_id bigint, rating smallint, title text, body text, "
    "language text, status text, helpful_votes integer, created_at timestamp, updated_at timestamp, "
    "source_ref text unique required",
)

mi_initiatives = _table(
    TARGET,
    "mi_initiatives",
    "initiative_id serial pk, brand text, market text, kind text, title text, starts_at timestamp, ends_at timestamp, "
    "status text, source_ref text unique required",
)

mi_initiative_participants = _table(
    TARGET,
    "mi_initiative_participants",
    "initiative_id bigint, mi_account_id bigint, joined_at timestamp, reward_points integer, status text, "
    "source_ref text unique required",
)


def _per_row(name: str, columns: str, key: type[PrimaryKeyConstraint | UniqueConstraint]) -> Table:
    """A bookkeeping table with a row per migrated source row: (domain, source_ref) and more."""
    keyed = f"domain text required, source_ref text required, {columns}"
    return _table(BOOKKEEPING, name, keyed, key("domain", "source_ref"))


quarantine = _per_row(
    "poco_migration_quarantine",
    "reason text required, market text required, detected_at timestamp required",
    UniqueConstraint,
)

# Where every moved row sits, with its market: the Xiaomi tables have no market
# column for reviews and points, and reports, ratios and rollbacks need one.
moved = _per_row("poco_migration_moved", "market text required, move_id text required", PrimaryKeyConstraint)

# Moved rows that became invalid on POCO since: held where they are (not quarantined,
# not updated), with the reason they would be quarantined for. The extract checkpoint
# leaves them out of its shares, as the quarantine ratio does; the report shows them.
held = _per_row(
    "poco_migration_held",
    "market text required, reason text required, detected_at timestamp required",
    PrimaryKeyConstraint,
)

# The money: what each user has been credited so far, in Mi points, and how many
# adjustments that took. Written in the same transaction as the ledger entries.
points_balances = _table(
    BOOKKEEPING,
    "poco_migration_points_balances",
    "user_id bigint pk, market text required, mi_account_id bigint required, credited bigint required, "
    "adjustments integer required, source_balance bigint required",
)

watermarks = _table(
    BOOKKEEPING,
    "poco_migration_watermarks",
    "domain text required, market text required, watermark timestamp, updated_at timestamp required",
    PrimaryKeyConstraint("domain", "market"),
)

# Every move, newest last. ``as_of`` is the run's logical date (the plan's clock); ``dag_id``,
# ``task_id`` and ``map_index`` name the task instance that ran it, for a link to its log.
moves = _table(
    BOOKKEEPING,
    "poco_migration_moves",
    "move_id text pk, run_id text, domain text required, market text required, full_scan boolean required, "
    "status text required, staged integer required, inserted integer required, updated integer required, "
    "quarantined integer required, released integer required, held integer required, started_at timestamp required, "
    "finished_at timestamp, message text, as_of timestamp, dag_id text, task_id text, map_index integer",
)

checkpoints = _table(
    BOOKKEEPING,
    "poco_migration_checkpoints",
    "id serial pk, move_id text required, run_id text, domain text required, market text required, "
    "stage text required, success boolean required, evaluated integer required, failed integer required, "
    "success_percent float, failures json, data_docs text, checked_at timestamp required",
)


# What operators did to a market, newest last: pause, resume, rollback. A market is
# paused while its latest pause or resume is a pause; the log is the audit trail.
operations = _table(
    BOOKKEEPING,
    "poco_migration_operations",
    "id serial pk, market text required, action text required, reason text, detail json, at timestamp required",
)
# Each audit's verdict per market and domain (``poco-migration audit``), newest last: the
# dashboard shows each market's latest. ``findings`` lists the first differences, masked.
audits = _table(
    BOOKKEEPING,
    "poco_migration_audits",
    "id serial pk, run_id text, market text required, domain text required, compared integer required, "
    "held integer required, differences integer required, verdict text required, findings json, "
    "audited_at timestamp required",
)

# Every alert sent, newest last: ``key`` names what it is about (for a refused gate: market,
# domain, stage and the failed expectations), ``kind`` what it says (refused, reminder,
# resolved, failed, late). A refusal stays open until its market's domain moves again: while
# it is open the same refusal is not sent again (``alert_log``).
alerts = _table(
    BOOKKEEPING,
    "poco_migration_alerts",
    "id serial pk, key text required, kind text required, market text, domain text, stage text, dag_id text, "
    "run_id text, text text, sent_at timestamp required",
)

# Staging: one temporary table per move, holding its batch between the extract and
# the merge, created in the move's own transaction like the landing (``STAGING``, never
# created with the bookkeeping). Each move starts from an empty stage of its own: a
# permanent stage shared by the markets kept every earlier batch as dead rows that each
# later move scanned (a 1 % sync after a full move of a million rows read the million
# dead ones in every query), and was written to the log for nothing. Each row carries
# the target values it would be written with, or the reason it cannot be.
# ``insertable`` is false for rows that may only update a row moved before (a review
# deleted on POCO, a balance gone to zero): they were out of scope when first seen and
# must never be inserted. ``batch_market`` is the market the row moves with, which for
# an initiative may differ from its own ``market`` column (kept as it is, byte for byte).
STAGING = MetaData()
STAGE_KEYS = (
    Column("batch_market", Text, nullable=False),
    Column("source_ref", Text, primary_key=True),
    Column("reason", Text),
    Column("insertable", Boolean, nullable=False),
)


def _stage(domain: str, *columns: Column) -> Table:
    keys = [c._copy() for c in STAGE_KEYS]
    return Table(f"poco_migration_stage_{domain}", STAGING, *keys, *columns, prefixes=["TEMPORARY"])


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
reconciliation = _table(
    BOOKKEEPING,
    "poco_migration_reconciliation",
    "move_id text required, domain text required, market text required, metric text required, expected bigint, "
    "observed bigint",
    PrimaryKeyConstraint("move_id", "metric"),
)


def create_source(engine: Engine) -> None:
    """Create the POCO platform's tables (the seed and the tests need them)."""
    SOURCE.create_all(engine)


class SchemaOutdated(RuntimeError):
    """A bookkeeping table of an earlier version lacks a column that cannot be added as it is."""


def create_target(engine: Engine) -> list[str]:
    """Create the Xiaomi tables and the migration's bookkeeping where missing, and bring the
    bookkeeping of a target made by an earlier version up to this one's; the columns added."""
    TARGET.create_all(engine)
    BOOKKEEPING.create_all(engine)
    drop_retired(engine)
    return add_missing_columns(engine)


# The permanent stage of earlier versions, one table per domain shared by the markets, named
# as the temporary stage is now: a target made by one keeps its last batches there, read by
# nothing since each move stages in a temporary table of its own.
RETIRED = tuple(STAGING.tables)


def drop_retired(engine: Engine) -> list[str]:
    """Drop the tables an earlier version kept in the target and this one no longer uses."""
    with engine.begin() as conn:
        present = [name for name in RETIRED if sa_inspect(conn).has_table(name)]
        for name in present:
            Table(name, MetaData()).drop(conn)
    if present:
        log.warning("bookkeeping brought up to this version: dropped %s (no longer used)", ", ".join(present))
    return present


def add_missing_columns(engine: Engine) -> list[str]:
    """Add the bookkeeping columns that a target made by an earlier version lacks.

    A new version may be deployed in the middle of the migration, on a target whose tables
    an earlier one created: ``create_all`` creates missing tables, never missing columns,
    and every move would then fail on the first column it writes. The columns this project
    adds over time are nullable (a row written before them has no value for them), so they
    are added as they are, through Alembic's operations (``ALTER TABLE ... ADD COLUMN`` on
    both databases). A missing NOT NULL column is refused by name: it needs a value for the
    rows already there, which only a person can choose. The Xiaomi tables are the contract's
    and are never altered.
    """
    with engine.begin() as conn:
        inspector = sa_inspect(conn)
        present = {
            table.name: {c["name"] for c in inspector.get_columns(table.name)} for table in BOOKKEEPING.sorted_tables
        }
        missing = [(t, c) for t in BOOKKEEPING.sorted_tables for c in t.columns if c.name not in present[t.name]]
        for table, column in missing:
            if not column.nullable:
                raise SchemaOutdated(
                    f"{table.name}.{column.name} is missing from {engine.url.render_as_string()} and is NOT NULL: "
                    "add it with a value for the rows already there, then run again"
                )
        if missing:  # Alembic only then: it announces itself in the log
            from alembic.migration import MigrationContext
            from alembic.operations import Operations

            operations = Operations(MigrationContext.configure(conn))
            for table, column in missing:
                operations.add_column(table.name, column._copy())
    added = [f"{table.name}.{column.name}" for table, column in missing]
    if added:
        log.warning("bookkeeping brought up to this version: added %s", ", ".join(added))
    return added


# What the cutovers and the shutdown published outside both databases, newest last: a market's
# redirect map (``redirects``), the POCO Store app's retirement and the source's archive (``app``
# and ``archive``, market NULL), with their counts and file. The report shows the latest of
# each without Airflow, whose XComs live in its own metadata database (``publications``).
publications = _table(
    BOOKKEEPING,
    "poco_migration_publications",
    "id serial pk, market text, what text required, counts json required, path text, at timestamp required",
)

# Every support lookup of a person, newest last: who asked (the Airflow user, or the shell user
# of the command), through what, by which kind of key, and the POCO users it found. An email is
# never kept, in clear or hashed: ``query`` holds the user or Mi account id asked for, and NULL
# for an email. Administrators read it (``poco-migration lookups``, the dashboard's admin page).
lookups = _table(
    BOOKKEEPING,
    "poco_migration_lookups",
    "id serial pk, asked_by text required, via text required, kind text required, query text, users json required, "
    "asked_at timestamp required",
)
