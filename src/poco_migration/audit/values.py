"""One spelling of every compared value on both databases, and a row hash computed inside them.

The audit compares a source row with a target row that may live in another database
engine. With PostgreSQL on both sides it hashes the row's typed values, each cast to its
kind's one type (``row_hash_of``, ``hash_record``). Anywhere SQLite is involved, each side
writes every column as text in one spelling (PostgreSQL's text output:
``2020-12-02 10:38:26.5``, ``42``), joins a row's columns with a separator and hashes 32
bits of that text's MD5, so that SQLite's 64-bit ``SUM`` of millions of them cannot
overflow. The findings always compare the text spelling, on either engine.

An ``AMOUNT`` is a number the target may spread over several rows of one key (a user's
ledger entries: the opening credit and its adjustments), compared as their sum. With
PostgreSQL on both sides its row hash is linear in it (``linear_hash``), so that the
target's range sums add the entries up without grouping them per key first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

SEPARATOR = "\x1f"
NULL = "\x1e"  # a NULL column, which no text column can spell (unlike '' or 'None')
SQLITE_HASH = "poco_audit_hash"


class _PerDialect(FunctionElement[Any]):
    """An SQL function spelled per dialect: ``templates[dialect]`` with ``{}`` for the argument."""

    inherit_cache = True
    templates: ClassVar[dict[str, str]] = {}


@compiles(_PerDialect)
def _per_dialect(element: _PerDialect, compiler: Any, **kw: Any) -> str:
    return element.templates[compiler.dialect.name].format(compiler.process(element.clauses, **kw))


class row_hash(_PerDialect):
    """The row hash of a text: the first 32 bits of its UTF-8 bytes' MD5, as an integer.
    On SQLite as bytes, so that a text that is not UTF-8 hashes instead of failing the query."""

    inherit_cache = True
    type = sa.BigInteger()
    name = "row_hash"
    templates: ClassVar[dict[str, str]] = {
        "postgresql": "('x' || substr(md5({}), 1, 8))::bit(32)::bigint",
        "sqlite": SQLITE_HASH + "(CAST({} AS BLOB))",
    }


def _md5_32(data: bytes | None) -> int | None:
    return None if data is None else int.from_bytes(hashlib.md5(data).digest()[:4], "big")


def prepare(conn: Connection) -> None:
    """Give a SQLite connection the hash function PostgreSQL has built in. On PostgreSQL, for the
    audit's transaction: no JIT (compiling its expressions cost 0.70 s against 0.52 s without, a
    million reviews), and no sort-based grouping (on tables just written, without statistics,
    the planner picked a sort that spilled to disk; a hash aggregate of ~1,000 ranges fits), and
    workers' rows priced at half the default, so that the sums are planned in parallel with a
    partial aggregate per worker (the planner estimated a cheap hash not worth workers: a million
    users' sums ran on one core in 1.0 s, against 0.6 s on both; at 0 it gathered every row)."""
    if conn.dialect.name == "sqlite":
        raw: Any = conn.connection.driver_connection
        raw.create_function(SQLITE_HASH, 1, _md5_32, deterministic=True)
    elif conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET LOCAL jit = off"))
        conn.execute(sa.text("SET LOCAL enable_sort = off"))
        conn.execute(sa.text("SET LOCAL parallel_tuple_cost = 0.05"))


class instant(_PerDialect):
    """A timestamp as PostgreSQL prints it: ``YYYY-MM-DD HH:MM:SS`` and the fraction without
    trailing zeros. SQLite holds ``...:SS``, ``...:SS.ffffff`` or a ``T`` separator as text."""

    inherit_cache = True
    type = sa.Text()
    name = "instant"
    templates: ClassVar[dict[str, str]] = {
        "postgresql": "CAST({0} AS TEXT)",
        "sqlite": "(replace(substr({0}, 1, 19), 'T', ' ') || rtrim(rtrim(substr({0}, 20), '0'), '.'))",
    }


NUMBER, TEXT, INSTANT, AMOUNT = "number", "text", "instant", "amount"
TYPES: dict[str, sa.types.TypeEngine[Any]] = {
    NUMBER: sa.BigInteger(),
    TEXT: sa.Text(),
    INSTANT: sa.DateTime(),
}
# An amount the linear hash multiplies: a 32-bit value, as every ledger entry's delta is,
# keeps each product (with a 32-bit hash) within 64 bits. Outside it, an amount counts as
# no amount (0) and is told apart by a flag in the row's own hash.
AMOUNT_RANGE = (-(2**31), 2**31 - 1)


def spelled(column: sa.ColumnElement[Any], kind: str) -> sa.ColumnElement[str]:
    """A column as text in the one spelling both databases agree on."""
    return instant(column) if kind == INSTANT else sa.cast(column, sa.Text)


def row_text(columns: list[sa.ColumnElement[str]]) -> sa.ColumnElement[str]:
    """A row's columns as one text: NULL spelled apart, columns separated."""
    joined: sa.ColumnElement[str] | None = None
    for column in columns:
        spelled = sa.func.coalesce(column, sa.literal(NULL, sa.Text))
        joined = spelled if joined is None else joined + sa.literal(SEPARATOR, sa.Text) + spelled
    assert joined is not None, "a row has at least one column"
    return joined


def row_hash_of(
    keys: Sequence[sa.ColumnElement[Any]],
    columns: Sequence[tuple[sa.ColumnElement[Any], str]],
    typed: bool,
    weight: sa.ColumnElement[int] | None = None,
) -> sa.ColumnElement[int]:
    """The row hash of ``keys`` and ``columns`` (each with its kind). ``typed``, for PostgreSQL on
    both sides: ``hash_record`` of the row as typed values, each cast to its kind's one type (2.5
    times cheaper than building and hashing the text: 1.1 s against 2.9 s for a million reviews,
    one core), linear in its amounts; else the MD5 of the row's text, which any engine can
    compute alike (a row is then whole on both sides: ``weight`` is for typed rows only)."""
    hashed = [*((k, NUMBER) for k in keys), *columns]
    if not typed:
        assert weight is None, "only typed hashes add a key's rows up"
        return row_hash(row_text([spelled(c, kind) for c, kind in hashed]))
    return linear_hash(keys, hashed, weight)


def linear_hash(
    keys: Sequence[sa.ColumnElement[Any]],
    columns: Sequence[tuple[sa.ColumnElement[Any], str]],
    weight: sa.ColumnElement[int] | None,
) -> sa.ColumnElement[int]:
    """``weight`` x hash(the row's other values) + each amount x hash(the keys): the sum over a
    key's rows, where one row has weight 1 and the others 0, equals the hash of one row holding
    their amounts' sum, so that a target that spreads a row over several (a user's ledger) sums
    without grouping them (1.3 s of a million users' audit was that grouping). An amount that is
    not a 32-bit value (NULL, or a credit beyond the ledger's range) counts as 0 and sets a flag
    among the other values. Its one blind spot: an opening entry without a delta whose
    adjustments sum to exactly 0 sums like a POCO credit that is NULL or not a 32-bit value (the
    move never writes a NULL delta; the rows, where read, still compare them). Keys with no
    weighing entry at all are read apart (``contract.Mapping.target_unweighed``)."""
    amounts = [c for c, kind in columns if kind == AMOUNT]
    low, high = AMOUNT_RANGE
    fair = [sa.func.coalesce(a.between(low, high), sa.false()) for a in amounts]
    typed = [sa.cast(c, TYPES[kind]) for c, kind in columns if kind != AMOUNT]
    hashed: sa.ColumnElement[int] = sa.cast(sa.func.hash_record(sa.tuple_(*typed, *fair)), sa.BigInteger)
    if weight is not None:
        hashed = hashed * weight
    if amounts:
        per_key = sa.cast(sa.func.hash_record(sa.func.row(*(sa.cast(k, sa.BigInteger) for k in keys))), sa.BigInteger)
        for amount, ok in zip(amounts, fair, strict=True):
            hashed = hashed + sa.case((ok, sa.cast(amount, sa.BigInteger)), else_=0) * per_key
    return hashed
