"""Points: one ledger credit per POCO account, then adjustments as balances change.

The Xiaomi ledger is append-only, so a later balance is never written over the
first credit: the difference becomes an adjustment entry
``poco:points:<user_id>:<n>``, and the user's ledger sum equals the converted
balance again. ``poco_migration_points_balances`` says what each user has been
credited so far; it is written in the same transaction as the ledger.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from poco_migration import schemas
from poco_migration.moves.landing import SEQ, Landing
from poco_migration.moves.move import Move
from poco_migration.moves.rules import INT32_MAX, UNLINKED, Row, Rule, first_reason, fractional, kept, out_of_range
from poco_migration.moves.sql import dialect_insert, market_expr
from poco_migration.moves.types import MoveRequest
from poco_migration.refs import adjustment_ref, opening_ref_sql, ref_sql

# "credit" is the balance converted at the market's rate (``PointsMove.judge`` adds it).
RULES = (
    UNLINKED,
    Rule("invalid_balance", lambda row: sa.or_(row["balance"].is_(None), fractional(row["balance"]))),
    Rule("negative_balance", lambda row: row["balance"] < 0),
    out_of_range("credit"),
)

accounts, users = schemas.poco_points_accounts, schemas.poco_users
# What the move writes of a ledger entry (entry_id is the ledger's own).
LEDGER_COLUMNS = ["mi_account_id", "delta", "reason", "expires_at", "source_ref", "created_at"]
ledger, balances = schemas.mi_points_ledger, schemas.points_balances


def _ledger_sums() -> sa.Subquery:
    """Each user's ledger sum, keyed by its opening entry's source_ref: ``poco:points:<u>:<n>``
    counts for ``poco:points:<u>``. One aggregate of the ledger that the reconciliation joins by
    hash; a correlated ``LIKE '<ref>:%'`` scanned the whole ledger once per staged row."""
    owner = opening_ref_sql(ledger.c.source_ref)
    return sa.select(owner.label("owner"), sa.func.sum(ledger.c.delta).label("total")).group_by(owner).subquery()


LEDGER_SUMS = _ledger_sums()


def convert(balance: int, rate: Decimal) -> int:
    """POCO points to Mi points at the market's rate, rounded half up."""
    return int((Decimal(balance) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def converted(balance: sa.ColumnElement[Any], rate: Decimal) -> sa.ColumnElement[int]:
    """In SQL, ``convert`` exactly: integer arithmetic on the rate's exact fraction p/q.

    floor((2 * balance * p + q) / (2 * q)) is balance * p / q rounded half up, for the
    balances that move (0 or more). Exact on both databases: SQLite has no decimal type
    (its NUMERIC is a double, in which 355 x 0.7 is 248.49999999999997)."""
    p, q = rate.as_integer_ratio()
    return (sa.cast(balance, sa.BigInteger) * (2 * p) + q) // (2 * q)


def max_balance(rate: Decimal) -> int | None:
    """The largest balance whose credit at ``rate`` fits the ledger's 32-bit ``delta`` (None:
    any does). ``convert(b)`` is ``(2bp + q) // 2q``, which is at most M exactly when
    ``2bp + q < 2q(M + 1)``."""
    p, q = rate.as_integer_ratio()
    return None if p <= 0 else -(-(2 * q * (INT32_MAX + 1) - q) // (2 * p)) - 1


def credit_fits(balance: sa.ColumnElement[Any], rate: Decimal) -> sa.ColumnElement[bool]:
    """In SQL: the converted balance fits the ledger's 32-bit ``delta`` (else ``out_of_range``),
    judged on the balance, so that a huge one never overflows the conversion's arithmetic."""
    limit = max_balance(rate)
    return sa.true() if limit is None else balance <= sa.literal(limit, sa.BigInteger)


def credit(balance: sa.ColumnElement[Any], rate: Decimal) -> sa.ColumnElement[Any]:
    """In SQL: the credit of a balance, or one past the ledger's range where it does not fit
    (the ``out_of_range`` rule then quarantines it, and its credit is never staged)."""
    beyond = sa.literal(INT32_MAX + 1, sa.BigInteger)
    return sa.case((~credit_fits(balance, rate), beyond), else_=converted(balance, rate))


class PointsMove(Move):
    domain = "points"
    rules = RULES
    stage = schemas.stage_points
    target = ledger
    change_columns = ("updated_at", "user_updated_at")
    keys = (accounts.c.user_id,)
    changed_at = (accounts.c.updated_at, users.c.updated_at)

    def _source(self, req: MoveRequest) -> sa.Select:
        return (
            sa.select(
                accounts.c.user_id,
                accounts.c.balance,
                accounts.c.expires_at,
                accounts.c.updated_at,
                users.c.mi_account_id,
                users.c.updated_at.label("user_updated_at"),
            )
            .select_from(accounts.outerjoin(users, users.c.user_id == accounts.c.user_id))
            .where(market_expr(users.c.market, req.plan) == req.market)
            .order_by(accounts.c.user_id)
        )

    def judge(self, req: MoveRequest, landing: Landing) -> sa.Select:
        land = landing.rows.c
        row = {**land, "credit": credit(land.balance, req.plan.market(req.market).conversion_rate)}
        reason = first_reason(self.rules, row)
        return sa.select(
            land[SEQ],
            ref_sql(self.domain, land.user_id).label("source_ref"),
            reason.label("reason"),
            sa.or_(land.balance.is_(None), land.balance != 0).label("insertable"),
            land.user_id,
            land.mi_account_id,
            land.balance,
            *kept(row, ("credit",), reason),
            land.expires_at,
            land.updated_at.label("observed_at"),
        )

    def in_scope(self, row: Row | None = None) -> sa.ColumnElement[bool]:
        balance = self._row(row)["balance"]
        return sa.or_(balance != 0, balance.is_(None))

    def staged_rows(self, req: MoveRequest) -> sa.Select:
        """The batch, with each credit as the gate recomputes it in SQL, exactly."""
        expected = converted(self.stage.c.balance, req.plan.market(req.market).conversion_rate)
        return super().staged_rows(req).add_columns(expected.label("expected_credit"))

    # --- target side ----------------------------------------------------------------
    def _credited_otherwise(self) -> sa.ColumnElement[bool]:
        """The user's bookkeeping says another credit than the staged one."""
        return balances.c.credited != self.stage.c.credit

    def differs(self) -> sa.ColumnElement[bool]:
        return sa.exists().where(balances.c.user_id == self.stage.c.user_id, self._credited_otherwise())

    def drifted(self) -> sa.ColumnElement[bool]:
        """The bookkeeping or the ledger itself no longer sums to the converted balance (on the
        balance and the ledger sum ``reconciled_from`` joins)."""
        return sa.or_(self._credited_otherwise(), self.ledger_sum() != self.stage.c.credit)

    def ledger_sum(self) -> sa.ColumnElement[int]:
        """The staged user's ledger sum; reads ``LEDGER_SUMS``, joined in by ``reconciled_from``."""
        return sa.func.coalesce(LEDGER_SUMS.c.total, 0)

    def written(self) -> tuple[sa.Table, ...]:
        return (*super().written(), balances)

    def reconciled_from(self) -> sa.FromClause:
        s = self.stage
        return s.outerjoin(LEDGER_SUMS, LEDGER_SUMS.c.owner == s.c.source_ref).outerjoin(
            balances, balances.c.user_id == s.c.user_id
        )

    def merge(self, conn: Connection, req: MoveRequest, move_id: str) -> None:
        s = self.stage
        selected = self.selections()
        self.record_quarantine(conn, req)
        adjusted = sa.and_(
            s.c.reason.is_(None),
            self.moved_ref(),
            balances.c.user_id == s.c.user_id,
            balances.c.credited != s.c.credit,
        )
        conn.execute(
            ledger.insert().from_select(
                LEDGER_COLUMNS,
                sa.select(
                    balances.c.mi_account_id,
                    s.c.credit - balances.c.credited,
                    sa.literal("poco_migration_adjustment"),
                    s.c.expires_at,
                    adjustment_ref(s.c.source_ref, balances.c.adjustments + 1),
                    s.c.observed_at,
                ).where(adjusted),
            )
        )
        conn.execute(
            sa.update(balances)
            .values(credited=s.c.credit, adjustments=balances.c.adjustments + 1, source_balance=s.c.balance)
            .where(adjusted)
        )
        opening = selected["inserted"]
        conn.execute(
            ledger.insert().from_select(
                LEDGER_COLUMNS,
                sa.select(
                    s.c.mi_account_id,
                    s.c.credit,
                    sa.literal("poco_migration"),
                    s.c.expires_at,
                    s.c.source_ref,
                    s.c.observed_at,
                ).where(opening),
            )
        )
        conn.execute(
            dialect_insert(conn, balances).from_select(
                ["user_id", "market", "mi_account_id", "credited", "adjustments", "source_balance"],
                sa.select(
                    s.c.user_id, s.c.batch_market, s.c.mi_account_id, s.c.credit, sa.literal(0), s.c.balance
                ).where(opening),
            )
        )
        self.note_moved(conn, req, move_id)

    def totals(self, conn: Connection, req: MoveRequest, source: Engine) -> dict[str, tuple[int, int]]:
        totals = super().totals(conn, req, source)
        s = self.stage
        rate = req.plan.market(req.market).conversion_rate
        valid = sa.and_(
            accounts.c.balance > 0, users.c.mi_account_id.is_not(None), credit_fits(accounts.c.balance, rate)
        )
        with source.connect() as src:
            # SUM: an int, or a Decimal where the database widens it (PostgreSQL's SUM of bigint).
            source_balance: int | Decimal = src.execute(
                sa.select(sa.func.coalesce(sa.func.sum(sa.literal_column("balance")), 0)).select_from(
                    self._source(req).where(valid).subquery()
                )
            ).scalar_one()
        staged_valid = sa.and_(s.c.reason.is_(None), s.c.insertable)
        target_sums = (
            sa.select(
                sa.func.coalesce(sa.func.sum(balances.c.source_balance), 0),
                sa.func.coalesce(sa.func.sum(s.c.credit), 0),
                sa.func.coalesce(sa.func.sum(self.ledger_sum()), 0),
            )
            .select_from(self.reconciled_from())
            .where(staged_valid)
        )
        target_balance, staged_credit, ledger_credit = conn.execute(target_sums).tuples().one()
        totals["points_balance_total"] = (int(source_balance), int(target_balance))
        totals["points_credit_total"] = (int(staged_credit), int(ledger_credit))
        return totals


MOVE = PointsMove()
