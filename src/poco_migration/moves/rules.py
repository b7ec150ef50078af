"""Quarantine rules as data: a reason and the test of a source row that gives it.

Each domain lists its rules (a tuple of ``Rule``) in the order the contract lists the
reasons; the first that applies is the row's reason. The rules here are shared by
several domains: the unlinked account, and the values the Xiaomi tables cannot hold.
The contract trusts nothing in the source, and SQLite keeps whatever a writer gave
it: a number wider than the Xiaomi ``integer`` column, a NUL byte (which PostgreSQL
text refuses), bytes that were never UTF-8 (read as lone surrogates, see
``connections.engine_for``). Such a row is quarantined under its own reason, so that
one hostile value neither stops its market's move nor reaches a database that would
refuse it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    """A quarantine reason and the test of a source row that gives it."""

    reason: str
    applies: Callable[[Mapping[str, Any]], bool]


def first_reason(rules: Sequence[Rule], row: Mapping[str, Any]) -> str | None:
    """The first reason that applies, in the order the contract lists them."""
    return next((rule.reason for rule in rules if rule.applies(row)), None)


def is_unlinked(row: Mapping[str, Any]) -> bool:
    return row["mi_account_id"] is None


UNLINKED = Rule("unlinked_account", is_unlinked)


INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def fits_int32(value: Any) -> bool:
    """Whether a Xiaomi ``integer`` column can hold the value (NULL it can)."""
    return value is None or INT32_MIN <= value <= INT32_MAX


def storable_text(value: Any) -> bool:
    """Text every target database takes as it is: valid UTF-8 without NUL (NULL is fine)."""
    if value is None:
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def out_of_range(*columns: str) -> Rule:
    """``out_of_range``: a number that the Xiaomi column (32-bit ``integer``) cannot hold."""
    return Rule("out_of_range", lambda row: not all(fits_int32(row[c]) for c in columns))


def invalid_text(*columns: str) -> Rule:
    """``invalid_text``: a NUL byte or bytes that are not UTF-8, in a column that moves."""
    return Rule("invalid_text", lambda row: not all(storable_text(row[c]) for c in columns))


def kept(row: Mapping[str, Any], columns: tuple[str, ...], reason: str | None) -> dict[str, Any]:
    """The values a row is staged with: a quarantined row's are not staged (its key and
    reason are what the quarantine needs, and a hostile value may not fit the stage)."""
    return {column: None if reason else row[column] for column in columns}
