"""What every domain's move shares: extract, stage, gate, merge and record.

A move takes one domain of one market from the POCO source to the Xiaomi target
in a single target transaction:

1. lock the (domain, market) watermark row, so two runs of the same move queue up;
2. stream the changed source rows (or all of them for a full move) in chunks,
   apply the domain's rules, and stage each row with its target values or its
   quarantine reason;
3. if nothing would change, roll back: a run that finds nothing new writes nothing;
4. under a savepoint: the ``staged`` checkpoint, the set-based merge, then the
   ``reconciled`` checkpoint. A failed checkpoint rolls the savepoint back, so
   nothing of the move reaches the Xiaomi tables, and only its quarantined rows
   are recorded;
5. record the move, its checkpoints and the new watermark, and commit.

The domain modules say what is domain-specific: the source query, the rules and
the mapping, and (for points) how a merge credits the ledger.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from typing import Any, ClassVar

import sqlalchemy as sa
from psycopg import sql as psycopg_sql
from sqlalchemy.engine import URL, Connection, Engine

from poco_migration import schemas
from poco_migration.connections import SharedConnection
from poco_migration.gates import CheckpointOutcome, Gatekeeper
from poco_migration.plan import GLOBAL_MARKET, Plan

log = logging.getLogger(__name__)

CHUNK_ROWS = 5_000
KEYS_PER_QUERY = 500


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


@dataclass(frozen=True)
class MoveRequest:
    domain: str
    market: str
    plan: Plan
    as_of: dt.datetime
    run_id: str | None = None
    full: bool = False
    dry_run: bool = False


@dataclass
class MoveResult:
    move_id: str
    domain: str
    market: str
    status: str
    staged: int = 0
    changes: dict[str, int] = field(default_factory=dict)
    checkpoints: list[CheckpointOutcome] = field(default_factory=list)
    message: str = ""

    @property
    def failed_gate(self) -> CheckpointOutcome | None:
        return next((c for c in self.checkpoints if not c.success), None)


class GateFailed(RuntimeError):
    """A checkpoint refused a move; nothing of it was written to the Xiaomi tables."""

    def __init__(self, result: MoveResult) -> None:
        self.result = result
        super().__init__(result.message)


class MoveError(RuntimeError):
    """A move that cannot run at all: a missing table, a bad column, no database."""


def market_expr(column: sa.ColumnElement[Any], plan: Plan) -> sa.ColumnElement[str]:
    """A row's market as the plan knows it: a code the plan does not have goes with GL."""
    code = sa.func.upper(sa.func.trim(column))
    return sa.case((code.in_(plan.codes), code), else_=sa.literal(GLOBAL_MARKET))


# SQLite keeps timestamps as text, with or without microseconds; a bound one second
# early makes ">=" hold for a row stored in the watermark's own second, whatever its
# format. Rows read again are harmless: the merge changes nothing for them.
WATERMARK_SLACK = dt.timedelta(seconds=1)


def at_or_after(column: sa.ColumnElement[Any], watermark: dt.datetime) -> sa.ColumnElement[bool]:
    return column >= watermark - WATERMARK_SLACK


