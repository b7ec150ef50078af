"""Database engines from Airflow connections, and the connection a gate borrows.

The contract names Airflow connection ids, so credentials come from wherever
Airflow finds connections (``AIRFLOW_CONN_*`` variables, a secrets backend, the
metadata database) and never from this code. An Airflow connection is turned into
a SQLAlchemy URL here, once, for SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool, StaticPool

SOURCE_CONN_ID = "poco_source"
TARGET_CONN_ID = "mi_target"
ALERTS_CONN_ID = "migration_alerts"

_POSTGRES_TYPES = {"postgres", "postgresql"}


class ConnectionUnusable(RuntimeError):
    """A connection id that cannot be turned into a database the migration can use."""


def sqlalchemy_url(conn_id: str) -> URL:
    """The SQLAlchemy URL of an Airflow connection (``sqlite`` or ``postgres``)."""
    from airflow.sdk import Connection

    try:
        conn = Connection.get(conn_id)
    except Exception as exc:  # the SDK raises its own not-found types per context
        raise ConnectionUnusable(
            f"Airflow connection {conn_id!r} is not defined: set AIRFLOW_CONN_{conn_id.upper()} "
            "or add it to the metadata database"
        ) from exc
    if conn.conn_type == "sqlite":
        return URL.create("sqlite", database=conn.host or conn.schema)
    if conn.conn_type in _POSTGRES_TYPES:
        return URL.create(
            "postgresql+psycopg",
            username=conn.login,
            password=conn.password,
            host=conn.host,
            port=conn.port,
            database=conn.schema,
            query={k: str(v) for k, v in (conn.extra_dejson or {}).items()},
        )
    raise ConnectionUnusable(f"Airflow connection {conn_id!r} has type {conn.conn_type!r}; expected sqlite or postgres")


def engine_for(conn_id_or_url: str | URL) -> sa.Engine:
    """An engine for a connection id, or for a SQLAlchemy URL (tests, the CLI's --url)."""
    url = sa.make_url(conn_id_or_url) if "://" in str(conn_id_or_url) else sqlalchemy_url(str(conn_id_or_url))
    engine = sa.create_engine(url, **_engine_options(url))
    if url.get_backend_name() == "sqlite":
        sa.event.listen(engine, "connect", _lenient_text)
    return engine


def configured() -> tuple[sa.Engine, sa.Engine]:
    """The POCO source and the Xiaomi target, from the configured connections."""
    return engine_for(SOURCE_CONN_ID), engine_for(TARGET_CONN_ID)


def _lenient_text(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    """SQLite keeps whatever bytes a writer stored as text. Bytes that are not UTF-8 are
    read as lone surrogates, which the moves quarantine as ``invalid_text``, instead of
    one such row making the whole table unreadable."""
    dbapi_conn.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")


def _engine_options(url: URL) -> dict[str, Any]:
    """No pool, on either database. An engine here lives for a task or a command, and a move holds
    one connection for its whole transaction, so a pool saves nothing; but in a long-lived process
    (a rehearsal's ``dag.test()`` runs, the triggerer, the test workers) every engine made and left
    to the garbage collector kept its idle connections open, and PostgreSQL's 100 ran out when two
    Airflow stacks and two rehearsals shared one server. Airflow runs tasks in forked processes,
    too, and a file-backed SQLite engine must not share handles across them."""
    if url.get_backend_name() == "sqlite":
        # A writer may wait for another.
        return {"poolclass": NullPool, "connect_args": {"timeout": 60}}
    return {"poolclass": NullPool}


class _Lendable:
    """A DBAPI connection that a gate may use inside the move's open transaction.

    Great Expectations opens, rolls back and closes connections of its own engine.
    While ``lent`` is set those calls are ignored, so its checkpoint reads the
    move's uncommitted rows and the move, not GX, decides to commit or roll back.
    """

    lent = False

    def rollback(self) -> None:
        if not self.lent:
            super().rollback()  # type: ignore[misc]

    def commit(self) -> None:
        if not self.lent:
            super().commit()  # type: ignore[misc]

    def close(self) -> None:
        if not self.lent:
            super().close()  # type: ignore[misc]


class _LendableSqlite(_Lendable, sqlite3.Connection):
    pass


if TYPE_CHECKING:
    import psycopg

    class _LendablePostgres(_Lendable, psycopg.Connection[Any]):
        """What :func:`_lendable_postgres` builds at run time, for the type checker."""


@cache
def _lendable_postgres() -> type[_LendablePostgres]:
    """Built on first use: the DAG files import this module, and must not load a driver."""
    import psycopg

    return cast("type[_LendablePostgres]", type("_LendablePostgres", (_Lendable, psycopg.Connection), {}))


class SharedConnection:
    """One database connection used by the move and by its gates, in one transaction."""

    def __init__(self, url: URL) -> None:
        self.url = url
        if url.get_backend_name() == "sqlite":
            # The driver's own transaction handling breaks savepoints: SQLAlchemy
            # issues the BEGIN instead, IMMEDIATE so that a second writer waits here.
            self.raw: _Lendable = sqlite3.connect(
                url.database or ":memory:",
                factory=_LendableSqlite,
                check_same_thread=False,
                timeout=60,
                isolation_level=None,
            )
        else:
            self.raw = _lendable_postgres().connect(
                url.set(drivername="postgresql").render_as_string(hide_password=False)
            )
        self.engine_kwargs: dict[str, Any] = {"creator": lambda: self.raw, "pool_reset_on_return": None}
        self.engine = sa.create_engine(url, poolclass=StaticPool, **self.engine_kwargs)
        if url.get_backend_name() == "sqlite":
            sa.event.listen(self.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))

    @contextmanager
    def lent(self) -> Iterator[None]:
        """Lend the connection to Great Expectations for the duration of the block."""
        self.raw.lent = True
        try:
            yield
        finally:
            self.raw.lent = False

    def close(self) -> None:
        self.engine.dispose()
        self.raw.close()
