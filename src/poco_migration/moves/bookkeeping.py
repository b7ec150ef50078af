"""What a move records beside the Xiaomi tables: its source-against-target totals, the
market's quarantine ratio, the new watermark, the move and its checkpoints, and the
message that says what it did."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from poco_migration import schemas
from poco_migration.moves.move import Move
from poco_migration.moves.types import MoveRequest, MoveResult


def ratio_query(domain: str, market: str) -> sa.Select:
    """The market's quarantined share of in-scope rows after the merge."""
    q, m = schemas.quarantine, schemas.moved
    quarantined = sa.select(sa.func.count()).where(q.c.domain == domain, q.c.market == market).scalar_subquery()
    moved = sa.select(sa.func.count()).where(m.c.domain == domain, m.c.market == market).scalar_subquery()
    total = quarantined + moved
    ratio = sa.case((total == 0, 0.0), else_=sa.cast(quarantined, sa.Float) / total)
    return sa.select(quarantined.label("quarantined"), total.label("in_scope"), ratio.label("quarantine_ratio"))


def write_totals(conn: Connection, move: Move, req: MoveRequest, move_id: str, source: Engine) -> None:
    totals = move.totals(conn, req, source) if req.full else {}
    staged_valid = conn.execute(
        sa.select(sa.func.count()).select_from(move.stage).where(move.stage.c.reason.is_(None))
    ).scalar_one()
    totals["staged_valid_rows"] = (staged_valid, staged_valid)
    conn.execute(
        schemas.reconciliation.insert(),
        [
            {"move_id": move_id, "domain": req.domain, "market": req.market, "metric": k, "expected": e, "observed": o}
            for k, (e, o) in totals.items()
        ],
    )


def save_watermark(conn: Connection, req: MoveRequest, watermark: dt.datetime | None) -> None:
    w = schemas.watermarks
    conn.execute(
        sa.update(w)
        .where(w.c.domain == req.domain, w.c.market == req.market)
        .values(watermark=watermark, updated_at=req.as_of)
    )


def record(conn: Connection, req: MoveRequest, result: MoveResult, started: dt.datetime) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    conn.execute(
        schemas.moves.insert().values(
            move_id=result.move_id,
            run_id=req.run_id,
            domain=req.domain,
            market=req.market,
            full_scan=req.full,
            status=result.status,
            staged=result.staged,
            **{k: result.changes.get(k, 0) for k in ("inserted", "updated", "quarantined", "released", "held")},
            started_at=started,
            finished_at=now,
            message=result.message,
            as_of=req.as_of,
            **(asdict(req.origin) if req.origin else {}),
        )
    )
    if result.checkpoints:
        conn.execute(
            schemas.checkpoints.insert(),
            [
                {
                    "move_id": result.move_id,
                    "run_id": req.run_id,
                    "domain": req.domain,
                    "market": req.market,
                    "stage": c.stage,
                    "success": c.success,
                    "evaluated": c.evaluated,
                    "failed": c.failed,
                    "success_percent": 100.0 * (c.evaluated - c.failed) / c.evaluated if c.evaluated else None,
                    "failures": [str(f) for f in c.failures],
                    "data_docs": c.data_docs,
                    "checked_at": now,
                }
                for c in result.checkpoints
            ],
        )


def describe(result: MoveResult) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in result.changes.items())
    head = f"{result.domain} {result.market}: {result.status}; {result.staged} rows staged; {counts}"
    failed = result.failed_gate
    if failed is None:
        return head
    lines = [f"{head}", f"checkpoint {failed.stage!r} failed:", *(f"  - {f}" for f in failed.failures)]
    if failed.data_docs:
        lines.append(f"  Data Docs: {failed.data_docs}")
    return "\n".join(lines)