def changed_since(watermark: dt.datetime, *columns: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """Rows changed at or after the watermark; a row with no timestamp is always looked at."""
    return sa.or_(columns[0].is_(None), *(at_or_after(column, watermark) for column in columns))


def ref_expr(prefix: str, *keys: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    """A source_ref in SQL: ``ref_expr("poco:participant:", i, u)`` is ``poco:participant:<i>:<u>``."""
    ref: sa.ColumnElement[str] = sa.literal(prefix, sa.Text)
    for n, key in enumerate(keys):
        ref = (ref + ":" if n else ref) + sa.cast(key, sa.Text)
    return ref


def ref_ids(ref: str) -> tuple[int, ...]:
    """The source keys in a source_ref: ``poco:review:7`` -> (7,), ``poco:participant:3:4`` -> (3, 4)."""
    return tuple(int(part) for part in ref.split(":")[2:])


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class Move:
    """A domain's move. The defaults are the "mirror" domains: one target row per source row."""

    domain: ClassVar[str]
    stage: ClassVar[sa.Table]
    target: ClassVar[sa.Table]
    content: ClassVar[tuple[str, ...]]
    change_columns: ClassVar[tuple[str, ...]] = ("updated_at",)

    # --- source side, per domain -------------------------------------------------
    def extract(self, req: MoveRequest, watermark: dt.datetime | None) -> sa.Select:
        raise NotImplementedError

    def extract_keys(self, req: MoveRequest, refs: Sequence[str]) -> sa.Select:
        """The source rows behind some source_refs (quarantined rows are looked at again)."""
        raise NotImplementedError

    def stage_rows(self, rows: Iterable[Mapping[str, Any]], req: MoveRequest, conn: Connection) -> Iterator[dict]:
        raise NotImplementedError

    def _source(self, req: MoveRequest) -> sa.Select:
        """Every source row of the market, with what the rules need to judge it."""
        raise NotImplementedError

    def in_scope(self) -> sa.ColumnElement[bool]:
        """The contract's scope, in SQL: what the source counts as due to move."""
        return sa.true()

    def ref_sql(self) -> sa.ColumnElement[str]:
        """A source row's source_ref, in SQL."""
        raise NotImplementedError

    def out_of_scope_refs(self, req: MoveRequest) -> sa.Select:
        """The source_refs of the market's rows out of scope now: some of them were in scope
        once (moved or quarantined, then deleted, zeroed, cancelled), and stay where they are."""
        out = sa.not_(sa.func.coalesce(self.in_scope(), sa.false()))
        return self._source(req).where(out).with_only_columns(self.ref_sql())

    def waiting(self, conn: Connection, req: MoveRequest) -> str | None:
        """Why some staged rows can neither move nor be quarantined yet (another move must pass
        first), or None. A waiting move records its quarantine and stops."""
        return None

    def count(self, req: MoveRequest, in_scope: bool = True) -> sa.Select:
        """The source's count of the market's rows (in scope, or all of them)."""
        query = self._source(req).order_by(None)
        return sa.select(sa.func.count()).select_from((query.where(self.in_scope()) if in_scope else query).subquery())

    # --- target side: set-based SQL on the stage ----------------------------------
    def batch(self, req: MoveRequest) -> sa.ColumnElement[bool]:
        return self.stage.c.batch_market == req.market

    def moved_ref(self) -> sa.Exists:
        m = schemas.moved
        return sa.exists().where(m.c.domain == self.domain, m.c.source_ref == self.stage.c.source_ref)

    def quarantined_ref(self, same_reason: bool = False) -> sa.Exists:
        q = schemas.quarantine
        match = [q.c.domain == self.domain, q.c.source_ref == self.stage.c.source_ref]
        if same_reason:
            match += [q.c.reason == self.stage.c.reason, q.c.market == self.stage.c.batch_market]
        return sa.exists().where(*match)

    def differs(self) -> sa.ColumnElement[bool]:
        t, s = self.target, self.stage
        return sa.exists().where(
            t.c.source_ref == s.c.source_ref, sa.or_(*(t.c[c].is_distinct_from(s.c[c]) for c in self.content))
        )

    def drifted(self) -> sa.ColumnElement[bool]:
        """A target row that no longer says what its source says (the reconciliation's test)."""
        return self.differs()

    def selections(self) -> dict[str, sa.ColumnElement[bool]]:
        """The staged rows that each kind of change would touch."""
        s = self.stage.c
        valid, moved = s.reason.is_(None), self.moved_ref()
        return {
            "inserted": sa.and_(valid, s.insertable, ~moved),
            "updated": sa.and_(valid, moved, self.differs()),
            "quarantined": sa.and_(~valid, s.insertable, ~moved, ~self.quarantined_ref(same_reason=True)),
            "released": sa.and_(valid, s.insertable, ~moved, self.quarantined_ref()),
            "held": sa.and_(~valid, moved),
        }

    def pending(self, conn: Connection, req: MoveRequest) -> dict[str, int]:
        counts = [
            sa.select(sa.func.count()).select_from(self.stage).where(self.batch(req), condition).scalar_subquery()
            for condition in self.selections().values()
        ]
        row = conn.execute(sa.select(*counts)).one()
        return dict(zip(self.selections(), row, strict=True))

    def note_held(self, conn: Connection, req: MoveRequest) -> bool:
        """Bring the market's held rows up to date with the batch (newly held ones in, ones
        valid again or gone out); whether anything changed. Recorded whatever the gates say:
        it is a fact about the source, and a later sync's extract checkpoint needs it."""
        s, h = self.stage, schemas.held
        batch = sa.select(s.c.source_ref).where(self.batch(req))
        held_now = batch.where(self.selections()["held"])
        gone = conn.execute(
            sa.delete(h).where(h.c.domain == self.domain, h.c.source_ref.in_(batch), h.c.source_ref.not_in(held_now))
        ).rowcount
        rows = sa.select(
            sa.literal(self.domain), s.c.source_ref, s.c.batch_market, s.c.reason, sa.literal(req.as_of)
        ).where(self.batch(req), self.selections()["held"])
        insert = dialect_insert(conn, h).from_select(["domain", "source_ref", "market", "reason", "detected_at"], rows)
        added = conn.execute(insert.on_conflict_do_nothing(index_elements=["domain", "source_ref"])).rowcount
        return bool(gone or added)

    def held_refs(self, conn: Connection, req: MoveRequest) -> list[str]:
        h = schemas.held
        where = (h.c.domain == self.domain, h.c.market == req.market)
        return list(conn.execute(sa.select(h.c.source_ref).where(*where).order_by(h.c.source_ref)).scalars())

    def record_quarantine(self, conn: Connection, req: MoveRequest, release: bool = True) -> None:
        """Quarantine the batch's invalid rows (those never moved); release the valid ones when
        they move. A refused move releases nothing: its valid rows must be found again."""
        s, q = self.stage, schemas.quarantine
        selected = self.selections()
        if release:
            released = sa.select(s.c.source_ref).where(self.batch(req), selected["released"])
            conn.execute(sa.delete(q).where(q.c.domain == self.domain, q.c.source_ref.in_(released)))
        rows = sa.select(
            sa.literal(self.domain), s.c.source_ref, s.c.reason, s.c.batch_market, sa.literal(req.as_of)
        ).where(self.batch(req), selected["quarantined"])
        insert = dialect_insert(conn, q).from_select(["domain", "source_ref", "reason", "market", "detected_at"], rows)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["domain", "source_ref"],
                set_={"reason": insert.excluded.reason, "market": insert.excluded.market},
            )
        )

    def merge(self, conn: Connection, req: MoveRequest, move_id: str) -> None:
        """Write the valid rows into the target by source_ref, and note them as moved."""
        s, t = self.stage, self.target
        selected = self.selections()
        self.record_quarantine(conn, req)
        writable = sa.or_(selected["inserted"], selected["updated"])
        columns = ["source_ref", *self.content]
        rows = sa.select(*(s.c[c] for c in columns)).where(self.batch(req), writable)
        insert = dialect_insert(conn, t).from_select(columns, rows)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["source_ref"], set_={c: insert.excluded[c] for c in self.content}
            )
        )
        self.note_moved(conn, req, move_id)

    def note_moved(self, conn: Connection, req: MoveRequest, move_id: str) -> None:
        s, m = self.stage, schemas.moved
        rows = sa.select(sa.literal(self.domain), s.c.source_ref, s.c.batch_market, sa.literal(move_id)).where(
            self.batch(req), s.c.reason.is_(None), s.c.insertable
        )
        insert = dialect_insert(conn, m).from_select(["domain", "source_ref", "market", "move_id"], rows)
        conn.execute(insert.on_conflict_do_nothing(index_elements=["domain", "source_ref"]))

    def outcome(self, req: MoveRequest) -> sa.Select:
        """Row-level reconciliation: where each staged row is, against where it should be."""
        s, t, q = self.stage, self.target, schemas.quarantine
        in_target = sa.exists().where(t.c.source_ref == s.c.source_ref)
        in_quarantine = self.quarantined_ref()
        valid, moved = s.c.reason.is_(None), self.moved_ref()
        right_reason = sa.exists().where(
            q.c.domain == self.domain, q.c.source_ref == s.c.source_ref, q.c.reason == s.c.reason
        )
        verdict = sa.case(
            (sa.and_(valid, sa.or_(s.c.insertable, moved), ~in_target), "missing_in_target"),
            (sa.and_(valid, sa.or_(s.c.insertable, moved), self.drifted()), "differs_from_source"),
            (sa.and_(valid, s.c.insertable, in_quarantine), "also_in_quarantine"),
            (sa.and_(~valid, moved), "held"),
            (sa.and_(~valid, s.c.insertable, ~right_reason), "not_quarantined"),
            (sa.and_(~valid, s.c.insertable, in_target), "also_in_target"),
            else_="ok",
        )
        return (
            sa.select(s.c.source_ref, verdict.label("outcome"))
            .select_from(self.reconciled_from())
            .where(self.batch(req))
        )

    def reconciled_from(self) -> sa.FromClause:
        """What the reconciliation reads: the stage, joined to whatever ``drifted`` needs set-based."""
        return self.stage

    def staged_rows(self, req: MoveRequest) -> sa.Select:
        """The rows the merge is about to write, for the ``staged`` checkpoint."""
        return sa.select(self.stage).where(self.batch(req), self.stage.c.reason.is_(None))

    def totals(self, conn: Connection, req: MoveRequest, source: Engine) -> dict[str, tuple[int, int]]:
        """Source-side against target-side counts of the market, for a full move."""
        s = self.stage
        with source.connect() as src:
            in_scope = src.execute(self.count(req)).scalar_one()
        staged = conn.execute(sa.select(sa.func.count()).where(self.batch(req), s.c.insertable)).scalar_one()
        return {"in_scope_rows": (in_scope, staged)}


