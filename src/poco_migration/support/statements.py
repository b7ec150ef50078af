"""A statement per user at each cutover: what a CRM sends every person of a market from.

Per market, one line per user with a row of that market in the migration's bookkeeping
(moved, quarantined or held) in the domains that belong to a person: points, reviews and
participants. A participation goes with its initiative's market, so a user of another
market appears in this market's statement for it; the points fields (the POCO balance and
what the ledger credited, which is the user's ledger sum) are filled on the statement of the
market the user's points moved with only, and empty elsewhere, so that each market's lines
add up to its own reconciliation report: the credits to ``target`` + ``held_points``, the moved counts to the
report's ``moved``, the items not moved to its quarantined and held rows.

Each item not moved carries its situation (the quarantine reason, or ``held``) and the
sentence support would say (``support.advice``, as a closed market). No email is written,
masked or not: the CRM addresses people by their Mi account.

Both files (``<MARKET>.csv`` and ``<MARKET>.jsonl``) are replaced atomically: a CRM reading
them never sees half a statement.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poco_migration import schemas
from poco_migration.files import replacing
from poco_migration.moves.sql import KEYS_PER_QUERY, chunked
from poco_migration.plan import Plan
from poco_migration.refs import ref_ids
from poco_migration.status import owners
from poco_migration.support.advice import HELD, advice

# The domains whose rows belong to a person, in the order a line lists its items.
DOMAINS = ("points", "reviews", "participants")
COLUMNS = (
    "market",
    "user_id",
    "mi_account_id",
    "points_before",
    "points_after",
    "conversion_rate",
    "reviews_moved",
    "participations_moved",
    "not_moved",
)


@dataclass(slots=True)
class _User:
    """One user's rows of the market, as the bookkeeping is read (slots: a market has many)."""

    has_points: bool = False
    reviews: int = 0
    participations: int = 0
    not_moved: list[tuple[str, str, str]] = field(default_factory=list)

    def note(self, domain: str, ref: str, situation: str | None) -> None:
        self.has_points = self.has_points or domain == "points"
        if situation is not None:
            self.not_moved.append((domain, ref, situation))
        elif domain == "reviews":
            self.reviews += 1
        elif domain == "participants":
            self.participations += 1


@dataclass(frozen=True)
class Written:
    """Where a market's statement went, and its totals (for the log, the XCom, the report)."""

    csv: Path
    jsonl: Path
    counts: dict[str, int]


def _bookkeeping(market: str) -> sa.CompoundSelect:
    """(domain, source_ref, situation) of the market's rows: situation NULL for a moved row, the
    reason for a quarantined one, ``held`` for a held one (which is also in ``moved``)."""

    def rows(table: sa.Table, situation: sa.ColumnElement[Any]) -> sa.Select:
        where = (table.c.market == market, table.c.domain.in_(DOMAINS))
        return sa.select(table.c.domain, table.c.source_ref, situation.label("situation")).where(*where)

    q = schemas.quarantine
    return sa.union_all(
        rows(schemas.moved, sa.cast(sa.null(), sa.Text)),
        rows(q, q.c.reason),
        rows(schemas.held, sa.literal(HELD, sa.Text)),
    )


def _users(source: Engine, target: Engine, market: str) -> dict[int | None, _User]:
    """The market's rows by user, their owners found a chunk at a time (a review's author is read
    from POCO). A row whose user cannot be found (a review gone from POCO) goes under None."""
    users: dict[int | None, _User] = {}
    with target.connect() as conn:
        rows = conn.execution_options(stream_results=True, yield_per=KEYS_PER_QUERY).execute(_bookkeeping(market))
        for chunk in chunked(rows.mappings(), KEYS_PER_QUERY):
            owner_of = owners(source, [dict(row) for row in chunk])
            for row in chunk:
                user = users.setdefault(owner_of.get(row["source_ref"]), _User())
                user.note(row["domain"], row["source_ref"], row["situation"])
    return users


