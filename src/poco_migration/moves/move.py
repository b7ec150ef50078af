"""A domain's move, as set-based SQL: the base class that each domain module specialises.

The source side (which rows, in scope, their source_ref) and the target side: what
the staged batch would change (``selections``), the merge by source_ref, the
quarantine, the held rows and the row-level reconciliation. The defaults are the
"mirror" domains, one target row per source row; points (an append-only ledger)
override the merge.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Sequence
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from poco_migration import schemas
from poco_migration.moves.landing import SEQ, Landing
from poco_migration.moves.rules import Row, Rule, text_columns
from poco_migration.moves.sql import changed_since, dialect_insert
from poco_migration.moves.types import MoveRequest
from poco_migration.refs import ref_ids, ref_sql


class Move:
    """A domain's move. The defaults are the "mirror" domains: one target row per source row."""

    domain: ClassVar[str]
    stage: ClassVar[sa.Table]
    target: ClassVar[sa.Table]
    content: ClassVar[tuple[str, ...]]
    # The source's key columns, in the order source_ref names them.
    keys: ClassVar[tuple[sa.Column[Any], ...]]
    # The source timestamps whose change makes a row due again, and their labels in ``_source``.
    changed_at: ClassVar[tuple[sa.Column[Any], ...]]
    change_columns: ClassVar[tuple[str, ...]] = ("updated_at",)
    # The quarantine rules, in the contract's order, and the column the duplicate rule folds.
    rules: ClassVar[tuple[Rule, ...]]
    folded: ClassVar[str | None] = None

    # --- source side, per domain -------------------------------------------------
    def extract(self, req: MoveRequest, watermark: dt.datetime | None) -> sa.Select:
        """The market's source rows changed since the watermark (all of them without one)."""
        query = self._source(req)
        return query if watermark is None else query.where(changed_since(watermark, *self.changed_at))

    def extract_keys(self, req: MoveRequest, refs: Sequence[str]) -> sa.Select:
        """The source rows behind some source_refs (quarantined rows are looked at again)."""
        ids = [ref_ids(ref) for ref in refs]
        if len(self.keys) == 1:
            return self._source(req).where(self.keys[0].in_([key for (key,) in ids]))
        return self._source(req).where(sa.or_(*(sa.and_(*map(operator.eq, self.keys, key)) for key in ids)))

    def landing(self, query: sa.Select, dialects: tuple[str, str]) -> Landing:
        """The temporary tables the batch lands in, shaped like the extract's rows, from a
        source into a target of these dialects."""
        return Landing.for_query(self.domain, query, (text_columns(self.rules), self.folded), dialects)

    def judge(self, req: MoveRequest, landing: Landing) -> sa.Select:
        """The landed rows with their reason and target values, in SQL: the stage's columns
        (but ``batch_market``) and ``land_seq``, one row per landed row."""
        raise NotImplementedError

    def staged_from(self, req: MoveRequest, landing: Landing) -> sa.Select:
        """The stage's rows: each key once, as the source gave it first (a source without its
        key constraint: the extract checkpoint refuses that move, naming the key)."""
        judged = self.judge(req, landing).subquery()
        nth = sa.func.row_number().over(partition_by=judged.c.source_ref, order_by=judged.c[SEQ])
        numbered = sa.select(judged, nth.label("land_nth")).subquery()
        columns = [numbered.c[c.name] for c in self.stage.columns if c.name != "batch_market"]
        market = sa.literal(req.market, sa.Text).label("batch_market")
        return sa.select(market, *columns).where(numbered.c.land_nth == 1)

    def _source(self, req: MoveRequest) -> sa.Select:
        """Every source row of the market, with what the rules need to judge it."""
        raise NotImplementedError

    def in_scope(self, row: Row | None = None) -> sa.ColumnElement[bool]:
        """The contract's scope, in SQL: what the source counts as due to move. ``row`` names
        the columns judged (the landing's); the source table's by default."""
        return sa.true()

    def ref_sql(self, row: Row | None = None) -> sa.ColumnElement[str]:
        """A source row's source_ref, in SQL (from ``row``'s key columns, as ``in_scope``)."""
        keys = self.keys if row is None else [row[key.name] for key in self.keys]
        return ref_sql(self.domain, *keys)

    def _row(self, row: Row | None) -> Row:
        """The columns a scope test reads: ``row``, or the source table the keys belong to."""
        return row if row is not None else self.keys[0].table.c

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

    # --- target side: set-based SQL on the move's own stage --------------------------
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
        """A staged row whose target row says something else (``drifted``, looked up)."""
        return sa.exists().where(self.target.c.source_ref == self.stage.c.source_ref, self.drifted())

    def drifted(self) -> sa.ColumnElement[bool]:
        """A target row that no longer says what its source says (the reconciliation's test, on
        the target row ``outcome`` joins to the staged one)."""
        t, s = self.target, self.stage
        return sa.or_(*(t.c[c].is_distinct_from(s.c[c]) for c in self.content))

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

    def pending(self, conn: Connection) -> dict[str, int]:
        counts = [
            sa.select(sa.func.count()).select_from(self.stage).where(condition).scalar_subquery()
            for condition in self.selections().values()
        ]
        row = conn.execute(sa.select(*counts)).tuples().one()
        return dict(zip(self.selections(), row, strict=True))

    def note_held(self, conn: Connection, req: MoveRequest) -> bool:
        """Bring the market's held rows up to date with the batch (newly held ones in, ones
        valid again or gone out); whether anything changed. Recorded whatever the gates say:
        it is a fact about the source, and a later sync's extract checkpoint needs it."""
        s, h = self.stage, schemas.held
        batch = sa.select(s.c.source_ref)
        held_now = batch.where(self.selections()["held"])
        gone = conn.execute(
            sa.delete(h).where(h.c.domain == self.domain, h.c.source_ref.in_(batch), h.c.source_ref.not_in(held_now))
        ).rowcount
        rows = sa.select(
            sa.literal(self.domain), s.c.source_ref, s.c.batch_market, s.c.reason, sa.literal(req.as_of)
        ).where(self.selections()["held"])
        insert = dialect_insert(conn, h).from_select(["domain", "source_ref", "market", "reason", "detected_at"], rows)
        # RETURNING, not rowcount: psycopg reports -1 for INSERT ... SELECT ... ON CONFLICT.
        added = conn.execute(
            insert.on_conflict_do_nothing(index_elements=["domain", "source_ref"]).returning(h.c.source_ref)
        ).all()
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
            released = sa.select(s.c.source_ref).where(selected["released"])
            conn.execute(sa.delete(q).where(q.c.domain == self.domain, q.c.source_ref.in_(released)))
        rows = sa.select(
            sa.literal(self.domain), s.c.source_ref, s.c.reason, s.c.batch_market, sa.literal(req.as_of)
        ).where(selected["quarantined"])
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
        rows = sa.select(*(s.c[c] for c in columns)).where(writable)
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
            s.c.reason.is_(None), s.c.insertable
        )
        insert = dialect_insert(conn, m).from_select(["domain", "source_ref", "market", "move_id"], rows)
        conn.execute(insert.on_conflict_do_nothing(index_elements=["domain", "source_ref"]))

    def outcome(self) -> sa.Select:
        """Row-level reconciliation: where each staged row is, against where it should be.
        Set-based: the stage outer-joined by source_ref to the target, the quarantine and the
        moved rows (each holds a source_ref once), so that a market's staged rows are joined
        in one pass, not looked up one by one."""
        s, t, q, m = self.stage, self.target, schemas.quarantine, schemas.moved
        joined = (
            self.reconciled_from()
            .outerjoin(t, t.c.source_ref == s.c.source_ref)
            .outerjoin(q, sa.and_(q.c.domain == self.domain, q.c.source_ref == s.c.source_ref))
            .outerjoin(m, sa.and_(m.c.domain == self.domain, m.c.source_ref == s.c.source_ref))
        )
        in_target, in_quarantine, moved = (table.c.source_ref.is_not(None) for table in (t, q, m))
        valid = s.c.reason.is_(None)
        right_reason = sa.and_(in_quarantine, q.c.reason == s.c.reason)
        verdict = sa.case(
            (sa.and_(valid, sa.or_(s.c.insertable, moved), ~in_target), "missing_in_target"),
            (sa.and_(valid, sa.or_(s.c.insertable, moved), self.drifted()), "differs_from_source"),
            (sa.and_(valid, s.c.insertable, in_quarantine), "also_in_quarantine"),
            (sa.and_(~valid, moved), "held"),
            (sa.and_(~valid, s.c.insertable, ~right_reason), "not_quarantined"),
            (sa.and_(~valid, s.c.insertable, in_target), "also_in_target"),
            else_="ok",
        )
        return sa.select(s.c.source_ref, verdict.label("outcome")).select_from(joined)

    def written(self) -> tuple[sa.Table, ...]:
        """The tables a move fills: a bulk one leaves them fresh statistics (``sql.analyze``)."""
        return (self.target, schemas.moved, schemas.quarantine)

    def reconciled_from(self) -> sa.FromClause:
        """What the reconciliation reads: the stage, joined to whatever ``drifted`` needs."""
        return self.stage

    def staged_rows(self, req: MoveRequest) -> sa.Select:
        """The rows the merge is about to write, for the ``staged`` checkpoint."""
        return sa.select(self.stage).where(self.stage.c.reason.is_(None))

    def totals(self, conn: Connection, req: MoveRequest, source: Engine) -> dict[str, tuple[int, int]]:
        """Source-side against target-side counts of the market, for a full move."""
        s = self.stage
        with source.connect() as src:
            in_scope: int = src.execute(self.count(req)).scalar_one()
        staged = conn.execute(sa.select(sa.func.count()).where(s.c.insertable)).scalar_one()
        return {"in_scope_rows": (in_scope, staged)}
