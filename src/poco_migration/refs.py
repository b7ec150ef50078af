"""``source_ref``: the contract's key of every migrated row, in Python and in SQL.

``poco:points:<user_id>`` (a user's opening credit) and ``poco:points:<user_id>:<n>``
(its n-th adjustment), ``poco:review:<review_id>``, ``poco:initiative:<initiative_id>``,
``poco:participant:<initiative_id>:<user_id>``. The format is the interface with the
Xiaomi platform, so it is spelled here only: the moves write it, the reconciliation,
the report, the rollback, the quarantine browser and the redirects read it back.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

PREFIXES = {
    "points": "poco:points:",
    "reviews": "poco:review:",
    "initiatives": "poco:initiative:",
    "participants": "poco:participant:",
}
# Which key of a domain's source_ref is the POCO user it belongs to (reviews: its
# author, which the ref does not hold; initiatives: nobody's).
USER_KEY = {"points": 0, "participants": 1}
DIGITS = "0123456789"


def source_ref(domain: str, *keys: Any) -> str:
    """``source_ref("participants", 3, 4)`` is ``poco:participant:3:4``."""
    return PREFIXES[domain] + ":".join(str(key) for key in keys)


def ref_sql(domain: str, *keys: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    """``source_ref`` in SQL, from the key columns; a NULL key spelled as ``source_ref`` spells
    it (``None``), so that a source that lost its key constraint stays named, and refused."""
    ref: sa.ColumnElement[str] = sa.literal(PREFIXES[domain], sa.Text)
    for n, key in enumerate(keys):
        ref = (ref + ":" if n else ref) + sa.func.coalesce(sa.cast(key, sa.Text), str(None))
    return ref


def ref_ids(ref: str) -> tuple[int, ...]:
    """The source keys in a source_ref: ``poco:review:7`` -> (7,), ``poco:participant:3:4`` -> (3, 4)."""
    return tuple(int(part) for part in ref.split(":")[2:])


def user_of(domain: str, ref: str) -> int | None:
    """The POCO user a row's source_ref names, where it names one."""
    key = USER_KEY.get(domain)
    return None if key is None else ref_ids(ref)[key]


def adjustment_ref(opening: sa.ColumnElement[str], n: sa.ColumnElement[int]) -> sa.ColumnElement[str]:
    """In SQL: the n-th adjustment of the points credit whose source_ref is ``opening``."""
    return opening + ":" + sa.cast(n, sa.Text)


def opening_ref_sql(ref: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """In SQL: the opening credit a ledger entry counts for (``poco:points:<u>:<n>`` counts for
    ``poco:points:<u>``; any other ref for itself)."""
    adjusted = sa.func.rtrim(sa.func.rtrim(ref, DIGITS), ":")
    return sa.case((ref.like(PREFIXES["points"] + "%:%"), adjusted), else_=ref)


def of_user(ref: sa.ColumnElement[str], user_id: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """In SQL: the ledger entry ``ref`` is the user's opening credit or one of its adjustments."""
    opening = ref_sql("points", user_id)
    return sa.or_(ref == opening, ref.startswith(opening + ":"))


def is_domain(ref: sa.ColumnElement[str], domain: str) -> sa.ColumnElement[bool]:
    return ref.startswith(PREFIXES[domain], autoescape=True)


def keys_sql(domain: str, ref: sa.ColumnElement[str]) -> tuple[sa.ColumnElement[int], ...]:
    """In SQL: the source keys a source_ref holds, as integers (``ref_ids`` in SQL). A points
    adjustment ``poco:points:<u>:<n>`` gives its user, as the opening credit does; see
    ``adjustment_sql``. Portable without a position function: the last key is what follows
    the last non-digit, the first of two keys is what precedes it."""
    if domain == "points":
        ref = opening_ref_sql(ref)
    rest = sa.func.substr(ref, len(PREFIXES[domain]) + 1)
    if domain != "participants":
        return (sa.cast(rest, sa.BigInteger),)
    head = sa.func.length(sa.func.rtrim(rest, DIGITS))
    return sa.cast(sa.func.substr(rest, 1, head - 1), sa.BigInteger), sa.cast(
        sa.func.substr(rest, head + 1), sa.BigInteger
    )


def adjustment_sql(ref: sa.ColumnElement[str]) -> sa.ColumnElement[int]:
    """In SQL: n of a points adjustment ``poco:points:<u>:<n>``; NULL for an opening credit."""
    n = sa.func.substr(ref, sa.func.length(sa.func.rtrim(ref, DIGITS)) + 1)
    return sa.case((ref.like(PREFIXES["points"] + "%:%"), sa.cast(n, sa.BigInteger)), else_=sa.null())