def _known(source: Engine, target: Engine, market: str, user_ids: list[int]) -> Iterator[tuple[int, Any, Any, Any]]:
    """(user_id, mi_account_id, POCO balance, credited) of each user, a chunk of ids at a time:
    the account link and the balance as POCO holds them, what the ledger credited in the market."""
    u, a, b = schemas.poco_users, schemas.poco_points_accounts, schemas.points_balances
    with source.connect() as src, target.connect() as tgt:
        for chunk in chunked(user_ids, KEYS_PER_QUERY):
            links = _by_user(src, u.c.user_id, u.c.mi_account_id, chunk)
            balances = _by_user(src, a.c.user_id, a.c.balance, chunk)
            credited = _by_user(tgt, b.c.user_id, b.c.credited, chunk, b.c.market == market)
            for user_id in chunk:
                yield user_id, links.get(user_id), balances.get(user_id), credited.get(user_id, 0)


def _by_user(
    conn: sa.Connection, key: sa.Column, value: sa.Column, user_ids: list[int], *where: sa.ColumnElement[bool]
) -> dict[int, Any]:
    return dict(conn.execute(sa.select(key, value).where(key.in_(user_ids), *where)).tuples().all())


def lines(source: Engine, target: Engine, plan: Plan, market: str) -> Iterator[dict[str, Any]]:
    """The market's statement, one JSON-able line per user, by user_id (a line of rows whose
    user cannot be found last, user_id None), made as they are read: only the users' counts
    are held, not their lines."""
    users = _users(source, target, market)
    say, ids = _Say(plan, market), sorted(u for u in users if u is not None)  # user 0 is a user
    for user_id, mi_account_id, balance, credited in _known(source, target, market, ids):
        yield say.line(user_id, users[user_id], mi_account_id, balance, credited)
    if None in users:
        yield say.line(None, users[None], None, None, 0)


class _Say:
    """A market's statement line, with the market's rate and the advice as its market is closed."""

    def __init__(self, plan: Plan, market: str) -> None:
        self.market, self.rate = market, str(plan.market(market).conversion_rate)
        self.dates = {"cutover": plan.market(market).cutover.isoformat(), "shutdown": plan.shutdown.isoformat()}

    def line(self, user_id: int | None, user: _User, mi_account_id: Any, balance: Any, credited: Any) -> dict:
        items = sorted(user.not_moved, key=lambda item: (DOMAINS.index(item[0]), ref_ids(item[1])))
        return {
            "market": self.market,
            "user_id": user_id,
            "mi_account_id": mi_account_id,
            "points_before": balance if user.has_points else None,
            "points_after": credited if user.has_points else None,
            "conversion_rate": self.rate,
            "reviews_moved": user.reviews,
            "participations_moved": user.participations,
            "not_moved": [
                {"domain": d, "source_ref": ref, "situation": s, "action": advice(s, closed=True, **self.dates)}
                for d, ref, s in items
            ],
        }


def _add(counts: dict[str, int], line: dict[str, Any]) -> None:
    """Count a line into the totals the report reconciles a statement with."""
    counts["users"] += 1
    counts["points_after"] += line["points_after"] or 0
    counts["reviews_moved"] += line["reviews_moved"]
    counts["participations_moved"] += line["participations_moved"]
    counts["not_moved"] += len(line["not_moved"])


def write(source: Engine, target: Engine, plan: Plan, market: str, out_dir: Path) -> Written:
    """Write ``<MARKET>.csv`` and ``<MARKET>.jsonl`` in ``out_dir`` in one pass, each replaced
    once complete (neither, if the statement fails half way). The CSV holds the same lines, its
    ``not_moved`` cell the JSON list of the JSONL line."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, jsonl_path = out_dir / f"{market}.csv", out_dir / f"{market}.jsonl"
    counts = dict.fromkeys(("users", "points_after", "reviews_moved", "participations_moved", "not_moved"), 0)
    with replacing(csv_path) as csv_out, replacing(jsonl_path) as jsonl_out:
        writer = csv.DictWriter(csv_out, COLUMNS)
        writer.writeheader()
        for line in lines(source, target, plan, market):
            writer.writerow({**line, "not_moved": json.dumps(line["not_moved"], ensure_ascii=False)})
            jsonl_out.write(json.dumps(line, ensure_ascii=False) + "\n")
            _add(counts, line)
    return Written(csv_path, jsonl_path, counts)
