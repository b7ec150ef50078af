"""Where the migration stands, per market and domain: what the dashboard and ``status`` show.

Everything is read from the bookkeeping the moves write in the target and from
the freeze flags in the source; nothing here writes. Emails never leave this
module unmasked.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from poco_migration import schemas
from poco_migration.operations import ROLLBACK, paused_markets
from poco_migration.plan import Plan
from poco_migration.refs import ref_ids, user_of

NOT_STARTED, SYNCING, GATE_FAILED, FROZEN, CUT_OVER = "not started", "syncing", "gate failed", "frozen", "cut over"
# A participants move waiting for its market's initiatives (their gate refused them).
WAITING = "waiting"
STATES = (NOT_STARTED, SYNCING, GATE_FAILED, WAITING, FROZEN, CUT_OVER)


@dataclass(frozen=True)
class Cell:
    """One market's domain: its state and how many rows are where."""

    market: str
    domain: str
    state: str
    moved: int
    quarantined: int
    last_move: str | None
    last_status: str | None
    paused: bool
    # The last move's plan date and the task instance that ran it (None before any move, or for
    # a move made outside Airflow): the dashboard links the cell to its run and its log.
    plan_date: str | None = None
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    map_index: int | None = None


def mask_email(email: str | None) -> str | None:
    """``jane.doe@example.com`` → ``j***@e***.com``: enough to tell two people apart on a
    call with support, not enough to write to them."""
    if not email or "@" not in email:
        return "***" if email else email
    local, _, domain = email.partition("@")
    host, dot, tld = domain.rpartition(".")
    if not dot:
        host, tld = domain, ""
    return f"{local[:1]}***@{host[:1]}***{dot}{tld}"


def _state(moves: list[Any], frozen_at: dt.datetime | None) -> str:
    """The state of one market's domain, from its moves since its last rollback (oldest first)."""
    if not moves:
        return NOT_STARTED
    if moves[-1].status == "gate_failed":
        return GATE_FAILED
    if moves[-1].status == "waiting":
        return WAITING
    if frozen_at is None:
        return SYNCING
    final = any(m.full_scan and m.status == "moved" and m.started_at >= frozen_at for m in moves)
    return CUT_OVER if final else FROZEN


def frozen_at(source: Engine) -> dict[str, dt.datetime]:
    state = schemas.poco_market_state
    with source.connect() as conn:
        rows = conn.execute(sa.select(state.c.market, state.c.frozen_at).where(state.c.frozen_at.is_not(None)))
        return dict(rows.tuples().all())


def _counts(conn: Connection, table: sa.Table) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        sa.select(table.c.market, table.c.domain, sa.func.count()).group_by(table.c.market, table.c.domain)
    )
    return {(market, domain): n for market, domain, n in rows.tuples()}


def _moves_since_rollback(conn: Connection) -> dict[tuple[str, str], list[Any]]:
    mv, o = schemas.moves, schemas.operations
    rolled_back: dict[str, dt.datetime] = dict(
        conn.execute(sa.select(o.c.market, sa.func.max(o.c.at)).where(o.c.action == ROLLBACK).group_by(o.c.market))
        .tuples()
        .all()
    )
    when = (mv.c.status, mv.c.full_scan, mv.c.started_at, mv.c.as_of)
    columns = (mv.c.market, mv.c.domain, *when, mv.c.dag_id, mv.c.run_id, mv.c.task_id, mv.c.map_index)
    grouped: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for move in conn.execute(sa.select(*columns).order_by(mv.c.started_at)):
        since = rolled_back.get(move.market)
        if since is None or move.started_at > since:
            grouped[move.market, move.domain].append(move)
    return grouped


def migrated(conn: Connection) -> bool:
    """Whether the target has the bookkeeping yet (not before the first seed or rehearsal)."""
    inspector = sa.inspect(conn)
    return all(inspector.has_table(t.name) for t in (schemas.moves, schemas.operations, schemas.checkpoints))


def cells(source: Engine, target: Engine, plan: Plan, markets: list[str] | None = None) -> list[Cell]:
    """Every market of the plan (or those asked for) by every domain, in plan order."""
    frozen = frozen_at(source)
    with target.connect() as conn:
        if not migrated(conn):
            moved, quarantined, moves, paused = {}, {}, {}, {}
        else:
            moved, quarantined = _counts(conn, schemas.moved), _counts(conn, schemas.quarantine)
            moves, paused = _moves_since_rollback(conn), paused_markets(conn)
    out = []
    for market in markets or list(plan.codes):
        for domain in schemas.DOMAINS:
            history = moves.get((market, domain), [])
            out.append(
                Cell(
                    market=market,
                    domain=domain,
                    state=_state(history, frozen.get(market)),
                    moved=moved.get((market, domain), 0),
                    quarantined=quarantined.get((market, domain), 0),
                    paused=market in paused,
                    **_last(history[-1] if history else None),
                )
            )
    return out


def _last(move: Any) -> dict[str, Any]:
    """What a cell shows of its last move: when (wall clock), for which plan date, how it ended,
    and where it ran."""
    if move is None:
        return {"last_move": None, "last_status": None}
    return {
        "last_move": move.started_at.isoformat(sep=" ", timespec="seconds"),
        "last_status": move.status,
        "plan_date": move.as_of.date().isoformat() if move.as_of else None,
        "dag_id": move.dag_id,
        "run_id": move.run_id,
        "task_id": move.task_id,
        "map_index": move.map_index,
    }