def dialect_insert(conn: Connection, table: sa.Table) -> Any:
    """INSERT with ON CONFLICT, in the dialect of the connection (SQLite or PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def ratio_query(domain: str, market: str) -> sa.Select:
    """The market's quarantined share of in-scope rows after the merge."""
    q, m = schemas.quarantine, schemas.moved
    quarantined = sa.select(sa.func.count()).where(q.c.domain == domain, q.c.market == market).scalar_subquery()
    moved = sa.select(sa.func.count()).where(m.c.domain == domain, m.c.market == market).scalar_subquery()
    total = quarantined + moved
    ratio = sa.case((total == 0, 0.0), else_=sa.cast(quarantined, sa.Float) / total)
    return sa.select(quarantined.label("quarantined"), total.label("in_scope"), ratio.label("quarantine_ratio"))


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
                result.message = _describe(result)
                tx.rollback()
                return result
            if waiting:
                move.record_quarantine(conn, req, release=False)
                result.status, result.message = "waiting", f"{_describe(result)}\n{waiting}"
            else:
                _gate_and_merge(move, req, conn, shared, source, result)
            if result.status == "moved":
                _save_watermark(conn, req, max(filter(None, (watermark, new_watermark)), default=None))
            _record(conn, req, result, started)
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


def insert_rows(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Bulk insert: COPY on PostgreSQL, one batched executemany elsewhere."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), rows)
        return
    columns = [c.name for c in table.columns]
    cursor = conn.connection.driver_connection.cursor()
    statement = psycopg_sql.SQL("COPY {} ({}) FROM STDIN").format(
        psycopg_sql.Identifier(table.name), psycopg_sql.SQL(", ").join(map(psycopg_sql.Identifier, columns))
    )
    with cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([row.get(c) for c in columns])


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
        for row in result.mappings():
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
            _write_totals(conn, move, req, result.move_id, source)
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
    result.message = _describe(result)


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


def _write_totals(conn: Connection, move: Move, req: MoveRequest, move_id: str, source: Engine) -> None:
    totals = move.totals(conn, req, source) if req.full else {}
    staged_valid = conn.execute(
        sa.select(sa.func.count()).select_from(move.stage).where(move.batch(req), move.stage.c.reason.is_(None))
    ).scalar_one()
    totals["staged_valid_rows"] = (staged_valid, staged_valid)
    conn.execute(
        schemas.reconciliation.insert(),
        [
            {"move_id": move_id, "domain": req.domain, "market": req.market, "metric": k, "expected": e, "observed": o}
            for k, (e, o) in totals.items()
        ],
    )


def _save_watermark(conn: Connection, req: MoveRequest, watermark: dt.datetime | None) -> None:
    w = schemas.watermarks
    conn.execute(
        sa.update(w)
        .where(w.c.domain == req.domain, w.c.market == req.market)
        .values(watermark=watermark, updated_at=req.as_of)
    )


def _record(conn: Connection, req: MoveRequest, result: MoveResult, started: dt.datetime) -> None:
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


def _describe(result: MoveResult) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in result.changes.items())
    head = f"{result.domain} {result.market}: {result.status}; {result.staged} rows staged; {counts}"
    failed = result.failed_gate
    if failed is None:
        return head
    lines = [f"{head}", f"checkpoint {failed.stage!r} failed:", *(f"  - {f}" for f in failed.failures)]
    if failed.data_docs:
        lines.append(f"  Data Docs: {failed.data_docs}")
    return "\n".join(lines)
