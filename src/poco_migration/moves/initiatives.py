"""Initiatives: campaigns, events, contests and beta programmes, under the POCO brand.

Only active and ended initiatives are in scope. One moved before and since
cancelled is not unmoved: its target row takes the new status, like any edit.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from poco_migration import schemas
from poco_migration.moves.landing import SEQ, Landing
from poco_migration.moves.move import Move
from poco_migration.moves.rules import Row, Rule, first_reason, invalid_text, kept, not_in
from poco_migration.moves.sql import market_expr
from poco_migration.moves.types import MoveRequest
from poco_migration.refs import ref_sql, source_ref

IN_SCOPE = ("active", "ended")
KINDS = ("campaign", "event", "contest", "beta_program")
BRAND = "POCO"

RULES = (
    Rule(
        "invalid_dates",
        lambda row: sa.or_(row["starts_at"].is_(None), row["ends_at"].is_(None), row["ends_at"] < row["starts_at"]),
    ),
    Rule("invalid_kind", lambda row: not_in(row["kind"], KINDS)),
    invalid_text("market", "title"),
)

initiatives = schemas.poco_initiatives
KEPT = ("market", "kind", "title", "starts_at", "ends_at", "status")


def initiative_ref(initiative_id: Any) -> str:
    return source_ref("initiatives", initiative_id)


class InitiativesMove(Move):
    domain = "initiatives"
    rules = RULES
    stage = schemas.stage_initiatives
    target = schemas.mi_initiatives
    content = ("brand", *KEPT)
    keys = (initiatives.c.initiative_id,)
    changed_at = (initiatives.c.updated_at,)

    def _source(self, req: MoveRequest) -> sa.Select:
        return (
            sa.select(initiatives)
            .where(market_expr(initiatives.c.market, req.plan) == req.market)
            .order_by(initiatives.c.initiative_id)
        )

    def judge(self, req: MoveRequest, landing: Landing) -> sa.Select:
        land = landing.rows.c
        reason = first_reason(self.rules, land)
        return sa.select(
            land[SEQ],
            ref_sql(self.domain, land.initiative_id).label("source_ref"),
            reason.label("reason"),
            sa.and_(land.status.is_not(None), land.status.in_(IN_SCOPE)).label("insertable"),
            sa.literal(BRAND, sa.Text).label("brand"),
            *kept(land, KEPT, reason),
        )

    def in_scope(self, row: Row | None = None) -> sa.ColumnElement[bool]:
        return self._row(row)["status"].in_(IN_SCOPE)


MOVE = InitiativesMove()
