"""One move, start to end, in a single target transaction (``run_move``).

1. lock the (domain, market) watermark row, so two runs of the same move queue up;
2. stream the changed source rows (or all of them for a full move) in chunks, apply
   the domain's rules, and stage each row with its target values or its quarantine
   reason;
3. if nothing would change, roll back: a run that finds nothing new writes nothing;
4. under a savepoint: the ``extract``, ``staged`` and, after the merge, ``reconciled``
   checkpoints. A failed checkpoint rolls the savepoint back, so nothing of the move
   reaches the Xiaomi tables, and only its quarantined rows are recorded;
5. record the move, its checkpoints and the new watermark (``bookkeeping``), and commit.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from poco_migration import schemas
from poco_migration.connections import SharedConnection
from poco_migration.gates import Gatekeeper
from poco_migration.moves.bookkeeping import describe, ratio_query, record, save_watermark, write_totals
from poco_migration.moves.move import Move
from poco_migration.moves.sql import CHUNK_ROWS, KEYS_PER_QUERY, chunked, dialect_insert, insert_rows
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
            new_watermark, result.staged = _stage(move, req, conn, source, None if req.full else watermark)
            result.changes = move.pending(conn, req)
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
                _gate_and_merge(move, req, conn, shared, source, result)
            if result.status == "moved":
                save_watermark(conn, req, max(filter(None, (watermark, new_watermark)), default=None))
            record(conn, req, result, started)
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
) -> tuple[dt.datetime | None, int]:
    """Stream the source rows into the stage; return the newest change seen and the row count."""
    conn.execute(sa.delete(move.stage).where(move.batch(req)))
    latest = _Latest(move.change_columns, req.as_of)
    staged_refs: set[str] = set()
    queries = [move.extract(req, watermark)]
    if watermark is not None:
        queries += [move.extract_keys(req, refs) for refs in chunked(_quarantined(conn, req), KEYS_PER_QUERY)]
    try:
        with source.connect() as src:
            for query in queries:
                rows = latest.watch(src.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(query))
                for chunk in chunked(move.stage_rows(rows, req, conn), CHUNK_ROWS):
                    # A key seen before is staged once: a quarantined row read again, or a source
                    # without its key constraint (the extract checkpoint refuses that move, naming it).
                    fresh = [{**r, "batch_market": req.market} for r in chunk if _first(r["source_ref"], staged_refs)]
                    insert_rows(conn, move.stage, fresh)
                    log.info("%s %s: %d rows staged", req.domain, req.market, len(staged_refs))
    except (sa.exc.SQLAlchemyError, ValueError, TypeError) as exc:
        detail = getattr(exc, "orig", None) or exc
        raise MoveError(
            f"{req.domain} {req.market}: cannot read the POCO source ({source.url.render_as_string()}): "
            f"{type(detail).__name__}: {detail}"
        ) from exc
    return latest.value, len(staged_refs)


def _first(ref: str, seen: set[str]) -> bool:
    """Whether ``ref`` is seen for the first time (and note it as seen)."""
    first = ref not in seen
    seen.add(ref)
    return first


class _Latest:
    """Follows the newest change timestamp of the rows streaming past: the next watermark.

    A timestamp later than the run itself is not believed: one row dated in the future
    must not hide every real change after it (it is simply read again next time).
    """

    def __init__(self, columns: Sequence[str], as_of: dt.datetime) -> None:
        self.columns = columns
        self.as_of = as_of
        self.value: dt.datetime | None = None

    def watch(self, result: sa.CursorResult) -> Iterator[Mapping[str, Any]]:
        # RowMapping is typed Mapping[str | Column | ..., Any] (what a lookup accepts); its keys are the names.
        for row in cast("Iterable[Mapping[str, Any]]", result.mappings()):
            for column in self.columns:
                seen = row[column]
                if seen is not None and seen <= self.as_of and (self.value is None or seen > self.value):
                    self.value = seen
            yield row


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
    result: MoveResult,
) -> None:
    gate = Gatekeeper(shared, result.move_id, source.url)
    parameters = gate_parameters(req.plan)
    try:
        savepoint = conn.begin_nested()
        # The whole market's in-scope source, not only the batch: its thresholds are
        # shares of the market, like the quarantine ratio, not of one day's changes.
        extract = move.extract(req, None).where(move.in_scope())
        if held := move.held_refs(conn, req):
            # Moved, then invalid on POCO: held where they are, not quarantined, so not a
            # share of this move's defects (as they are not in the quarantine ratio either).
            extract = extract.where(move.ref_sql().not_in(held))
        result.checkpoints.append(
            gate.check("extract", [(f"{move.domain}.extract", extract)], parameters, database="source")
        )
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


def gate_parameters(plan: Plan) -> dict[str, float]:
    """The suites' thresholds from the plan. The valid share is 1 - the ratio in decimal, so
    that a market exactly at the ratio passes both gates (in binary 1 - 0.07 is below 0.93)."""
    ratio = Decimal(str(plan.max_quarantine_ratio))
    return {"max_quarantine_ratio": float(ratio), "min_valid_share": float(1 - ratio)}


def _reconciliation(move: Move, req: MoveRequest, move_id: str) -> list[tuple[str, sa.Select]]:
    r = schemas.reconciliation
    return [
        ("move.reconciled", move.outcome(req)),
        ("move.quarantine_ratio", ratio_query(move.domain, req.market)),
        ("move.totals", sa.select(r.c.metric, r.c.expected, r.c.observed).where(r.c.move_id == move_id)),
    ]
