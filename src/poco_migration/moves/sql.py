"""SQL helpers every move shares, portable to SQLite and PostgreSQL: a row's market, the
watermark's comparisons, INSERT ... ON CONFLICT in the connection's dialect, bulk inserts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

import sqlalchemy as sa
from psycopg import sql as psycopg_sql
from sqlalchemy.engine import Connection

from poco_migration.plan import GLOBAL_MARKET, Plan

CHUNK_ROWS = 5_000
KEYS_PER_QUERY = 500


def market_expr(column: sa.ColumnElement[Any], plan: Plan) -> sa.ColumnElement[str]:
    """A row's market as the plan knows it: a code the plan does not have goes with GL."""
    code = sa.func.upper(sa.func.trim(column))
    return sa.case((code.in_(plan.codes), code), else_=sa.literal(GLOBAL_MARKET))


# SQLite keeps timestamps as text, with or without microseconds; a bound one second
# early makes ">=" hold for a row stored in the watermark's own second, whatever its
# format. Rows read again are harmless: the merge changes nothing for them.
WATERMARK_SLACK = dt.timedelta(seconds=1)


def at_or_after(column: sa.ColumnElement[Any], watermark: dt.datetime) -> sa.ColumnElement[bool]:
    return column >= watermark - WATERMARK_SLACK


def changed_since(watermark: dt.datetime, *columns: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """Rows changed at or after the watermark; a row with no timestamp is always looked at."""
    return sa.or_(columns[0].is_(None), *(at_or_after(column, watermark) for column in columns))


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def dialect_insert(conn: Connection, table: sa.Table) -> Any:
    """INSERT with ON CONFLICT, in the dialect of the connection (SQLite or PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def driver_connection(conn: Connection) -> Any:
    """The DBAPI connection under a SQLAlchemy one (psycopg's, for COPY)."""
    driver = conn.connection.driver_connection
    assert driver is not None  # a checked-out connection always has its DBAPI connection
    return driver


def _copy_into(table: str, columns: Sequence[str], binary: bool = False) -> psycopg_sql.Composed:
    statement = "COPY {} ({}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")
    return psycopg_sql.SQL(statement).format(
        psycopg_sql.Identifier(table), psycopg_sql.SQL(", ").join(map(psycopg_sql.Identifier, columns))
    )


def analyze(conn: Connection, *tables: sa.Table) -> None:
    """Fresh planner statistics for tables a bulk move has just filled, on PostgreSQL.
    Autovacuum reaches them only some time later: meanwhile the planner takes a million
    moved rows for a few thousand (a sync right after a full move of 1M reviews: 14.4-15.0 s
    without, 13.2-13.3 s with). Not the move's temporary stage: planned as a few rows, its
    lookups into the million go by index, which its real count would have the planner trade
    for a hash of the million (14.2 s). SQLite plans without statistics well enough."""
    if conn.dialect.name != "postgresql":
        return
    names = psycopg_sql.SQL(", ").join(psycopg_sql.Identifier(table.name) for table in tables)
    driver_connection(conn).execute(psycopg_sql.SQL("ANALYZE {}").format(names))


def insert_rows(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Bulk insert of rows that name the same columns (the others take their defaults):
    COPY on PostgreSQL, one batched executemany elsewhere."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), rows)
        return
    columns = list(rows[0])
    with driver_connection(conn).cursor().copy(_copy_into(table.name, columns)) as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


def pipe(src: Connection, conn: Connection, query: sa.Select, table: str, columns: Sequence[str]) -> None:
    """PostgreSQL to PostgreSQL: the query's rows, binary, from one COPY into the other, with
    no Python per row. Its values must have the table's column types exactly."""
    compiled = query.compile(dialect=src.dialect, compile_kwargs={"render_postcompile": True})
    # The compiled text holds placeholders only; psycopg binds the values (COPY takes no server-side parameters).
    read = psycopg_sql.SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(psycopg_sql.SQL(str(compiled)))
    reader, writer = driver_connection(src).cursor(), driver_connection(conn).cursor()
    for cursor in (reader, writer):
        # Binary COPY passes text in the connections' encoding, untranslated: both in UTF-8.
        cursor.execute("SET client_encoding TO 'UTF8'")
    with reader.copy(read, compiled.params) as out, writer.copy(_copy_into(table, columns, binary=True)) as into:
        for block in out:
            into.write(block)
