"""Who a support query names: POCO users by ``user_id``, by Xiaomi ``mi_account_id``, or by email.

An email is never compared, kept or logged in clear: the query is hashed as soon as it
arrives (``email_key``), and the POCO side is hashed in SQL (``EmailKey``): SHA-256 of
the address trimmed and lower-cased, on PostgreSQL with its own ``sha256()``, on SQLite
with a function this module registers on the connection. So only the hash travels from
the caller to the database, and no clear address is read out of it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from poco_migration import schemas

USER_ID, MI_ACCOUNT_ID, EMAIL = "user_id", "mi_account_id", "email"
KINDS = (USER_ID, MI_ACCOUNT_ID, EMAIL)
# What ``strip()`` removes, spelled for PostgreSQL's btrim.
_WHITESPACE = " \t\n\r\f\v"
_SQLITE_FUNCTION = "poco_email_key"


def email_key(email: Any) -> str | None:
    """SHA-256 (hex) of an email address trimmed and lower-cased; None for no address. A SQLite
    source may hold undecodable bytes as lone surrogates: hashed as they are, not refused."""
    if email is None:
        return None
    return hashlib.sha256(str(email).strip().lower().encode("utf-8", "surrogatepass")).hexdigest()


class EmailKey(FunctionElement[str]):
    """``email_key`` of a column, in SQL."""

    type = sa.Text()
    inherit_cache = True


@compiles(EmailKey, "postgresql")
def _email_key_postgresql(element: EmailKey, compiler: SQLCompiler, **kw: Any) -> str:
    trimmed = sa.func.lower(sa.func.btrim(*element.clauses, _WHITESPACE))
    return compiler.process(sa.func.encode(sa.func.sha256(sa.func.convert_to(trimmed, "UTF8")), "hex"), **kw)


@compiles(EmailKey, "sqlite")
def _email_key_sqlite(element: EmailKey, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(getattr(sa.func, _SQLITE_FUNCTION)(*element.clauses), **kw)


def _register(conn: Connection) -> None:
    """Give a SQLite connection the hash function (PostgreSQL has its own)."""
    if conn.dialect.name == "sqlite":
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.create_function(_SQLITE_FUNCTION, 1, email_key, deterministic=True)


@dataclass(frozen=True)
class Query:
    """What support asked for: a kind of key and its value. An email arrives hashed
    (``Query.email``), so that a Query can be logged, kept or shown as it is."""

    kind: str
    value: str

    @classmethod
    def email(cls, address: str) -> Query:
        key = email_key(address)
        if not key or "@" not in address:
            raise ValueError("an email address needs an @")
        return cls(EMAIL, key)

    @classmethod
    def number(cls, kind: str, text: str | int) -> Query:
        if kind not in (USER_ID, MI_ACCOUNT_ID):
            raise ValueError(f"{kind!r} is not one of {USER_ID}, {MI_ACCOUNT_ID}")
        try:
            return cls(kind, str(int(str(text).strip())))
        except ValueError:
            raise ValueError(f"{kind} must be a whole number, not {text!r}") from None

    @property
    def shown(self) -> str | None:
        """The query as the lookup log keeps it: the id asked for; nothing of an email."""
        return None if self.kind == EMAIL else self.value


def find(source: Connection, query: Query) -> list[int]:
    """The POCO users the query names, in user_id order (one Mi account or one email may
    belong to several POCO users)."""
    u = schemas.poco_users
    if query.kind == USER_ID:
        return _with_rows(source, int(query.value))
    where = u.c.mi_account_id == int(query.value) if query.kind == MI_ACCOUNT_ID else EmailKey(u.c.email) == query.value
    _register(source)
    return list(source.execute(sa.select(u.c.user_id).where(where).order_by(u.c.user_id)).scalars())


def _with_rows(source: Connection, user_id: int) -> list[int]:
    """The user id, where any POCO table has a row of it: an account or a review may outlive
    its user row (the move quarantines those as ``unlinked_account``)."""
    tables = (
        schemas.poco_users,
        schemas.poco_points_accounts,
        schemas.poco_reviews,
        schemas.poco_initiative_participants,
    )
    anywhere = sa.or_(*(sa.exists().where(t.c.user_id == user_id) for t in tables))
    return [user_id] if source.execute(sa.select(anywhere)).scalar_one() else []
