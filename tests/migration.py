"""Moves against a test's databases, and what they left where: shared by the move tests.

``Migration`` runs ``run_move`` directly (no Airflow) on the databases of the
``db_urls`` fixture and reads back the Xiaomi tables and the bookkeeping.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sources import AS_OF, T0

from poco_migration import schemas
from poco_migration.moves import MOVES
from poco_migration.moves.pipeline import run_move
from poco_migration.moves.types import MoveRequest, MoveResult
from poco_migration.plan import Plan, load_plan

PLAN = load_plan()
RELAXED = dataclasses.replace(PLAN, max_quarantine_ratio=0.5)
T1, T2 = T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=2)
LATER, LATEST = AS_OF + dt.timedelta(days=1), AS_OF + dt.timedelta(days=2)

LEDGER, MI_REVIEWS = schemas.mi_points_ledger, schemas.mi_reviews
MI_INITIATIVES, MI_PARTICIPANTS = schemas.mi_initiatives, schemas.mi_initiative_participants
MI_TABLES = (LEDGER, MI_REVIEWS, MI_INITIATIVES, MI_PARTICIPANTS)
# What a run that changes nothing must leave exactly as it was.
DUMPED = (*MI_TABLES, schemas.quarantine, schemas.moved, schemas.points_balances, schemas.watermarks)


def with_rate(plan: Plan, market: str, rate: Decimal) -> Plan:
    """The plan with one market's points conversion rate changed."""
    markets = tuple(dataclasses.replace(m, conversion_rate=rate) if m.market == market else m for m in plan.markets)
    return dataclasses.replace(plan, markets=markets)


class Migration:
    """Runs moves against the test's databases and reads back where the rows went."""

    def __init__(self, source: sa.Engine, target: sa.Engine, target_url: str) -> None:
        self.source = source
        self.target = target
        self.target_url = sa.make_url(target_url)

    def run(
        self, domain: str, market: str = "IT", *, as_of: dt.datetime = AS_OF, plan: Plan = RELAXED, full: bool = False
    ) -> MoveResult:
        request = MoveRequest(domain, market, plan, as_of=as_of, full=full)
        return run_move(MOVES[domain], request, self.source, self.target_url)

    def quarantine(self) -> set[tuple[str, str, str, str]]:
        """(domain, source_ref, reason, market) of every quarantined row."""
        q = schemas.quarantine
        with self.target.connect() as conn:
            return set(conn.execute(sa.select(q.c.domain, q.c.source_ref, q.c.reason, q.c.market)).tuples())

    def rows(self, table: sa.Table) -> dict[str, dict[str, Any]]:
        """A target table's rows by source_ref, without the table's own surrogate id."""
        skip = {"entry_id", "source_ref"} | ({"review_id", "initiative_id"} & set(table.primary_key.columns.keys()))
        with self.target.connect() as conn:
            return {
                row["source_ref"]: {k: v for k, v in row.items() if k not in skip}
                for row in conn.execute(sa.select(table)).mappings()
            }

    def refs(self, table: sa.Table) -> set[str]:
        return set(self.rows(table))

    def mi_initiative_id(self, initiative_id: int) -> int:
        t = MI_INITIATIVES
        with self.target.connect() as conn:
            return conn.execute(
                sa.select(t.c.initiative_id).where(t.c.source_ref == f"poco:initiative:{initiative_id}")
            ).scalar_one()

    def dump(self) -> dict[str, list[tuple]]:
        """Every row of the Xiaomi tables and of the bookkeeping a move writes, in a fixed order."""
        with self.target.connect() as conn:
            return {t.name: [tuple(r) for r in conn.execute(sa.select(t).order_by(*t.columns))] for t in DUMPED}
