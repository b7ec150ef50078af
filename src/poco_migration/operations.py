"""What an operator does to one market by hand: pause it, resume it, roll it back.

Each action is one transaction on the target and leaves a row in
``poco_migration_operations``, the audit trail the dashboard and ``status`` read.
A paused market is skipped by the syncs and by its cutover, so that a rollback
never races a move; a rollback therefore requires a paused market.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from poco_migration import schemas
from poco_migration.refs import of_user

log = logging.getLogger(__name__)

PAUSE, RESUME, ROLLBACK = "pause", "resume", "rollback"


class OperationRefused(RuntimeError):
    """An operation that would be unsafe in the market's present state."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _log(conn: Connection, market: str, action: str, reason: str | None, detail: dict[str, Any] | None) -> None:
    conn.execute(
        schemas.operations.insert().values(market=market, action=action, reason=reason, detail=detail, at=_now())
    )


def paused_markets(conn: Connection) -> dict[str, str | None]:
    """Markets paused now, with the reason given: those whose latest pause or resume is a pause."""
    o = schemas.operations
    if not sa.inspect(conn).has_table(o.name):
        return {}
    latest = (
        sa.select(o.c.market, sa.func.max(o.c.id).label("id"))
        .where(o.c.action.in_((PAUSE, RESUME)))
        .group_by(o.c.market)
        .subquery()
    )
    rows = conn.execute(
        sa.select(o.c.market, o.c.reason).join(latest, o.c.id == latest.c.id).where(o.c.action == PAUSE)
    )
    return dict(rows.tuples().all())


def pause(target: Engine, market: str, reason: str) -> bool:
    """Pause a market; False when it was paused already (nothing written)."""
    with target.begin() as conn:
        if market in paused_markets(conn):
            return False
        _log(conn, market, PAUSE, reason, None)
    log.warning("%s paused: %s", market, reason)
    return True


def resume(target: Engine, market: str) -> bool:
    """Resume a paused market; False when it was not paused."""
    with target.begin() as conn:
        if market not in paused_markets(conn):
            return False
        _log(conn, market, RESUME, None, None)
    log.warning("%s resumed", market)
    return True


def _ledger_of_market(market: str) -> sa.ColumnElement[bool]:
    """The market's ledger entries: each credited user's opening credit and adjustments."""
    ledger, b = schemas.mi_points_ledger, schemas.points_balances
    return sa.exists().where(b.c.market == market, of_user(ledger.c.source_ref, b.c.user_id))


def _moved_of(domain: str, market: str, table: sa.Table) -> sa.ColumnElement[bool]:
    m = schemas.moved
    refs = sa.select(m.c.source_ref).where(m.c.domain == domain, m.c.market == market)
    return table.c.source_ref.in_(refs)


# Children before parents: participants point at initiatives.
_TARGET_ROWS = (
    ("participants", schemas.mi_initiative_participants),
    ("initiatives", schemas.mi_initiatives),
    ("reviews", schemas.mi_reviews),
)
_BOOKKEEPING_ROWS = (schemas.moved, schemas.quarantine, schemas.held, schemas.points_balances, schemas.watermarks)


def rollback(target: Engine, source: Engine, market: str) -> dict[str, int]:
    """Remove everything the migration wrote for a market, by source_ref, and lift its freeze.

    The history (moves, checkpoints, operations) stays: it is the audit trail. The
    market must be paused, so that no move of it is running or starts meanwhile.
    """
    removed: dict[str, int] = {}
    with target.begin() as conn:
        if market not in paused_markets(conn):
            raise OperationRefused(f"{market} is not paused: run `poco-migration pause {market}` first")
        _lock_watermarks(conn, market)
        removed["mi_points_ledger"] = _delete(conn, schemas.mi_points_ledger, _ledger_of_market(market))
        for domain, table in _TARGET_ROWS:
            removed[table.name] = _delete(conn, table, _moved_of(domain, market, table))
        for table in _BOOKKEEPING_ROWS:
            removed[table.name] = _delete(conn, table, table.c.market == market)
        _log(conn, market, ROLLBACK, None, removed)
    # After the target commits: a failure here leaves a frozen, empty market, and
    # running the rollback again lifts the freeze.
    removed["freeze_lifted"] = int(_lift_freeze(source, market))
    log.warning("%s rolled back: %s", market, removed)
    return removed


def _lock_watermarks(conn: Connection, market: str) -> None:
    """Wait for a move of the market still holding its watermark row (PostgreSQL; SQLite
    serialises writers on its own)."""
    w = schemas.watermarks
    conn.execute(sa.select(w.c.domain).where(w.c.market == market).with_for_update()).all()


def _delete(conn: Connection, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
    return conn.execute(sa.delete(table).where(where)).rowcount


def _lift_freeze(source: Engine, market: str) -> bool:
    """The POCO site of the market takes changes again (the freeze flag is the migration's
    only write to the source)."""
    state = schemas.poco_market_state
    with source.begin() as conn:
        lifted = conn.execute(
            sa.update(state).where(state.c.market == market, state.c.frozen_at.is_not(None)).values(frozen_at=None)
        )
    return lifted.rowcount == 1
