"""One move, start to end, in a single target transaction (``run_move``).

1. lock the (domain, market) watermark row, so two runs of the same move queue up;
2. land the changed source rows (or all of them for a full move) in temporary tables of
   the target (``landing``), then judge them set-based, in one ``INSERT ... SELECT`` into
   the move's own temporary stage: the domain's rules and mapping stage each row with its
   target values or its quarantine reason;
3. if nothing would change, roll back: a run that finds nothing new writes nothing;
4. under a savepoint: the ``extract``, ``staged`` and, after the merge, ``reconciled``
   checkpoints. A failed checkpoint rolls the savepoint back, so nothing of the move
   reaches the Xiaomi tables, and only its quarantined rows are recorded;
5. record the move, its checkpoints and the new watermark (``bookkeeping``), and commit;
6. after a move that landed the whole market, analyze the tables it filled.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from decimal import Decimal

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from poco_migration import schemas
from poco_migration.connections import SharedConnection
from poco_migration.gates import Gatekeeper
from poco_migration.moves.bookkeeping import describe, ratio_query, record, save_watermark, write_totals
from poco_migration.moves.landing import Landing
from poco_migration.moves.move import Move
from poco_migration.moves.sql import KEYS_PER_QUERY, analyze, chunked, dialect_insert
from poco_migration.moves.types import GateFailed, MoveError, MoveRequest, MoveResult
from poco_migration.plan import Plan

log = logging.getLogger(__name__)


def run_move(move: Move, req: MoveRequest, source: Engine, target_url: URL) -> MoveResult:
    """Run one move; raise ``GateFailed`` after recording a refused one."""
    move_id = f"{req.domain}.{req.market}.{req.as_of:%Y%m%dT%H%M}.{uuid.uuid4().hex[:8]}"
    result = MoveResult(move_id, req.domain, req.market, status="running")
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    try:
        shared = SharedConnection(target_url)
    except Exception as exc:  # the driver's own connection errors differ per database
        raise MoveError(f"{req.domain} {req.market}: cannot connect to the Xiaomi target: {exc}") from exc
    try:
        with shared.engine.connect() as conn, conn.begin() as tx:
            watermark = _lock(conn, req)
            landing, new_watermark, result.staged = _stage(move, req, conn, source, None if req.full else watermark)
            result.changes = move.pending(conn)
            held_changed = move.note_held(conn, req)
            nothing_new = not held_changed and not any(v for k, v in result.changes.items() if k != "held")
            waiting = move.waiting(conn, req)
            if (nothing_new and not req.full and not waiting) or req.dry_run:
                result.status = "dry_run" if req.dry_run else "nothing_new"
                result.message = describe(result)
                tx.rollback()
                return result
            if waiting:
                move.record_quarantine(conn, req, release=False)
                result.status, result.message = "waiting", f"{describe(result)}\n{waiting}"
            else:
                _gate_and_merge(move, req, conn, shared, source, landing, result)
            if result.status == "moved":
                save_watermark(conn, req, max(filter(None, (watermark, new_watermark)), default=None))
            record(conn, req, result, started)
        if result.status == "moved" and (req.full or watermark is None):
            _refresh_statistics(move, req, shared)
    except sa.exc.SQLAlchemyError as exc:
        detail = getattr(exc, "orig", None) or exc
        raise MoveError(f"{req.domain} {req.market}: the Xiaomi target refused the move: {detail}") from exc
    finally:
        shared.close()
    if result.status == "gate_failed":
        raise GateFailed(result)
    if result.status == "waiting":
        raise MoveError(result.message)
    return result


def _refresh_statistics(move: Move, req: MoveRequest, shared: SharedConnection) -> None:
    """After a move that landed the whole market: statistics for the tables it filled, so
    that the next moves and the cutover's audit are planned for what is there now. The move
    has committed: a failure here costs only slower plans until autovacuum comes, and is
    logged, not raised."""
    try:
        with shared.engine.connect() as conn, conn.begin():
            analyze(conn, *move.written())
    except (sa.exc.SQLAlchemyError, psycopg.Error) as exc:
        log.warning("%s %s: moved, but the statistics were not refreshed: %s", req.domain, req.market, exc)


def _lock(conn: Connection, req: MoveRequest) -> dt.datetime | None:
    w = schemas.watermarks
    key = (w.c.domain == req.domain, w.c.market == req.market)
    conn.execute(
        dialect_insert(conn, w)
        .values(domain=req.domain, market=req.market, watermark=None, updated_at=req.as_of)
        .on_conflict_do_nothing(index_elements=["domain", "market"])
    )
    return conn.execute(sa.select(w.c.watermark).where(*key).with_for_update()).scalar_one()


def _stage(
    move: Move, req: MoveRequest, conn: Connection, source: Engine, watermark: dt.datetime | None
) -> tuple[Landing, dt.datetime | None, int]:
    """Land the source rows, judge them set-based into the move's stage; return the landing
    (its temporary tables, like the stage, go with the move's connection), the newest change
    seen and the number of rows staged."""
    queries = [move.extract(req, watermark)]
    if watermark is not None:
        queries += [move.extract_keys(req, refs) for refs in chunked(_quarantined(conn, req), KEYS_PER_QUERY)]
    landing = move.landing(queries[0], (source.dialect.name, conn.dialect.name))
    try:
        landed = landing.fill(conn, source, queries)
    except (sa.exc.SQLAlchemyError, psycopg.Error, ValueError, TypeError) as exc:
        detail = getattr(exc, "orig", None) or exc
        raise MoveError(
            f"{req.domain} {req.market}: cannot read the POCO source ({source.url.render_as_string()}): "
            f"{type(detail).__name__}: {detail}"
        ) from exc
    move.stage.create(conn)
    columns = [c.name for c in move.stage.columns]
    conn.execute(move.stage.insert().from_select(columns, move.staged_from(req, landing)))
    staged = conn.execute(sa.select(sa.func.count()).select_from(move.stage)).scalar_one()
    log.info("%s %s: %d rows landed, %d staged", req.domain, req.market, landed, staged)
    return landing, landing.latest(conn, move.change_columns, req.as_of), staged


def _quarantined(conn: Connection, req: MoveRequest) -> list[str]:
    q = schemas.quarantine
    return list(
        conn.execute(
            sa.select(q.c.source_ref).where(q.c.domain == req.domain, q.c.market == req.market).order_by(q.c.source_ref)
        ).scalars()
    )


def _gate_and_merge(
    move: Move,
    req: MoveRequest,
    conn: Connection,
    shared: SharedConnection,
    source: Engine,
    landing: Landing,
    result: MoveResult,
) -> None:
    gate = Gatekeeper(shared, result.move_id, source.url)
    parameters = gate_parameters(req.plan)
    try:
        savepoint = conn.begin_nested()
        extract = _extract_rows(move, req, move.held_refs(conn, req), landing)
        database = "target" if req.full else "source"
        result.checkpoints.append(gate.check("extract", [(f"{move.domain}.extract", extract)], parameters, database))
        if result.checkpoints[-1].success:
            result.checkpoints.append(
                gate.check("staged", [(f"{move.domain}.staged", move.staged_rows(req))], parameters)
            )
        if all(c.success for c in result.checkpoints):
            move.merge(conn, req, result.move_id)
            write_totals(conn, move, req, result.move_id, source)
            reconciled = gate.check("reconciled", _reconciliation(move, req, result.move_id), parameters)
            result.checkpoints.append(reconciled)
        if all(c.success for c in result.checkpoints):
            savepoint.commit()
            result.status = "moved"
        else:
            savepoint.rollback()
            move.record_quarantine(conn, req, release=False)
            result.status = "gate_failed"
    finally:
        gate.close()
    result.message = describe(result)


def _extract_rows(move: Move, req: MoveRequest, held: list[str], landing: Landing) -> sa.Select:
    """What the extract checkpoint validates: the whole market's in-scope source, not only
    the batch (its thresholds are shares of the market, like the quarantine ratio, not of
    one day's changes). A full move landed exactly those rows: it validates its landed copy
    in the target, and the source is read once for the whole move; a sync landed its changes
    only, and the checkpoint reads the market in the source. Rows moved, then invalid on
    POCO are held where they are, not quarantined: not a share of this move's defects (as
    they are not in the quarantine ratio either)."""
    if req.full:
        land = landing.rows.c
        rows = sa.select(*(land[name] for name in landing.source_columns)).where(move.in_scope(land))
        ref = move.ref_sql(land)
    else:
        rows, ref = move.extract(req, None).where(move.in_scope()).order_by(None), move.ref_sql()
    return rows.where(ref.not_in(held)) if held else rows


def gate_parameters(plan: Plan) -> dict[str, float]:
    """The suites' thresholds from the plan. The valid share is 1 - the ratio in decimal, so
    that a market exactly at the ratio passes both gates (in binary 1 - 0.07 is below 0.93)."""
    ratio = Decimal(str(plan.max_quarantine_ratio))
    return {"max_quarantine_ratio": float(ratio), "min_valid_share": float(1 - ratio)}


def _reconciliation(move: Move, req: MoveRequest, move_id: str) -> list[tuple[str, sa.Select]]:
    r = schemas.reconciliation
    return [
        ("move.reconciled", move.outcome()),
        ("move.quarantine_ratio", ratio_query(move.domain, req.market)),
        ("move.totals", sa.select(r.c.metric, r.c.expected, r.c.observed).where(r.c.move_id == move_id)),
    ]