def checkpoints(target: Engine, limit: int = 20, market: str | None = None) -> list[dict[str, Any]]:
    """The latest checkpoint results, newest first, with their Data Docs pages: when they ran
    (wall clock) and for which plan date (their move's logical date)."""
    c, mv = schemas.checkpoints, schemas.moves
    query = sa.select(
        c.c.checked_at, c.c.market, c.c.domain, c.c.stage, c.c.success, c.c.evaluated, c.c.failed, c.c.data_docs
    ).add_columns(mv.c.as_of.label("plan_date"))
    query = query.select_from(c.outerjoin(mv, mv.c.move_id == c.c.move_id))
    if market:
        query = query.where(c.c.market == market)
    with target.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query.order_by(c.c.id.desc()).limit(limit))]


def reasons(target: Engine, market: str | None = None) -> dict[str, int]:
    """Quarantined rows by reason (of one market, or all), for the browser's filter."""
    q = schemas.quarantine
    query = sa.select(q.c.reason, sa.func.count()).group_by(q.c.reason).order_by(q.c.reason)
    with target.connect() as conn:
        if not migrated(conn):
            return {}
        return dict(conn.execute(query.where(q.c.market == market) if market else query).tuples().all())


def quarantine(
    source: Engine,
    target: Engine,
    *,
    reason: str | None = None,
    market: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """A page of quarantined rows, each with its user's masked email (where it has a user)."""
    q = schemas.quarantine
    query = sa.select(q.c.domain, q.c.source_ref, q.c.reason, q.c.market, q.c.detected_at)
    if reason:
        query = query.where(q.c.reason == reason)
    if market:
        query = query.where(q.c.market == market)
    with target.connect() as conn:
        if not migrated(conn):
            return []
        page = query.order_by(q.c.domain, q.c.source_ref).limit(limit).offset(offset)
        rows = [dict(r._mapping) for r in conn.execute(page)]
    users = owners(source, rows)
    emails = _masked_emails(source, set(users.values()))
    for row in rows:
        user_id = users.get(row["source_ref"])
        row["user_id"], row["email"] = user_id, emails.get(user_id) if user_id is not None else None
    return rows


def owners(source: Engine, rows: list[dict[str, Any]]) -> dict[str, int]:
    """The user behind each quarantined source_ref: in the ref itself, or its review's author."""
    owners: dict[str, int] = {}
    reviews: dict[int, str] = {}
    for row in rows:
        if (user_id := user_of(row["domain"], row["source_ref"])) is not None:
            owners[row["source_ref"]] = user_id
        elif row["domain"] == "reviews":
            reviews[ref_ids(row["source_ref"])[0]] = row["source_ref"]
    if reviews:
        r = schemas.poco_reviews
        with source.connect() as conn:
            authors = conn.execute(sa.select(r.c.review_id, r.c.user_id).where(r.c.review_id.in_(reviews)))
            for review_id, user_id in authors.tuples():
                owners[reviews[review_id]] = user_id
    return owners


def _masked_emails(source: Engine, user_ids: set[int]) -> dict[int, str | None]:
    if not user_ids:
        return {}
    u = schemas.poco_users
    with source.connect() as conn:
        rows = conn.execute(sa.select(u.c.user_id, u.c.email).where(u.c.user_id.in_(user_ids)))
        return {user_id: mask_email(email) for user_id, email in rows.tuples()}


def last_audits(conn: Connection) -> dict[str, dict[str, Any]]:
    """Each market's latest audit: when, the verdict over its domains, how many differences."""
    a = schemas.audits
    latest = sa.select(a.c.market, sa.func.max(a.c.audited_at).label("at")).group_by(a.c.market).subquery()
    query = sa.select(a.c.market, a.c.audited_at, a.c.differences).join(
        latest, sa.and_(latest.c.market == a.c.market, latest.c.at == a.c.audited_at)
    )
    found: dict[str, dict[str, Any]] = {}
    if not sa.inspect(conn).has_table(a.name):  # a target made before the audit existed
        return found
    for market, at, differences in conn.execute(query).tuples():
        cell = found.setdefault(market, {"audited_at": at.isoformat(timespec="seconds"), "differences": 0})
        cell["differences"] += differences
    for cell in found.values():
        cell["verdict"] = "passed" if cell["differences"] == 0 else "differs"
    return found


def snapshot(source: Engine, target: Engine, plan: Plan, now: dt.datetime | None = None) -> dict[str, Any]:
    """Everything the dashboard's first screen shows, as JSON-able data: the wall clock, the
    plan clock and the headline, the grid, the latest checkpoints, the quarantine's reasons."""
    from poco_migration import overview

    now = now or dt.datetime.now(dt.UTC)
    with target.connect() as conn:
        ready = migrated(conn)
        audits = last_audits(conn) if ready else {}
    return {
        "as_of": now.isoformat(timespec="seconds"),
        **overview.glance(source, target, plan),
        "cutovers": {m.market: m.cutover.isoformat() for m in plan.cutovers()},
        "cells": [asdict(c) for c in cells(source, target, plan)],
        "checkpoints": checkpoints(target) if ready else [],
        "reasons": reasons(target) if ready else {},
        "audits": audits,
    }


def render_text(rows: list[Cell]) -> str:
    """The ``status`` command's table: one line per market and domain; the last move's plan
    date and its wall-clock time in columns of their own."""
    head = f"{'market':6} {'domain':13} {'state':12} {'moved':>8} {'quarantined':>11}"
    lines = [f"{head}  {'plan date':10}  last move (UTC)"]
    for c in rows:
        flag = "  PAUSED" if c.paused else ""
        last = f"{c.last_move} {c.last_status}" if c.last_move else "-"
        counts = f"{c.market:6} {c.domain:13} {c.state:12} {c.moved:>8} {c.quarantined:>11}"
        lines.append(f"{counts}  {c.plan_date or '-':10}  {last}{flag}")
    return "\n".join(lines)
