"""Quarantine rules as data: a reason and the SQL test of a landed row that gives it.

Each domain lists its rules (a tuple of ``Rule``) in the order the contract lists the
reasons; the first that applies is the row's reason, judged set-based in the target
database on the landed rows (``first_reason`` is one ``CASE``). A rule reads a row as
a mapping of column names to SQL expressions: the landing table's columns, and what
the domain adds (a points credit at the market's rate, a participant's moved
initiative). The tests are written for SQL's NULLs: a NULL test is not a match, so a
rule that must match a NULL says so.

The rules here are shared by several domains: the unlinked account, and the values
the Xiaomi tables cannot hold. The contract trusts nothing in the source, and SQLite
keeps whatever a writer gave it: a number wider than the Xiaomi ``integer`` column, a
NUL byte (which PostgreSQL text refuses), bytes that were never UTF-8 (read as lone
surrogates, see ``connections.engine_for``). Text is checked while it lands
(``landing``), where such a value is replaced so that the landing table can hold it,
and flagged; such a row is quarantined under its own reason, so that one hostile value
neither stops its market's move nor reaches a database that would refuse it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import sqlalchemy as sa


class Row(Protocol):
    """A landed row as the rules read it: its columns (and the domain's additions) by name."""

    def __getitem__(self, name: str, /) -> sa.ColumnElement[Any]: ...


# The column of the landing table that says a row held text no target can store.
UNSTORABLE = "land_unstorable"


@dataclass(frozen=True)
class Rule:
    """A quarantine reason and its test, in SQL; ``text_columns`` are the columns whose text
    the landing checks for this rule (``invalid_text``)."""

    reason: str
    applies: Callable[[Row], sa.ColumnElement[bool]]
    text_columns: tuple[str, ...] = ()


def first_reason(rules: Sequence[Rule], row: Row) -> sa.ColumnElement[str | None]:
    """The first reason that applies, in the order the contract lists them; NULL for none."""
    return sa.case(*((rule.applies(row), rule.reason) for rule in rules), else_=sa.null()).label("reason")


def text_columns(rules: Sequence[Rule]) -> tuple[str, ...]:
    """The columns whose text the landing checks, for the domain's ``invalid_text`` rule."""
    return tuple(column for rule in rules for column in rule.text_columns)


UNLINKED = Rule("unlinked_account", lambda row: row["mi_account_id"].is_(None))


INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def fits_int32(value: Any) -> bool:
    """Whether a Xiaomi ``integer`` column can hold the value (NULL it can)."""
    return value is None or INT32_MIN <= value <= INT32_MAX


def storable_text(value: Any) -> bool:
    """A value every target database takes as it is: anything but bytes (a SQLite BLOB) and
    text that is not valid UTF-8 or holds a NUL (NULL is fine)."""
    if isinstance(value, bytes):
        return False
    if not isinstance(value, str):
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def storable(value: str | bytes) -> str:
    """A stand-in the landing table can hold for text no target can: each NUL and each lone
    surrogate becomes U+FFFD. The stand-in is never written to the target (its row is
    quarantined); it keeps the verdicts of the rules judged before ``invalid_text`` (not
    blank, not a known status), since neither character is white space or in a set."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return "".join("\ufffd" if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch for ch in text)


@cache
def python_whitespace() -> str:
    """Every character Python's ``str.strip()`` removes, for SQL's ``trim`` (whose default
    is the space only): a body of Unicode white space is as empty in SQL as in Python."""
    return "".join(filter(str.isspace, map(chr, range(sys.maxunicode + 1))))


def fractional(value: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """A number with a fraction, or text, in an integer column (only a SQLite source, or a
    source column wider than the contract's, holds one)."""
    return sa.func.round(value) != value


def out_of_range(*columns: str) -> Rule:
    """``out_of_range``: a number that the Xiaomi column (32-bit ``integer``) cannot hold."""
    return Rule(
        "out_of_range",
        lambda row: sa.or_(*(sa.or_(row[c] < INT32_MIN, row[c] > INT32_MAX, fractional(row[c])) for c in columns)),
    )


def invalid_text(*columns: str) -> Rule:
    """``invalid_text``: a NUL byte or bytes that are not UTF-8, in a column that moves."""
    return Rule("invalid_text", lambda row: row[UNSTORABLE], text_columns=columns)


def not_in(column: sa.ColumnElement[Any], values: Sequence[str]) -> sa.ColumnElement[bool]:
    """Python's ``value not in values``, NULL included (SQL's NOT IN is NULL for a NULL)."""
    return sa.or_(column.is_(None), column.not_in(values))


def kept(row: Row, columns: Sequence[str], reason: sa.ColumnElement[Any]) -> list[sa.ColumnElement[Any]]:
    """The values a row is staged with: a quarantined row's are not staged (its key and
    reason are what the quarantine needs, and a hostile value may not fit the stage)."""
    return [sa.case((reason.is_(None), row[c]), else_=sa.null()).label(c) for c in columns]
